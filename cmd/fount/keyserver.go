package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/fount-live/fount/ingest"
)

// keyServer hands each new content key to an external key server
// (--key-url-template): a JSON POST to the key's own URL, signed like the
// publish webhook (X-Fount-Timestamp, X-Fount-Signature), so a receiver
// checks both with ingest.VerifySignature. Any 2xx means the server has
// the key and will give it to players; playlist retries and keeps the
// previous key otherwise.
type keyServer struct {
	secret []byte
	client *http.Client
	now    func() time.Time
}

func newKeyServer(secret string) *keyServer {
	return &keyServer{
		secret: []byte(secret),
		// No redirects: a key goes where the template says, nowhere else.
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		now:    time.Now,
	}
}

// keyPost is the POST body (docs/encryption.md).
type keyPost struct {
	Stream string `json:"stream"` // APP/NAME[/RENDITION]
	ID     string `json:"id"`
	Method string `json:"method"` // AES-128
	Key    string `json:"key"`    // the 16 key bytes, base64 (standard, padded)
	URI    string `json:"uri"`    // where players will fetch it: this request's URL
}

func (k *keyServer) PutKey(ctx context.Context, url, stream, id string, key []byte) error {
	body, err := json.Marshal(keyPost{Stream: stream, ID: id, Method: "AES-128", Key: base64.StdEncoding.EncodeToString(key), URI: url})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(k.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fount")
	req.Header.Set("X-Fount-Timestamp", ts)
	req.Header.Set("X-Fount-Signature", ingest.Sign(k.secret, ts, body))
	resp, err := k.client.Do(req)
	if err != nil {
		// The error names the URL, never the body (the key).
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("key server answered %d", resp.StatusCode)
	}
	return nil
}
