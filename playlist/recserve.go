package playlist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fount-live/fount/playlist/httploop"
	"github.com/fount-live/fount/storage"
)

// The viewer URLs of recordings: /APP/NAME[/RENDITION]/rec/ID/index.m3u8,
// and the whole recording as one file, recording.mp4 (fMP4) or
// recording.ts (MPEG-TS). Segments are the live ones, at their own URLs
// (the playlist names them ../../segN.ts). Everything is read from storage:
// a recording outlives its stream and the process that made it.

const (
	recDownloadMP4 = "recording.mp4"
	recDownloadTS  = "recording.ts"
)

// recPlaylistMaxAge: a finished recording's playlist changes only when the
// recording is deleted; one being made changes every segment.
const recPlaylistMaxAge = 300

// SplitRecordingPath splits a recording's viewer path,
// /APP/NAME[/RENDITION]/rec/ID/FILE, each element a valid name.
func SplitRecordingPath(p string) (stream, id, file string, ok bool) {
	p, ok = strings.CutPrefix(p, "/")
	if !ok || !strings.Contains(p, "/"+recDir+"/") {
		// Every request the loops hand over (LL-HLS blocking reloads
		// above all) comes here first: no split for them.
		return "", "", "", false
	}
	el := strings.Split(p, "/")
	if n := len(el); n < 5 || n > 6 || el[n-3] != recDir {
		return "", "", "", false
	}
	for _, e := range el {
		if storage.ValidName(e) != nil {
			return "", "", "", false
		}
	}
	n := len(el)
	return strings.Join(el[:n-3], "/"), el[n-2], el[n-1], true
}

func (r *Registry) serveRecording(w http.ResponseWriter, req *http.Request, stream, id, file string) {
	switch file {
	case playlistName:
		r.serveRecordingPlaylist(w, req, stream, id)
	case recDownloadMP4, recDownloadTS:
		r.serveDownload(w, req, stream, id, file)
	default:
		notFound(w)
	}
}

// readRecording reads a recording's stored playlist; false (answered) when
// it cannot.
func (r *Registry) readRecording(w http.ResponseWriter, req *http.Request, key string) ([]byte, time.Time, bool) {
	obj, err := r.cfg.Store.Get(req.Context(), key)
	if errors.Is(err, storage.ErrNotFound) {
		notFound(w)
		return nil, time.Time{}, false
	}
	if err != nil {
		r.cfg.Logger.Error("reading a recording from storage", "key", key, "err", err)
		http.Error(w, "storage error", http.StatusInternalServerError)
		return nil, time.Time{}, false
	}
	return obj.Data, obj.ModTime, true
}

func (r *Registry) serveRecordingPlaylist(w http.ResponseWriter, req *http.Request, stream, id string) {
	body, mod, ok := r.readRecording(w, req, recPrefix(stream, id)+playlistName)
	if !ok {
		return
	}
	maxAge := 1
	if bytes.Contains(body, []byte("#EXT-X-ENDLIST")) || bytes.Contains(body, []byte("#EXT-X-STREAM-INF")) {
		maxAge = recPlaylistMaxAge
	}
	if q := carry(r, req.URL.RawQuery); q != "" {
		body = withQuery(body, q)
	}
	serveBytes(w, req, httploop.Head{
		ContentType:  playlistType,
		CacheControl: "public, max-age=" + strconv.Itoa(maxAge),
		Length:       int64(len(body)),
		Modified:     mod,
	}, body)
}

