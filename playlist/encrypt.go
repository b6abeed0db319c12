package playlist

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fount-live/fount/storage"
)

// AES-128 segment encryption (RFC 8216 §4.3.2.4): every segment and every
// LL-HLS part is its own resource, encrypted whole with AES-128-CBC and
// PKCS7 padding. A part uses its parent segment's key and IV, as hls.js
// decrypts it (each part's bytes on their own, with the fragment's
// decryptdata). The IV is the segment's media sequence number as a
// 128-bit big-endian integer, the value RFC 8216 §5.2 implies when IV is
// absent; fount writes it out anyway, because a recording renumbers its
// segments from 0 and a player must not derive it from there.
//
// The segmenter knows nothing of this: the Stream encrypts what it is
// handed before placing or storing it.

// keysDir is the path element of the key route, /APP/NAME/keys/ID.key.
const (
	keysDir = "keys"
	keyExt  = ".key"
)

// KeyServer takes each new key before it is first used (Config.KeyServer):
// url is Config.KeyURLTemplate expanded for the stream and key id, which
// the playlists name as the key's URI.
type KeyServer interface {
	PutKey(ctx context.Context, url, stream, id string, key []byte) error
}

// Encrypted reports whether the stream's segments are encrypted.
func (s *Stream) Encrypted() bool { return s.keys != nil }

// streamKey is one content key. uri is what EXT-X-KEY names: relative
// ("keys/ID.key") when fount serves it, else the key server's URL.
type streamKey struct {
	id    string
	key   [16]byte
	uri   string
	block cipher.Block
	uses  int    // segments encrypted with it
	last  uint64 // media sequence number of the last of them
}

// segKey is what a segment or part needs for its EXT-X-KEY line.
type segKey struct {
	uri   string
	iv    [16]byte
	block cipher.Block // nil when read back from a stored playlist
}

// keyRing holds a stream's keys: the one in use, the next one being
// handed to a key server, and those still needed by viewers.
type keyRing struct {
	s *Stream

	mu      sync.Mutex
	cur     *streamKey
	pending chan *streamKey // the next key, delivered when the key server has it (nil: none asked for)
	byID    map[string]*streamKey
	order   []*streamKey
}

func newKeyRing(s *Stream) *keyRing {
	return &keyRing{s: s, byID: make(map[string]*streamKey)}
}

// newKey makes a fresh random key and puts it where viewers will get it:
// the key directory, or the key server (with retries). It is not usable
// until this returns nil.
func (k *keyRing) newKey(ctx context.Context) (*streamKey, error) {
	cfg := k.s.cfg
	sk := &streamKey{}
	var idb [8]byte
	if _, err := rand.Read(sk.key[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, err
	}
	sk.id = hex.EncodeToString(idb[:])
	b, err := aes.NewCipher(sk.key[:])
	if err != nil {
		return nil, err
	}
	sk.block = b
	sk.uri = keysDir + "/" + sk.id + keyExt
	switch {
	case cfg.KeyURLTemplate != "":
		sk.uri = ExpandKeyURL(cfg.KeyURLTemplate, k.s.path, sk.id)
		var err error
		for attempt := range keyPostAttempts {
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(time.Duration(attempt) * keyPostBackoff):
				}
			}
			pctx, cancel := context.WithTimeout(ctx, keyPostTimeout)
			err = cfg.KeyServer.PutKey(pctx, sk.uri, k.s.path, sk.id, sk.key[:])
			cancel()
			if err == nil {
				break
			}
			k.s.totals.keyPostFailures.Add(1)
			k.s.log.Error("key server refused a new key", "stream", k.s.path, "key_id", sk.id, "attempt", attempt+1, "err", err)
		}
		if err != nil {
			return nil, fmt.Errorf("key server: %w", err)
		}
	case cfg.KeyDir != "":
		if err := writeKeyFile(cfg.KeyDir, k.s.path, sk.id, sk.key[:]); err != nil {
			k.s.totals.keyPostFailures.Add(1)
			return nil, fmt.Errorf("key directory: %w", err)
		}
	}
	k.s.totals.keysCreated.Add(1)
	return sk, nil
}

const (
	keyPostAttempts = 3
	keyPostBackoff  = 500 * time.Millisecond
	keyPostTimeout  = 5 * time.Second
)

// ExpandKeyURL fills a key URL template's {stream} (APP/NAME) and {id}.
func ExpandKeyURL(tmpl, stream, id string) string {
	return strings.NewReplacer("{stream}", stream, "{id}", id).Replace(tmpl)
}

