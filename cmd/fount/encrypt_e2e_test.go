package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var e2eKeyLine = regexp.MustCompile(`#EXT-X-KEY:METHOD=AES-128,URI="(keys/[0-9a-f]+\.key)",IV=0x([0-9a-f]{32})`)

// TestE2EEncrypt: ffmpeg publishes to fount with --encrypt aes-128
// --key-rotation 2, LL-HLS on, in fMP4 and in MPEG-TS (both at once, 8 s
// each). ffmpeg's HLS demuxer, which decrypts AES-128 itself, then
// decodes the ended playlist without an error; a raw segment and part are
// not media in the clear, and decrypted with their served key they are;
// the keys rotate; and no key, in hex or base64, is in fount's log, the
// API, /metrics or the storage directory.
func TestE2EEncrypt(t *testing.T) {
	src := source(t)
	lockEndToEnd(t)
	type run struct {
		format string
		dir    string
		o      *origin
	}
	var runs []*run
	for _, f := range []string{"fmp4", "ts"} {
		r := &run{format: f, dir: t.TempDir()}
		r.o = startOrigin(t, func(c *config) {
			c.SegmentFormat, c.PlaylistSize, c.ReconnectWindow = f, 10, time.Second
			c.Encrypt, c.KeyRotation = "aes-128", 2
			c.Storage, c.KeyDir = "dir:"+filepath.Join(r.dir, "media"), filepath.Join(r.dir, "keys")
		})
		runs = append(runs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range runs {
		cmd := r.o.push(ctx, t, "enc", []string{"-re", "-t", "8", "-i", src}, "-c", "copy")
		wg.Go(func() {
			if err := cmd.Wait(); err != nil {
				t.Errorf("%s push: %v\n%s", r.format, err, cmd.Stderr.(*syncBuffer).String())
			}
		})
	}
	wg.Wait()
	for _, r := range runs {
		t.Run(r.format, func(t *testing.T) { checkEncrypted(t, r.o, r.format, r.dir) })
	}
}

func checkEncrypted(t *testing.T, o *origin, format, dir string) {
	url := o.url("/live/enc/index.m3u8")
	var body []byte
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, body, _ = httpGet(t, url)
		if bytes.Contains(body, []byte("#EXT-X-ENDLIST")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the playlist never ended:\n%s", body)
		}
	}
	ext := ".m4s"
	if format == "ts" {
		ext = ".ts"
	}
	// Every segment's key line, then its URI.
	type keyed struct{ uri, keyURI, iv string }
	var segs []keyed
	var cur keyed
	for _, line := range strings.Split(string(body), "\n") {
		if m := e2eKeyLine.FindStringSubmatch(line); m != nil {
			cur = keyed{keyURI: m[1], iv: m[2]}
		} else if strings.HasPrefix(line, "#EXT-X-KEY:METHOD=NONE") {
			cur = keyed{}
		} else if strings.HasSuffix(line, ext) && !strings.HasPrefix(line, "#") {
			cur.uri = line
			segs = append(segs, cur)
		}
	}
	if len(segs) < 3 {
		t.Fatalf("%d segments:\n%s", len(segs), body)
	}
	keys := map[string][]byte{}
	for _, s := range segs {
		if s.keyURI == "" {
			t.Fatalf("%s has no key:\n%s", s.uri, body)
		}
		if keys[s.keyURI] == nil {
			code, k, h := httpGet(t, o.url("/live/enc/"+s.keyURI))
			if code != 200 || len(k) != 16 || !strings.Contains(h.Get("Cache-Control"), "no-store") {
				t.Fatalf("key %s: %d, %d bytes, %q", s.keyURI, code, len(k), h.Get("Cache-Control"))
			}
			keys[s.keyURI] = k
		}
	}
	if want := (len(segs) + 1) / 2; len(keys) < want {
		t.Errorf("%d keys for %d segments with --key-rotation 2", len(keys), len(segs))
	}

	// A raw segment and its first part: ciphertext, and media once decrypted.
	s := segs[1]
	iv, _ := hex.DecodeString(s.iv)
	part := strings.TrimSuffix(s.uri, ext) + ".0" + ext
	for _, name := range []string{s.uri, part} {
		code, raw, _ := httpGet(t, o.url("/live/enc/"+name))
		if code != 200 {
			t.Fatalf("%s: %d", name, code)
		}
		if isClearMedia(raw, format) {
			t.Errorf("%s is served in the clear", name)
		}
		if plain := cbcDecrypt(t, keys[s.keyURI], iv, raw); !isClearMedia(plain, format) {
			t.Errorf("%s decrypted with its key is not %s: % x", name, format, plain[:min(len(plain), 16)])
		}
	}

	// ffmpeg's HLS demuxer decodes the whole stream, decrypting it.
	dec := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-allowed_extensions", "ALL", "-i", url,
		"-map", "0:v:0", "-f", "framemd5", "-")
	var stderr bytes.Buffer
	dec.Stderr = &stderr
	out, err := dec.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg decoding the encrypted stream: %v\n%s", err, stderr.String())
	}
	frames := 0
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && l[0] != '#' {
			frames++
		}
	}
	if frames < 6*30 {
		t.Errorf("ffmpeg decoded %d frames, want at least 6 s (180)", frames)
	}

	// No key anywhere it must not be.
	_, api, _ := httpGet(t, "http://"+o.api+"/api/v1/streams")
	var list struct {
		Streams []struct {
			Encrypt string `json:"encrypt"`
		} `json:"streams"`
	}
	if json.Unmarshal(api, &list) != nil || len(list.Streams) != 1 || list.Streams[0].Encrypt != "aes-128" {
		t.Errorf("the API does not say encrypt: aes-128: %s", api)
	}
	_, metrics, _ := httpGet(t, "http://"+o.api+"/metrics")
	if !bytes.Contains(metrics, []byte("fount_encryption_keys_created_total")) {
		t.Error("no key metric")
	}
	places := map[string][]byte{"log": []byte(o.logs.String()), "API": api, "metrics": metrics, "playlist": body}
	filepath.Walk(filepath.Join(dir, "media"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			places[p], _ = os.ReadFile(p)
		}
		return nil
	})
	for uri, k := range keys {
		forms := [][]byte{k, []byte(hex.EncodeToString(k)), []byte(strings.ToUpper(hex.EncodeToString(k))),
			[]byte(base64.StdEncoding.EncodeToString(k)), []byte(base64.RawStdEncoding.EncodeToString(k)), []byte(base64.URLEncoding.EncodeToString(k))}
		for where, b := range places {
			for _, f := range forms {
				if bytes.Contains(b, f) {
					t.Errorf("key %s found in %s", uri, where)
				}
			}
		}
		fi, err := os.Stat(filepath.Join(dir, "keys", "live", "enc", strings.TrimPrefix(uri, "keys/")))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file for %s: %v %v", uri, fi, err)
		}
	}
}

// isClearMedia: MPEG-TS starts with a sync byte, an fMP4 segment or part
// with a styp or moof box.
func isClearMedia(b []byte, format string) bool {
	if format == "ts" {
		return len(b) >= 188 && b[0] == 0x47 && b[188] == 0x47
	}
	return len(b) >= 8 && (string(b[4:8]) == "styp" || string(b[4:8]) == "moof")
}

func cbcDecrypt(t *testing.T, key, iv, ct []byte) []byte {
	t.Helper()
	if len(ct)%aes.BlockSize != 0 {
		t.Fatalf("ciphertext of %d bytes", len(ct))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, ct)
	if n := len(out); n > 0 && int(out[n-1]) >= 1 && int(out[n-1]) <= aes.BlockSize {
		out = out[:n-int(out[n-1])]
	}
	return out
}
