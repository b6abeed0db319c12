package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Config says where an S3 store keeps its objects and how to reach it.
type S3Config struct {
	Bucket string
	// Prefix is prepended to every key ("a/b" stores key "live/x/1.ts" as
	// "a/b/live/x/1.ts"); empty stores keys at the bucket's root.
	Prefix string
	// Endpoint is the base URL of an S3-compatible server
	// ("http://127.0.0.1:7070"). Empty means AWS itself. When set, requests
	// use path-style addressing (http://host/bucket/key), which every
	// S3-compatible server understands.
	Endpoint string
	// Region defaults to the AWS_REGION/shared-config value, else us-east-1.
	Region string
	// AccessKey and SecretKey, when both set, are used as static
	// credentials; otherwise the SDK's standard chain is used
	// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared config, instance role).
	AccessKey, SecretKey string
	// CacheControl returns the Cache-Control header stored with a key.
	// Nil means DefaultCacheControl.
	CacheControl func(key string) string
}

// S3 stores objects in an S3 bucket (AWS or any S3-compatible server).
// Every call is a synchronous network round trip: wrap it in Async so
// that ingest never waits for the network.
type S3 struct {
	client       *s3.Client
	bucket       string
	prefix       string // "" or ends with "/"
	cacheControl func(string) string
}

// NewS3 builds the client and checks that the bucket is reachable with the
// given credentials (HeadBucket), so that a wrong bucket, endpoint or key
// fails at start rather than at the first segment.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("storage s3: no bucket")
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := ValidKey(prefix); err != nil {
			return nil, fmt.Errorf("storage s3: prefix: %w", err)
		}
		prefix += "/"
	}
	client, err := newS3Client(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &S3{client: client, bucket: cfg.Bucket, prefix: prefix, cacheControl: cfg.CacheControl}
	if s.cacheControl == nil {
		s.cacheControl = DefaultCacheControl
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		return nil, fmt.Errorf("storage s3: bucket %q: %w", cfg.Bucket, err)
	}
	return s, nil
}

// newS3Client builds an SDK client from cfg without any request.
func newS3Client(ctx context.Context, cfg S3Config) (*s3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		if cfg.AccessKey == "" || cfg.SecretKey == "" {
			return nil, errors.New("storage s3: access key and secret key must be given together")
		}
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	if cfg.Endpoint != "" {
		// Compute and check checksums only where the API requires them:
		// the newer default (aws-chunked uploads with trailing CRC32) is
		// not understood by every S3-compatible server.
		opts = append(opts,
			config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("storage s3: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
	})
	return client, nil
}

// Put uploads obj with its content type (ContentType of the key when
// empty) and the Cache-Control S3Config.CacheControl gives.
func (s *S3) Put(ctx context.Context, key string, obj Object) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.prefix + key),
		Body:          bytes.NewReader(obj.Data),
		ContentLength: aws.Int64(int64(len(obj.Data))),
	}
	ct := obj.ContentType
	if ct == "" {
		ct = ContentType(key)
	}
	in.ContentType = aws.String(ct)
	if cc := s.cacheControl(key); cc != "" {
		in.CacheControl = aws.String(cc)
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("storage s3 put %s: %w", key, err)
	}
	return nil
}

// Get downloads key, with its stored content type and modification time.
func (s *S3) Get(ctx context.Context, key string) (Object, error) {
	if err := ValidKey(key); err != nil {
		return Object{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		if isNotFound(err) {
			return Object{}, ErrNotFound
		}
		return Object{}, fmt.Errorf("storage s3 get %s: %w", key, err)
	}
	defer out.Body.Close()
	var buf []byte
	if out.ContentLength != nil && *out.ContentLength >= 0 {
		buf = make([]byte, 0, *out.ContentLength)
	}
	b := bytes.NewBuffer(buf)
	if _, err := io.Copy(b, out.Body); err != nil {
		return Object{}, fmt.Errorf("storage s3 get %s: %w", key, err)
	}
	obj := Object{Data: b.Bytes(), ContentType: aws.ToString(out.ContentType)}
	if out.LastModified != nil {
		obj.ModTime = *out.LastModified
	}
	return obj, nil
}

// Delete removes key. S3's DeleteObject does not tell whether the key
// existed, so Delete of a missing key returns nil (not ErrNotFound), unless
// the server does report NoSuchKey, in which case it returns ErrNotFound.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		if isNotFound(err) {
			return ErrNotFound
		}
		return fmt.Errorf("storage s3 delete %s: %w", key, err)
	}
	return nil
}

// Keys lists the keys below prefix, following ListObjectsV2's pages.
// Objects whose names are not valid keys (directory markers, objects
// written by other tools) are skipped.
func (s *S3) Keys(ctx context.Context, prefix string) ([]string, error) {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	var keys []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("storage s3 keys %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			k, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if !ok || ValidKey(k) != nil {
				continue
			}
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// isNotFound tells a missing key from other failures. A missing bucket is
// also a 404 but is a configuration error, not a missing object.
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var nf *types.NotFound
	if errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		case "NoSuchBucket":
			return false
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// ParseS3Spec splits "s3://bucket/some/prefix" into bucket and prefix
// ("some/prefix", no leading or trailing slash; may be empty).
func ParseS3Spec(spec string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(spec, "s3://")
	if !ok {
		return "", "", fmt.Errorf("storage %q: want s3://bucket[/prefix]", spec)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if err := validBucket(bucket); err != nil {
		return "", "", fmt.Errorf("storage %q: %w", spec, err)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		if err := ValidKey(prefix); err != nil {
			return "", "", fmt.Errorf("storage %q: prefix: %w", spec, err)
		}
	}
	return bucket, prefix, nil
}

// validBucket checks the S3 bucket naming rules that matter for URLs:
// 3 to 63 lower-case letters, digits, '.' and '-', starting and ending with
// a letter or digit.
func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '.' && c != '-' || (i == 0 || i == len(b)-1) && !alnum {
			return fmt.Errorf("invalid bucket name %q", b)
		}
	}
	return nil
}

var _ Store = (*S3)(nil)