// writeKeyFile keeps a key at DIR/APP/NAME/ID.key, readable by fount's
// user only, written whole (rename) so a reader never sees half a key.
func writeKeyFile(dir, stream, id string, key []byte) error {
	d := filepath.Join(dir, filepath.FromSlash(stream))
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(d, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(d, id+keyExt))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// ensure makes the stream's first key (of a publish) if it has none. It
// may block on the key server, so it runs without s.mu. A stream without
// a key fails its segments rather than list them in the clear.
func (k *keyRing) ensure() error {
	k.mu.Lock()
	has := k.cur != nil
	k.mu.Unlock()
	if has {
		return nil
	}
	sk, err := k.newKey(context.Background())
	if err != nil {
		return fmt.Errorf("stream %s: no encryption key: %w", k.s.path, err)
	}
	k.mu.Lock()
	if k.cur == nil {
		k.adoptLocked(sk)
	} else {
		k.keepLocked(sk) // another call made one first; harmless, never listed
	}
	k.mu.Unlock()
	return nil
}

func (k *keyRing) keepLocked(sk *streamKey) {
	k.byID[sk.id] = sk
	k.order = append(k.order, sk)
}

func (k *keyRing) adoptLocked(sk *streamKey) {
	k.keepLocked(sk)
	k.cur = sk
	k.askNextLocked()
}

func (k *keyRing) askNextLocked() {
	if k.s.cfg.KeyRotation > 0 && k.s.cfg.KeyURLTemplate != "" {
		// Ask the key server for the next key now, so that rotation never
		// waits on it.
		ch := make(chan *streamKey, 1)
		k.pending = ch
		go func() {
			sk, err := k.newKey(context.Background())
			if err != nil {
				sk = nil
			}
			ch <- sk
		}()
	}
}

// take returns the key for the segment numbered msn and counts it; it
// never blocks. With rotation it moves to a fresh key every
// Config.KeyRotation segments, or, if the key server has not taken the
// next key, keeps the current one (logged and counted) rather than list a
// key nobody can fetch.
func (k *keyRing) take(msn uint64) *segKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur == nil {
		return nil
	}
	if n := k.s.cfg.KeyRotation; n > 0 && k.cur.uses >= n {
		k.rotateLocked()
	}
	k.cur.uses++
	k.cur.last = msn
	k.pruneLocked(msn)
	sk := &segKey{uri: k.cur.uri, block: k.cur.block}
	binary.BigEndian.PutUint64(sk.iv[8:], msn)
	return sk
}

func (k *keyRing) rotateLocked() {
	if k.pending == nil {
		// Made here and now: a directory write or memory only.
		sk, err := k.newKey(context.Background())
		if err != nil {
			k.s.log.Error("key rotation failed: the previous key stays in use", "stream", k.s.path, "err", err)
			return
		}
		k.adoptLocked(sk)
		return
	}
	select {
	case sk := <-k.pending:
		k.pending = nil
		if sk == nil {
			k.s.totals.keyRotationsMissed.Add(1)
			k.s.log.Error("key rotation failed: the key server did not take the next key; the previous key stays in use", "stream", k.s.path)
			k.askNextLocked() // again, for the next rotation
			return
		}
		k.adoptLocked(sk)
	default:
		k.s.totals.keyRotationsMissed.Add(1)
		k.s.log.Warn("key rotation late: the key server has not answered yet; the previous key stays in use", "stream", k.s.path)
	}
}

// keyKeep is how many segments a key stays in memory after its last one:
// past the window and the grace period it is served from the key
// directory (or not at all: no viewer can have the segment).
func (k *keyRing) keyKeep() uint64 {
	return uint64(2*k.s.cfg.WindowSize + 16)
}

func (k *keyRing) pruneLocked(msn uint64) {
	keep := k.keyKeep()
	i := 0
	for i < len(k.order)-1 && k.order[i] != k.cur && k.order[i].uses > 0 && k.order[i].last+keep < msn {
		delete(k.byID, k.order[i].id)
		i++
	}
	if i > 0 {
		k.order = append(k.order[:0], k.order[i:]...)
	}
}

// reset starts a new publish: with KeyRotation 0 that is a new key. The
// old keys stay servable.
func (k *keyRing) reset() {
	k.mu.Lock()
	k.cur = nil
	k.mu.Unlock()
}

func (k *keyRing) lookup(id string) ([]byte, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	sk, ok := k.byID[id]
	if !ok {
		return nil, false
	}
	return bytes.Clone(sk.key[:]), true
}

// encryptCBC returns plain encrypted with AES-128-CBC and PKCS7 padding, in
// a fresh slice.
func encryptCBC(block cipher.Block, iv [16]byte, plain []byte) []byte {
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	out := make([]byte, len(plain)+pad)
	copy(out, plain)
	for i := len(plain); i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(out, out)
	return out
}

// encrypt encrypts a segment's or part's bytes with the key it was given.
func (sk *segKey) encrypt(plain []byte) []byte { return encryptCBC(sk.block, sk.iv, plain) }

