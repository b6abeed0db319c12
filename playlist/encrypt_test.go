package playlist

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fount-live/fount/storage"
)

func newEncRegistry(t testing.TB, cfg Config) (*Registry, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	if cfg.Store == nil {
		cfg.Store = storage.NewMemory()
	}
	cfg.TargetDuration, cfg.WindowSize, cfg.Now, cfg.Encrypt = 2*time.Second, 6, clk.Now, true
	cfg.BlockTimeout = 300 * time.Millisecond
	return NewRegistry(cfg), clk
}

// decryptCBC undoes AES-128-CBC with PKCS7 padding, as a player does.
func decryptCBC(t testing.TB, key, iv, ct []byte) []byte {
	t.Helper()
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		t.Fatalf("ciphertext of %d bytes is not whole blocks", len(ct))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, ct)
	pad := int(out[len(out)-1])
	if pad < 1 || pad > aes.BlockSize || !bytes.Equal(out[len(out)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		t.Fatalf("bad PKCS7 padding %d", pad)
	}
	return out[:len(out)-pad]
}

var keyLineRE = regexp.MustCompile(`#EXT-X-KEY:METHOD=AES-128,URI="([^"]+)",IV=0x([0-9a-f]{32})\n`)

// keyedURIs maps every segment and part URI of a media playlist to the key
// URI and IV of the EXT-X-KEY in force before it.
func keyedURIs(t testing.TB, body string) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	var cur [2]string
	for _, line := range strings.Split(body, "\n") {
		switch {
		case strings.HasPrefix(line, "#EXT-X-KEY:METHOD=NONE"):
			cur = [2]string{}
		case strings.HasPrefix(line, "#EXT-X-KEY:"):
			m := keyLineRE.FindStringSubmatch(line + "\n")
			if m == nil {
				t.Fatalf("bad key line %q", line)
			}
			cur = [2]string{m[1], m[2]}
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			_, uri, _ := strings.Cut(line, `URI="`)
			uri, _, _ = strings.Cut(uri, `"`)
			out[uri] = cur
		case line != "" && line[0] != '#':
			out[line] = cur
		}
	}
	return out
}

func fetch(t testing.TB, h http.Handler, path string) (int, []byte, http.Header) {
	t.Helper()
	resp := get(t.(*testing.T), h, http.MethodGet, path)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, b, resp.Header
}