// serveDownload streams a recording as one file: the init segment (fMP4),
// then every segment in order, each read from storage as it is sent, so a
// recording of hours costs a segment of memory. A finished recording's
// length is known (recording.json); one being made is sent to its current
// end. A recording of several renditions redirects to its first.
func (r *Registry) serveDownload(w http.ResponseWriter, req *http.Request, stream, id, file string) {
	ctx := req.Context()
	prefix := recPrefix(stream, id)
	pl, _, ok := r.readRecording(w, req, prefix+playlistName)
	if !ok {
		return
	}
	if bytes.Contains(pl, []byte("#EXT-X-KEY:METHOD=AES-128")) {
		// Its segments are each encrypted on their own: joined, they are
		// no file. The HLS recording plays.
		w.Header().Set("Cache-Control", errorCacheControl)
		http.Error(w, "an encrypted recording has no download; play its playlist", http.StatusNotFound)
		return
	}
	if bytes.Contains(pl, []byte("#EXT-X-STREAM-INF")) {
		for _, line := range strings.Split(string(pl), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && line[0] != '#' {
				to := path.Join(path.Dir(prefix+playlistName), path.Dir(line), file)
				http.Redirect(w, req, "/"+to, http.StatusFound)
				return
			}
		}
		notFound(w)
		return
	}
	segs, inits := recObjects(prefix, pl)
	fmp4 := len(inits) > 0
	if len(segs) == 0 || fmp4 != (file == recDownloadMP4) {
		w.Header().Set("Cache-Control", errorCacheControl)
		if len(segs) > 0 {
			other := recDownloadTS
			if fmp4 {
				other = recDownloadMP4
			}
			http.Error(w, "not found: this recording is "+other, http.StatusNotFound)
			return
		}
		notFound(w)
		return
	}
	var init []byte
	if fmp4 {
		obj, err := r.cfg.Store.Get(ctx, inits[0])
		if err != nil {
			r.cfg.Logger.Error("reading a recording's init segment", "key", inits[0], "err", err)
			http.Error(w, "storage error", http.StatusInternalServerError)
			return
		}
		init = obj.Data
		if len(inits) > 1 {
			// A new init mid-way (the encoder changed its codec
			// settings): one file holds one; players of the HLS
			// recording are not affected.
			r.cfg.Logger.Warn("recording download: the recording changes its init segment; the file keeps the first", "stream", stream, "recording", id, "inits", len(inits))
		}
	}
	h := w.Header()
	typ := storage.TSType
	if fmp4 {
		typ = storage.MP4Type
	}
	h.Set("Content-Type", typ)
	h.Set("Cache-Control", "no-cache")
	name := strings.ReplaceAll(stream, "/", "-") + "-" + id + path.Ext(file)
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w)}
	if sizes := r.recSizes(req, prefix, pl, len(segs)); sizes != nil {
		// Finished, every size known: a file of known length that
		// answers range requests (ffprobe and players seek in it).
		rr := newRecReader(req.Context(), r.cfg.Store, init, segs, sizes)
		http.ServeContent(dw, req, "", time.Time{}, rr)
		if rr.err != nil {
			r.cfg.Logger.Error("recording download: a segment cannot be read; the download is cut", "stream", stream, "recording", id, "err", rr.err)
		}
		return
	}
	// Being made (or sizes lost to a crash): sent as it is, to its
	// current end.
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodHead {
		return
	}
	write := func(b []byte) {
		if _, err := dw.Write(b); err != nil {
			panic(http.ErrAbortHandler) // the viewer left
		}
	}
	if init != nil {
		write(init)
	}
	for _, k := range segs {
		obj, err := r.cfg.Store.Get(ctx, k)
		if err != nil {
			// Cut the connection rather than end a short file that
			// looks whole.
			r.cfg.Logger.Error("recording download: a segment cannot be read; the download is cut", "stream", stream, "recording", id, "key", k, "err", err)
			panic(http.ErrAbortHandler)
		}
		write(obj.Data)
	}
}

// recSizes returns the sizes of a finished recording's n segments from
// its recording.json, or nil.
func (r *Registry) recSizes(req *http.Request, prefix string, pl []byte, n int) []int64 {
	if !bytes.Contains(pl, []byte("#EXT-X-ENDLIST")) {
		return nil
	}
	in, err := r.readRecInfo(req.Context(), prefix+recInfoName)
	if err != nil || len(in.Sizes) != n {
		return nil
	}
	return in.Sizes
}

// deadlineWriter gives each write of a download its own deadline: a
// download of hours outlasts the viewer port's write timeout.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(downloadWriteTimeout))
	return w.ResponseWriter.Write(b)
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recReader reads a recording as one file, head (the init segment) then
// its segments, fetching a segment from storage when a read reaches it:
// an io.ReadSeeker for http.ServeContent, holding one segment at a time.
type recReader struct {
	ctx    context.Context
	store  storage.Store
	head   []byte
	keys   []string
	sizes  []int64
	starts []int64 // offset of each segment in the file
	size   int64
	off    int64
	cur    int    // index of the segment in data; -1 for none
	data   []byte // its bytes
	err    error  // the first storage failure
}

func newRecReader(ctx context.Context, store storage.Store, head []byte, keys []string, sizes []int64) *recReader {
	rr := &recReader{ctx: ctx, store: store, head: head, keys: keys, sizes: sizes, starts: make([]int64, len(keys)), cur: -1}
	off := int64(len(head))
	for i, n := range sizes {
		rr.starts[i] = off
		off += n
	}
	rr.size = off
	return rr
}

func (rr *recReader) Read(p []byte) (int, error) {
	if rr.off >= rr.size {
		return 0, io.EOF
	}
	if rr.off < int64(len(rr.head)) {
		n := copy(p, rr.head[rr.off:])
		rr.off += int64(n)
		return n, nil
	}
	i := sort.Search(len(rr.starts), func(i int) bool { return rr.starts[i] > rr.off }) - 1
	if i != rr.cur {
		obj, err := rr.store.Get(rr.ctx, rr.keys[i])
		if err == nil && int64(len(obj.Data)) != rr.sizes[i] {
			err = fmt.Errorf("%d bytes, %d when recorded", len(obj.Data), rr.sizes[i])
		}
		if err != nil {
			rr.err = fmt.Errorf("%s: %w", rr.keys[i], err)
			return 0, rr.err
		}
		rr.cur, rr.data = i, obj.Data
	}
	n := copy(p, rr.data[rr.off-rr.starts[i]:])
	rr.off += int64(n)
	return n, nil
}

func (rr *recReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += rr.off
	case io.SeekEnd:
		offset += rr.size
	default:
		return 0, errors.New("recReader: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("recReader: negative position")
	}
	rr.off = offset
	return offset, nil
}

// downloadWriteTimeout bounds the sending of one segment of a download.
const downloadWriteTimeout = time.Minute