// appendKeyLine writes the EXT-X-KEY for a segment (and its parts), with
// prefix before a relative URI (a recording's "../../").
func appendKeyLine(buf []byte, k *segKey, prefix string) []byte {
	buf = append(buf, "#EXT-X-KEY:METHOD=AES-128,URI=\""...)
	if !strings.Contains(k.uri, "://") {
		buf = append(buf, prefix...)
	}
	buf = append(buf, k.uri...)
	buf = append(buf, "\",IV=0x"...)
	buf = hex.AppendEncode(buf, k.iv[:])
	return append(buf, '\n')
}

// keyNone ends the last EXT-X-KEY's reach before an EXT-X-MAP: init
// segments are not encrypted, and a key tag in force would say they are.
const keyNone = "#EXT-X-KEY:METHOD=NONE\n"

// parseKeyLine reads back what appendKeyLine wrote (restore.go); nil for
// METHOD=NONE or anything fount did not write.
func parseKeyLine(line string) *segKey {
	rest, ok := strings.CutPrefix(line, "#EXT-X-KEY:METHOD=AES-128,URI=\"")
	if !ok {
		return nil
	}
	uri, ivs, ok := strings.Cut(rest, "\",IV=0x")
	if !ok {
		return nil
	}
	iv, err := hex.DecodeString(ivs)
	if err != nil || len(iv) != 16 {
		return nil
	}
	k := &segKey{uri: uri}
	copy(k.iv[:], iv)
	return k
}

// SplitKeyPath splits /APP/NAME[/RENDITION]/keys/ID.key into the stream's
// path and the key id.
func SplitKeyPath(p string) (stream, id string, ok bool) {
	p, ok = strings.CutPrefix(p, "/")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(p, "/"+keysDir+"/")
	if i < 0 {
		return "", "", false
	}
	stream, file := p[:i], p[i+len(keysDir)+2:]
	id, ok = strings.CutSuffix(file, keyExt)
	if n := strings.Count(stream, "/"); !ok || n < 1 || n > 2 || storage.ValidKey(stream) != nil || storage.ValidName(id) != nil {
		return "", "", false
	}
	return stream, id, true
}

// recKeyed reports whether a key is in force at the end of a recording's
// stored lines (a continued recording must end it before an EXT-X-MAP).
func recKeyed(body []byte) bool {
	i := bytes.LastIndex(body, []byte("#EXT-X-KEY:"))
	return i >= 0 && !bytes.HasPrefix(body[i:], []byte(keyNone))
}

// serveKey answers a key fount holds: from the stream's memory, else from
// the key directory. Never cached by shared caches; never logged.
func (r *Registry) serveKey(w http.ResponseWriter, req *http.Request, stream, id string) {
	h := w.Header()
	var key []byte
	if s := r.Stream(stream); s != nil && s.keys != nil {
		key, _ = s.keys.lookup(id)
	}
	if key == nil && r.cfg.KeyDir != "" {
		b, err := os.ReadFile(filepath.Join(r.cfg.KeyDir, filepath.FromSlash(stream), id+keyExt))
		if err == nil && len(b) == 16 {
			key = b
		}
	}
	if key == nil {
		h.Set("Cache-Control", errorCacheControl)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Length", strconv.Itoa(len(key)))
	if req.Method == http.MethodHead {
		return
	}
	w.Write(key)
}

// encryptedSegment places and stores an encrypted segment. It cannot share
// its parts' bytes (each part is encrypted on its own, with its own
// padding), so it gets its own encrypted copy of the whole segment, made
// from the clear bytes: the segmenter's, or its prefix and the parts'
// clear bytes kept by Part. No I-frame playlist: its byte ranges would
// point into ciphertext.
func (s *Stream) encryptedSegment(e *entry, seg Segment, clearParts []byte, partsFile *memFile) error {
	plain := seg.Data
	if seg.PartsFollow && len(clearParts) > 0 {
		plain = make([]byte, 0, len(seg.Data)+len(clearParts))
		plain = append(append(plain, seg.Data...), clearParts...)
	}
	data := e.key.encrypt(plain)
	e.size = int64(len(data))
	e.iframes = nil
	if !s.cfg.inProcessStore {
		// data is fresh and never written to again: the store may keep it.
		if err := s.cfg.Store.Put(context.Background(), s.path+"/"+e.name, storage.Object{Data: data, ContentType: s.mediaType(), ModTime: e.pdt}); err != nil {
			s.totals.storageErrors.Add(1)
			e.missing = true
			s.log.Error("storing segment failed", "stream", s.path, "segment", e.name, "err", err)
		}
	}
	o := s.placeOwn(e, data, true, partsFile)
	s.byName.Store(e.name, o)
	s.finishSegment(e, seg)
	return nil
}
