package storage

import "github.com/aws/aws-sdk-go-v2/service/s3"

// Client is the SDK client, for tests that look at the bucket directly.
func (s *S3) Client() *s3.Client { return s.client }