// TestEncryptLL: an fMP4 LL-HLS stream with a key every two segments. The
// playlist keys every segment and part (relative URI, explicit IV, the
// parts with their segment's), the served key decrypts each of them back
// to the clear bytes handed over, the key changes every two segments, and
// the init segment stays clear (METHOD=NONE before a later EXT-X-MAP).
func TestEncryptLL(t *testing.T) {
	for _, partsFollow := range []bool{false, true} {
		t.Run(fmt.Sprint("partsFollow=", partsFollow), func(t *testing.T) {
			r, clk := newEncRegistry(t, Config{FMP4: true, PartTarget: 200 * time.Millisecond, KeyRotation: 2})
			h := r.Handler()
			s, _ := r.Publish("live/enc")
			s.Init([]byte("ftypmoov-clear-init"))
			clear := map[string][]byte{}
			for seg := range 5 {
				if seg == 3 {
					s.Init([]byte("ftypmoov-second-init"))
				}
				var all []byte
				prefix := []byte(fmt.Sprintf("styp%d;", seg))
				all = append(all, prefix...)
				for i := range 4 {
					data := []byte(fmt.Sprintf("part %d of segment %d: %s", i, seg, strings.Repeat("x", seg*7+i)))
					clear[fmt.Sprintf("seg%d.%d.m4s", seg, i)] = data
					all = append(all, data...)
					if err := s.Part(Part{Data: data, Duration: 200 * time.Millisecond, Independent: i == 0}); err != nil {
						t.Fatal(err)
					}
				}
				clear[fmt.Sprintf("seg%d.m4s", seg)] = bytes.Clone(all)
				handed := all
				if partsFollow {
					handed = prefix
				}
				if err := s.Segment(Segment{Data: handed, PartsFollow: partsFollow, Duration: 800 * time.Millisecond, ProgramDateTime: clk.Now()}); err != nil {
					t.Fatal(err)
				}
				clk.Add(800 * time.Millisecond)
			}
			addParts(t, s, 2) // an open segment's parts are keyed too
			clear["seg5.0.m4s"], clear["seg5.1.m4s"] = []byte("open part"), []byte("open part")

			_, body, _ := fetch(t, h, "/live/enc/index.m3u8")
			pl := string(body)
			if !strings.Contains(pl, "#EXT-X-KEY:METHOD=NONE\n#EXT-X-MAP:URI=\"init1.mp4\"") {
				t.Errorf("the second init is not preceded by METHOD=NONE:\n%s", pl)
			}
			if strings.Index(pl, "#EXT-X-MAP:URI=\"init0.mp4\"") > strings.Index(pl, "#EXT-X-KEY") {
				t.Errorf("a key is in force at the first EXT-X-MAP:\n%s", pl)
			}
			keyed := keyedURIs(t, pl)
			keysBySeg := map[int]string{}
			for name, want := range clear {
				k, ok := keyed[name]
				if !ok {
					t.Fatalf("%s not listed in\n%s", name, pl)
				}
				if !strings.HasPrefix(k[0], "keys/") || !strings.HasSuffix(k[0], ".key") {
					t.Fatalf("%s: key URI %q is not keys/ID.key", name, k[0])
				}
				var msn, idx int
				if n, _ := fmt.Sscanf(name, "seg%d.%d.m4s", &msn, &idx); n == 0 {
					t.Fatal(name)
				}
				if wantIV := fmt.Sprintf("%032x", msn); k[1] != wantIV {
					t.Errorf("%s: IV %s, want %s (its segment's number)", name, k[1], wantIV)
				}
				keysBySeg[msn] = k[0]
				code, key, hdr := fetch(t, h, "/live/enc/"+k[0])
				if code != 200 || len(key) != 16 {
					t.Fatalf("key %s: %d, %d bytes", k[0], code, len(key))
				}
				if hdr.Get("Content-Type") != "application/octet-stream" || !strings.Contains(hdr.Get("Cache-Control"), "no-store") || !strings.Contains(hdr.Get("Cache-Control"), "private") {
					t.Errorf("key headers: %v", hdr)
				}
				code, ct, _ := fetch(t, h, "/live/enc/"+name)
				if code != 200 {
					t.Fatalf("%s: %d", name, code)
				}
				if bytes.Contains(ct, want[:min(len(want), 8)]) {
					t.Errorf("%s is served in the clear", name)
				}
				iv, _ := hex.DecodeString(k[1])
				if got := decryptCBC(t, key, iv, ct); !bytes.Equal(got, want) {
					t.Errorf("%s decrypts to %q, want %q", name, got, want)
				}
			}
			// Rotation every 2 segments: 0,1 | 2,3 | 4,5.
			if keysBySeg[0] != keysBySeg[1] || keysBySeg[2] != keysBySeg[3] || keysBySeg[4] != keysBySeg[5] ||
				keysBySeg[1] == keysBySeg[2] || keysBySeg[3] == keysBySeg[4] || keysBySeg[0] == keysBySeg[4] {
				t.Errorf("keys by segment do not rotate every 2: %v", keysBySeg)
			}
			if init, _ := s.byName.Load("init0.mp4"); string(init.(*object).data) != "ftypmoov-clear-init" {
				t.Error("the init segment changed")
			}
			if code, _, _ := fetch(t, h, "/live/enc/keys/0123456789abcdef.key"); code != 404 {
				t.Errorf("unknown key id: %d, want 404", code)
			}
			if code, _, _ := fetch(t, h, "/live/nosuch/keys/0123456789abcdef.key"); code != 404 {
				t.Errorf("unknown stream's key: %d, want 404", code)
			}
			if r.Stats().KeysCreated != 3 {
				t.Errorf("keys created %d, want 3", r.Stats().KeysCreated)
			}
		})
	}
}

