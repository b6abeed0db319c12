package playlist

import (
	"bytes"
	"errors"
	"net/http"
	"path"
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

// splitRecordingPath splits /APP/NAME[/RENDITION]/rec/ID/FILE.
func splitRecordingPath(p string) (stream, id, file string, ok bool) {
	p, ok = strings.CutPrefix(p, "/")
	if !ok {
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
	if bytes.Contains(pl, []byte("#EXT-X-ENDLIST")) {
		r.cfg.recordings.mu.Lock()
		in := r.cfg.recordings.byPath[stream][id]
		if in != nil && in.Segments == len(segs) {
			h.Set("Content-Length", strconv.FormatInt(int64(len(init))+in.Bytes, 10))
		}
		r.cfg.recordings.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	write := func(b []byte) {
		// A download of hours outlasts the viewer port's write timeout:
		// each piece gets its own.
		rc.SetWriteDeadline(time.Now().Add(downloadWriteTimeout))
		if _, err := w.Write(b); err != nil {
			panic(http.ErrAbortHandler) // the viewer left
		}
	}
	if init != nil {
		write(init)
	}
	for _, k := range segs {
		obj, err := r.cfg.Store.Get(ctx, k)
		if err != nil {
			// The length is promised: cut the connection rather than
			// send a short file that looks whole.
			r.cfg.Logger.Error("recording download: a segment cannot be read; the download is cut", "stream", stream, "recording", id, "key", k, "err", err)
			panic(http.ErrAbortHandler)
		}
		write(obj.Data)
	}
}

// downloadWriteTimeout bounds the sending of one segment of a download.
const downloadWriteTimeout = time.Minute
