package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fount-live/fount/ingest"
)

// TestConfigEncrypt: the --encrypt flags are flags like the others (file
// keys, FOUNT_* variables), and the combinations whose keys could not
// outlive their segments, or would land in public storage, are refused.
func TestConfigEncrypt(t *testing.T) {
	cfg, fs := serveFlagSet(t)
	if err := applyConfigFile(fs, writeConfig(t, "encrypt: aes-128\nkey-rotation: 4\nkey-dir: /srv/keys\nstorage: dir:/srv/hls\n")); err != nil {
		t.Fatal(err)
	}
	if cfg.Encrypt != "aes-128" || cfg.KeyRotation != 4 || cfg.KeyDir != "/srv/keys" {
		t.Fatalf("from the file: %+v", cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	cfg, fs = serveFlagSet(t)
	t.Setenv("FOUNT_KEY_SERVER_SECRET", "s3cret")
	t.Setenv("FOUNT_ENCRYPT", "aes-128")
	if err := applyEnv(fs); err != nil {
		t.Fatal(err)
	}
	if cfg.KeyServerSecret != "s3cret" || cfg.Encrypt != "aes-128" {
		t.Fatalf("from the environment: %+v", cfg)
	}
	if d := defaultConfig(); d.Encrypt != "none" || d.KeyRotation != 0 {
		t.Errorf("defaults: %q %d", d.Encrypt, d.KeyRotation)
	}
	for _, tc := range []struct {
		enc, storage, keyDir, tmpl, secret string
		rotation                           int
		want                               string // "" for valid
	}{
		{"aes-128", "memory", "", "", "", 2, ""},
		{"aes-128", "dir:/srv/hls", "/srv/keys", "", "", 0, ""},
		{"aes-128", "s3://b/p", "", "https://kms.example/{stream}/{id}", "x", 1, ""},
		{"aes-128", "dir:/srv/hls", "", "", "", 0, "must their keys: give --key-dir DIR or --key-url-template"},
		{"aes-128", "s3://b/p", "", "", "", 0, "must their keys"},
		{"aes-128", "dir:/srv/hls", "/srv/hls/keys", "", "", 0, "is inside the media store"},
		{"aes-128", "memory", "", "https://kms.example/{stream}/{id}", "", 0, "needs --key-server-secret"},
		{"aes-128", "memory", "", "ftp://kms/{id}", "x", 0, "want an http(s) URL with {id}"},
		{"aes-128", "memory", "", "https://kms/{stream}", "x", 0, "want an http(s) URL with {id}"},
		{"aes-128", "memory", "/k", "https://kms/{id}", "x", 0, "give one"},
		{"aes-128", "memory", "", "", "", -1, "--key-rotation -1"},
		{"aes-256", "memory", "", "", "", 0, `--encrypt "aes-256": want none or aes-128`},
		{"none", "memory", "/k", "", "", 0, "need --encrypt aes-128"},
	} {
		c := defaultConfig()
		c.Encrypt, c.Storage, c.KeyDir, c.KeyURLTemplate, c.KeyServerSecret, c.KeyRotation = tc.enc, tc.storage, tc.keyDir, tc.tmpl, tc.secret, tc.rotation
		err := c.validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v; want %q", tc, err, tc.want)
		}
	}
}

// TestEncryptKeyServerPost: the key server gets a JSON POST signed as the
// webhook's are (ingest.VerifySignature accepts it), with the key in
// base64; a non-2xx answer is an error.
func TestEncryptKeyServerPost(t *testing.T) {
	var got keyPost
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			!ingest.VerifySignature([]byte("sec"), r.Header.Get("X-Fount-Timestamp"), body, r.Header.Get("X-Fount-Signature")) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.Unmarshal(body, &got)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	ks := newKeyServer("sec")
	key := []byte("0123456789abcdef")
	url := srv.URL + "/live/x/k1"
	if err := ks.PutKey(context.Background(), url, "live/x", "k1", key); err != nil {
		t.Fatal(err)
	}
	if got.Stream != "live/x" || got.ID != "k1" || got.Method != "AES-128" || got.URI != url || got.Key != base64.StdEncoding.EncodeToString(key) {
		t.Errorf("body %+v", got)
	}
	status = http.StatusInternalServerError
	if err := ks.PutKey(context.Background(), url, "live/x", "k2", key); err == nil || strings.Contains(err.Error(), string(key)) {
		t.Errorf("a 500 answer: %v", err)
	}
	if err := newKeyServer("wrong").PutKey(context.Background(), url, "live/x", "k3", key); err == nil {
		t.Error("a bad signature was accepted")
	}
}