// TestEncryptSkip: a delta update keeps the key tag of the first segment
// it lists.
func TestEncryptSkip(t *testing.T) {
	r, clk := newEncRegistry(t, Config{FMP4: true, PartTarget: 200 * time.Millisecond, WindowSize: 30})
	r.cfg.WindowSize = 30
	s, _ := r.Publish("live/skip")
	s.Init([]byte("ftypmoov"))
	for range 12 {
		addLLSegment(t, s, clk, 10)
	}
	_, body, _ := fetch(t, r.Handler(), "/live/skip/index.m3u8?_HLS_skip=YES")
	pl := string(body)
	i := strings.Index(pl, "#EXT-X-SKIP:SKIPPED-SEGMENTS=")
	if i < 0 {
		t.Fatalf("no skip:\n%s", pl)
	}
	rest := pl[i:]
	k := strings.Index(rest, "#EXT-X-KEY:METHOD=AES-128")
	first := strings.Index(rest, "#EXTINF:")
	if k < 0 || k > first {
		t.Fatalf("the first segment after EXT-X-SKIP has no key tag:\n%s", pl)
	}
	if strings.Contains(rest[:k], ".m4s") {
		t.Fatalf("media listed before the key:\n%s", pl)
	}
}

// TestEncryptTS: classic HLS in MPEG-TS, a key per publish: the segments
// decrypt, a reconnect brings a new key, and a store outside the process
// never holds a key or a clear segment, while the key directory holds the
// keys, 0600.
func TestEncryptTS(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.NewDir(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	keyDir := filepath.Join(dir, "keys")
	r, clk := newEncRegistry(t, Config{Store: store, KeyDir: keyDir})
	h := r.Handler()
	s, _ := r.Publish("live/ts")
	plain := bytes.Repeat([]byte{0x47, 1, 2, 3}, 47)
	for range 3 {
		if err := s.Segment(Segment{Data: plain, Duration: 2 * time.Second, ProgramDateTime: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		clk.Add(2 * time.Second)
	}
	s.Unpublish()
	s2, err := r.Publish("live/ts")
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Segment(Segment{Data: plain, Duration: 2 * time.Second, ProgramDateTime: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	_, body, _ := fetch(t, h, "/live/ts/index.m3u8")
	keyed := keyedURIs(t, string(body))
	if keyed["seg0.ts"][0] != keyed["seg2.ts"][0] || keyed["seg2.ts"][0] == keyed["seg3.ts"][0] {
		t.Errorf("want one key per publish: %v", keyed)
	}
	var keys [][]byte
	for name, k := range keyed {
		_, key, _ := fetch(t, h, "/live/ts/"+k[0])
		keys = append(keys, key)
		stored, err := store.Get(context.Background(), "live/ts/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Data[0] == 0x47 {
			t.Errorf("%s stored in the clear", name)
		}
		iv, _ := hex.DecodeString(k[1])
		if got := decryptCBC(t, key, iv, stored.Data); !bytes.Equal(got, plain) {
			t.Errorf("%s: stored copy does not decrypt", name)
		}
		fi, err := os.Stat(filepath.Join(keyDir, "live", "ts", strings.TrimPrefix(k[0], "keys/")))
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 16 {
			t.Errorf("key file of %s: %v %v", name, fi, err)
		}
	}
	filepath.Walk(filepath.Join(dir, "media"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, k := range keys {
			if bytes.Contains(b, k) || bytes.Contains(b, []byte(hex.EncodeToString(k))) {
				t.Errorf("%s holds a key", p)
			}
		}
		return nil
	})
	// A key no longer in memory (a restart) is served from the key directory.
	r2, _ := newEncRegistry(t, Config{Store: store, KeyDir: keyDir})
	if code, key, _ := fetch(t, r2.Handler(), "/live/ts/"+keyed["seg0.ts"][0]); code != 200 || !bytes.Equal(key, keys[0]) && len(key) != 16 {
		t.Errorf("key from the directory: %d", code)
	}
	// And the restored playlist keeps its key lines.
	s3, err := r2.Publish("live/ts")
	if err != nil {
		t.Fatal(err)
	}
	_ = s3
	_, body2, _ := fetch(t, r2.Handler(), "/live/ts/index.m3u8")
	if k := keyedURIs(t, string(body2)); k["seg0.ts"] != keyed["seg0.ts"] {
		t.Errorf("restored playlist lost the key of seg0.ts:\n%s", body2)
	}
}

type fakeKeyServer struct {
	mu   sync.Mutex
	keys map[string][]byte
	fail bool
}

func (f *fakeKeyServer) PutKey(_ context.Context, url, stream, id string, key []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return fmt.Errorf("refused")
	}
	f.keys[url] = bytes.Clone(key)
	return nil
}

// TestEncryptKeyServer: keys go to the key server before first use, the
// playlist names the server's URL and fount serves none; when the server
// refuses the next key, the previous one stays in use (counted).
func TestEncryptKeyServer(t *testing.T) {
	ks := &fakeKeyServer{keys: map[string][]byte{}}
	r, clk := newEncRegistry(t, Config{KeyRotation: 1, KeyURLTemplate: "https://kms.example/{stream}/{id}", KeyServer: ks})
	s, _ := r.Publish("live/kms")
	seg := func() {
		if err := s.Segment(Segment{Data: []byte("clear ts"), Duration: 2 * time.Second, ProgramDateTime: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		clk.Add(2 * time.Second)
	}
	// nextReady: the key asked ahead has reached the ring (the server
	// having it is not enough: the ring takes it a moment later, and a
	// rotation before that keeps the current key).
	nextReady := func() bool {
		s.keys.mu.Lock()
		defer s.keys.mu.Unlock()
		return s.keys.pending != nil && len(s.keys.pending) == 1
	}
	seg()
	waitFor(t, func() bool { ks.mu.Lock(); defer ks.mu.Unlock(); return len(ks.keys) == 2 }) // the first, and the next one ahead
	waitFor(t, nextReady)
	seg()
	waitFor(t, func() bool { ks.mu.Lock(); defer ks.mu.Unlock(); return len(ks.keys) == 3 }) // the third, asked ahead
	waitFor(t, func() bool { return r.Stats().KeysCreated == 3 })
	waitFor(t, nextReady)
	ks.mu.Lock()
	ks.fail = true
	ks.mu.Unlock()
	seg()
	// The third key was ready; asking for the fourth fails (3 attempts),
	// and the next segment keeps the third key.
	waitFor(t, func() bool { return r.Stats().KeyStoreFailures >= keyPostAttempts })
	seg()
	_, body, _ := fetch(t, r.Handler(), "/live/kms/index.m3u8")
	keyed := keyedURIs(t, string(body))
	for name, k := range keyed {
		if !strings.HasPrefix(k[0], "https://kms.example/live/kms/") {
			t.Fatalf("%s: key URI %q", name, k[0])
		}
		if _, ok := ks.keys[k[0]]; !ok {
			t.Errorf("%s: its key %s never reached the key server", name, k[0])
		}
	}
	if keyed["seg2.ts"][0] != keyed["seg3.ts"][0] {
		t.Errorf("after a failed hand-over the previous key must stay: %v", keyed)
	}
	if r.Stats().KeyRotationsMissed == 0 {
		t.Error("a missed rotation is not counted")
	}
	if code, _, _ := fetch(t, r.Handler(), "/live/kms/keys/x.key"); code != 404 {
		t.Errorf("fount serves a key-server key: %d", code)
	}
	// The request ahead for the next key gives up too (no goroutine left).
	waitFor(t, func() bool { return r.Stats().KeyStoreFailures >= 2*keyPostAttempts })
	time.Sleep(10 * time.Millisecond)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestEncryptRecording: a recording's playlist carries the key lines, its
// URIs relative to the recording, and refuses the joined download.
func TestEncryptRecording(t *testing.T) {
	dir := t.TempDir()
	store, _ := storage.NewDir(filepath.Join(dir, "media"))
	r, clk := newEncRegistry(t, Config{Store: store, KeyDir: filepath.Join(dir, "keys"), Record: true, FMP4: true})
	s, _ := r.Publish("live/rec")
	s.Init([]byte("ftypmoov"))
	for range 2 {
		s.Segment(Segment{Data: []byte("moof mdat"), Duration: 2 * time.Second, ProgramDateTime: clk.Now()})
		clk.Add(2 * time.Second)
	}
	recs := r.Recordings("")
	if len(recs) != 1 {
		t.Fatalf("recordings: %v", recs)
	}
	_, body, _ := fetch(t, r.Handler(), "/live/rec/rec/"+recs[0].ID+"/index.m3u8")
	keyed := keyedURIs(t, string(body))
	k := keyed["../../seg1.m4s"]
	if !strings.HasPrefix(k[0], "../../keys/") || k[1] != fmt.Sprintf("%032x", 1) {
		t.Fatalf("recording's key line: %v\n%s", k, body)
	}
	if code, key, _ := fetch(t, r.Handler(), "/live/rec/"+strings.TrimPrefix(k[0], "../../")); code != 200 || len(key) != 16 {
		t.Errorf("recording's key: %d", code)
	}
	if code, _, _ := fetch(t, r.Handler(), "/live/rec/rec/"+recs[0].ID+"/recording.mp4"); code != 404 {
		t.Errorf("encrypted download: %d, want 404", code)
	}
}

func TestSplitKeyPath(t *testing.T) {
	for _, tc := range []struct{ path, stream, id string }{
		{"/live/show/keys/0a1b.key", "live/show", "0a1b"},
		{"/live/show/720p/keys/0a1b.key", "live/show/720p", "0a1b"},
		{"/live/keys/0a1b.key", "", ""},
		{"/live/show/keys/0a1b.ts", "", ""},
		{"/live/show/keys/.key", "", ""},
		{"/live/../keys/x.key", "", ""},
		{"/live/show/keys/a/b.key", "", ""},
		{"/a/b/c/d/keys/x.key", "", ""},
		{"/live/show/index.m3u8", "", ""},
	} {
		s, id, ok := SplitKeyPath(tc.path)
		if ok != (tc.stream != "") || s != tc.stream || id != tc.id {
			t.Errorf("%s: %q %q %v", tc.path, s, id, ok)
		}
	}
}

// TestEncryptRenditions: renditions of an encrypted stream each key their
// segments with keys at their own path, and list no I-frame playlist
// (byte ranges into ciphertext).
func TestEncryptRenditions(t *testing.T) {
	r, clk := newEncRegistry(t, Config{})
	h := r.Handler()
	var rends []*Stream
	for _, name := range []string{"720p", "360p"} {
		s, err := r.PublishRendition("live/ab", name)
		if err != nil {
			t.Fatal(err)
		}
		s.SetInfo(MediaInfo{VideoCodecs: "avc1.64001f", AudioCodecs: "mp4a.40.2", Width: 640, Height: 360, FrameRate: 30, VideoRange: "SDR"})
		rends = append(rends, s)
	}
	for i := range 3 {
		for _, s := range rends {
			addAt(t, s, clk, 10*time.Second+time.Duration(i)*2*time.Second, 2*time.Second, 4000)
		}
		clk.Add(2 * time.Second)
	}
	_, mv := body(t, h, "/live/ab/index.m3u8")
	if strings.Contains(mv, "I-FRAME") {
		t.Errorf("an encrypted stream lists I-frame playlists:\n%s", mv)
	}
	if code, _ := body(t, h, "/live/ab/720p/iframes.m3u8"); code != 404 {
		t.Errorf("I-frame playlist: %d, want 404", code)
	}
	_, pl := body(t, h, "/live/ab/720p/index.m3u8")
	k := keyedURIs(t, pl)["seg1.ts"]
	code, key, _ := fetch(t, h, "/live/ab/720p/"+k[0])
	if code != 200 || len(key) != 16 {
		t.Fatalf("rendition key %s: %d\n%s", k[0], code, pl)
	}
	_, seg, _ := fetch(t, h, "/live/ab/720p/seg1.ts")
	iv, _ := hex.DecodeString(k[1])
	if got := decryptCBC(t, key, iv, seg); len(got) != 4000 {
		t.Errorf("rendition segment decrypts to %d bytes", len(got))
	}
}
