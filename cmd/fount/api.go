package main

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/fount-live/fount/ingest"
	"github.com/fount-live/fount/playlist"
	"github.com/fount-live/fount/rtc"
	"github.com/fount-live/fount/storage"
)

// The JSON API joins the snapshots of ingest, segmenter and playlist, so it
// lives with the wiring; it holds no state of its own.

//go:embed openapi.json
var openAPISpec []byte

type api struct {
	reg      *playlist.Registry
	rtmp     *ingest.Server
	pub      *publisher
	rtc      *rtc.Server // nil: WebRTC off
	httpPort int
	// httpScheme is the viewer port's: "https" when --http-tls-cert
	// makes it speak TLS only, else "http".
	httpScheme string
}

type apiStreamList struct {
	HTTPPort   int         `json:"http_port"`
	HTTPScheme string      `json:"http_scheme"`
	Streams    []apiStream `json:"streams"`
}

type apiVideo struct {
	Codec     string  `json:"codec"`
	Name      string  `json:"name"`
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	FrameRate float64 `json:"frame_rate"`
	Range     string  `json:"range"`
}

type apiAudio struct {
	Codec      string `json:"codec"`
	Name       string `json:"name"`
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
}

// apiTrack is one track the encoder sends (ingest.TrackStats).
type apiTrack struct {
	Kind       string  `json:"kind"`
	ID         uint8   `json:"id"`
	Codec      string  `json:"codec"`
	Codecs     string  `json:"codecs"`
	Width      int     `json:"width,omitempty"`
	Height     int     `json:"height,omitempty"`
	FrameRate  float64 `json:"frame_rate,omitempty"`
	Range      string  `json:"range,omitempty"`
	SampleRate int     `json:"sample_rate,omitempty"`
	Channels   int     `json:"channels,omitempty"`
	InPlaylist bool    `json:"in_playlist"`
	Skipped    string  `json:"skipped,omitempty"`
	Frames     uint64  `json:"frames"`
	Bitrate    int64   `json:"bitrate_bps"`
}

type apiPublisher struct {
	// Protocol is how the publisher sends: "rtmp" (RTMP or RTMPS) or
	// "whip" (WebRTC, docs/webrtc.md).
	Protocol  string     `json:"protocol"`
	Remote    string     `json:"remote"`
	StartedAt time.Time  `json:"started_at"`
	ChunkSize uint32     `json:"chunk_size"`
	Tracks    []apiTrack `json:"tracks"`
}

type apiStream struct {
	App          string        `json:"app"`
	Name         string        `json:"name"`
	Path         string        `json:"path"`
	State        string        `json:"state"`
	PlaybackPath string        `json:"playback_path"`
	Video        *apiVideo     `json:"video"`
	Audio        *apiAudio     `json:"audio"`
	Codecs       string        `json:"codecs"`
	GOPSeconds   float64       `json:"gop_seconds"`
	GOPTooLong   bool          `json:"gop_too_long"`
	BitrateIn    int64         `json:"bitrate_in_bps"`
	BitrateOut   int64         `json:"bitrate_out_bps"`
	Viewers      int64         `json:"viewers_estimate"`
	Publisher    *apiPublisher `json:"publisher"`
	CreatedAt    time.Time     `json:"created_at"`
	Segments     uint64        `json:"segments"`
	Parts        uint64        `json:"parts"`
	NextMSN      uint64        `json:"next_media_sequence"`
	Encrypt      string        `json:"encrypt,omitempty"` // "aes-128"; never a key
	// Renditions: a stream pushed in several has them listed here and
	// each is a stream of its own at APP/NAME/RENDITION.
	Rendition  string        `json:"rendition,omitempty"`
	Renditions []string      `json:"renditions,omitempty"`
	Alignment  *apiAlignment `json:"alignment,omitempty"`
	// Cues: the open ad break, the cues waiting for their segment and the
	// last one taken (docs/markers.md).
	Cues     playlist.CueState `json:"cues"`
	Captions *apiCaptions      `json:"captions,omitempty"` // captions.go
	// WebRTC: WHEP playback at /APP/NAME/whep (docs/webrtc.md); absent
	// when WebRTC is off or the stream is a rendition.
	WebRTC *apiWebRTC `json:"webrtc,omitempty"`
}

// apiWebRTC is a stream's WebRTC playback.
type apiWebRTC struct {
	WHEPPath string `json:"whep_path"`
	Viewers  int    `json:"viewers"`
	Video    bool   `json:"video"` // H.264, VP9 or AV1: playable over WebRTC
	// VideoCodec names the video viewers get; absent when Video is false.
	VideoCodec string `json:"video_codec,omitempty"`
	// Audio: viewers get audio (Opus passed through); an AAC source
	// gives video-only sessions (WebRTC cannot carry AAC untranscoded).
	Audio bool `json:"audio"`
	// BFrames: the video has B-frames, which browsers' WebRTC players
	// cannot show (only its keyframes): encode without them for WebRTC.
	BFrames bool `json:"b_frames"`
}

// apiAlignment counts a rendition's segments that lined up with the other
// renditions' (same number, same start) and those that did not.
type apiAlignment struct {
	Aligned    uint64 `json:"aligned_segments"`
	Misaligned uint64 `json:"misaligned_segments"`
}

// apiRecordingList wraps the recordings as apiStreamList wraps the
// streams: the viewer port comes with them, for their playlist and
// download paths.
type apiRecordingList struct {
	HTTPPort   int                  `json:"http_port"`
	HTTPScheme string               `json:"http_scheme"`
	Recordings []playlist.Recording `json:"recordings"`
}

type apiError struct {
	Error string `json:"error"`
}

func (a *api) streamJSON(s *playlist.Stream, pubs map[string]ingest.PublisherStats) apiStream {
	st := s.Stats()
	app, name, _ := strings.Cut(st.Path, "/")
	name, _, _ = strings.Cut(name, "/")
	out := apiStream{
		App: app, Name: name, Path: st.Path, State: string(st.State),
		PlaybackPath: "/" + st.Path + "/index.m3u8",
		BitrateIn:    int64(st.BitrateIn), BitrateOut: int64(st.BitrateOut),
		CreatedAt: st.Created.UTC(), Segments: st.Segments, Parts: st.Parts, NextMSN: st.NextSequence,
	}
	// Each viewer fetches the whole stream once: bytes out over bytes in
	// counts full-quality viewers (a CDN counts as one).
	if st.BitrateIn > 0 {
		out.Viewers = int64(st.BitrateOut/st.BitrateIn + 0.5)
	}
	if s.Encrypted() {
		out.Encrypt = "aes-128"
	}
	if r := s.Rendition(); r != "" {
		out.Rendition = r
		al, mis := s.Alignment()
		out.Alignment = &apiAlignment{Aligned: al, Misaligned: mis}
	}
	for _, r := range s.Renditions() {
		out.Renditions = append(out.Renditions, r.Rendition())
	}
	out.Cues = s.Cues()
	out.Captions = a.captionsJSON(s)
	if a.rtc != nil && s.Rendition() == "" {
		if w, ok := a.rtc.Stream(st.Path); ok {
			out.WebRTC = &apiWebRTC{WHEPPath: "/" + st.Path + "/whep", Viewers: w.Viewers, Video: w.Video, VideoCodec: w.VideoCodec, Audio: w.Audio, BFrames: w.BFrames}
		}
	}
	if info, ok := a.pub.segmenterInfo(st.Path); ok {
		out.Codecs, out.GOPSeconds, out.GOPTooLong = info.Codecs, info.GOP.Seconds(), info.GOPTooLong
		if v := info.Video; v != nil {
			out.Video = &apiVideo{Codec: v.Codecs, Name: v.Codec.String(), Width: v.Width, Height: v.Height, FrameRate: v.FrameRate, Range: v.Transfer.String()}
		}
		if au := info.Audio; au != nil {
			out.Audio = &apiAudio{Codec: au.Codecs, Name: au.Codec.String(), SampleRate: au.SampleRate, Channels: au.Channels}
		}
	}
	if p, ok := pubs[st.Path]; ok {
		out.Publisher = &apiPublisher{Protocol: "rtmp", Remote: p.Remote, StartedAt: p.Started.UTC(), ChunkSize: p.ChunkSize, Tracks: []apiTrack{}}
		for _, t := range p.Tracks {
			out.Publisher.Tracks = append(out.Publisher.Tracks, apiTrack{
				Kind: t.Kind, ID: t.ID, Codec: t.Codec, Codecs: t.Codecs, Width: t.Width, Height: t.Height,
				FrameRate: t.FrameRate, Range: t.Range, SampleRate: t.SampleRate, Channels: t.Channels,
				InPlaylist: t.InPlaylist, Skipped: t.Skipped, Frames: t.Frames, Bitrate: int64(t.Bitrate),
			})
		}
	}
	if out.Publisher == nil && a.rtc != nil {
		for _, p := range a.rtc.Publishers() {
			if p.Stream == st.Path {
				out.Publisher = &apiPublisher{Protocol: "whip", Remote: p.Remote, StartedAt: p.Started.UTC(), Tracks: []apiTrack{}}
			}
		}
	}
	return out
}

func (a *api) publishers() map[string]ingest.PublisherStats {
	m := make(map[string]ingest.PublisherStats)
	for _, p := range a.rtmp.Stats().Publishers {
		if p.Variant != "" {
			m[p.Stream+"/"+p.Variant] = p
			continue
		}
		m[p.Stream] = p
	}
	return m
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// routes adds the API to mux; token, when set, is required as a bearer
// token on every API and metrics request.
func (a *api) routes(mux *http.ServeMux, metrics http.Handler, token string) {
	guard := func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if token != "" {
				got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
					w.Header().Set("WWW-Authenticate", `Bearer realm="fount"`)
					writeJSON(w, http.StatusUnauthorized, apiError{"missing or wrong bearer token"})
					return
				}
			}
			h(w, r)
		})
	}
	mux.Handle("GET /metrics", guard(metrics.ServeHTTP))
	// Profiles of a live origin under its real load (docs/performance.md);
	// same guard as /metrics: operators only.
	mux.Handle("GET /debug/pprof/", guard(pprof.Index))
	mux.Handle("GET /debug/pprof/profile", guard(pprof.Profile))
	mux.Handle("GET /debug/pprof/trace", guard(pprof.Trace))
	mux.Handle("GET /api/v1/openapi.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPISpec)
	}))
	mux.Handle("GET /api/v1/streams", guard(func(w http.ResponseWriter, _ *http.Request) {
		pubs := a.publishers()
		list := apiStreamList{HTTPPort: a.httpPort, HTTPScheme: a.httpScheme, Streams: []apiStream{}}
		for _, s := range a.reg.Streams() {
			list.Streams = append(list.Streams, a.streamJSON(s, pubs))
		}
		writeJSON(w, http.StatusOK, list)
	}))
	mux.Handle("GET /api/v1/streams/{app}/{name}", guard(func(w http.ResponseWriter, r *http.Request) {
		s := a.reg.Stream(r.PathValue("app") + "/" + r.PathValue("name"))
		if s == nil {
			writeJSON(w, http.StatusNotFound, apiError{"no such stream"})
			return
		}
		writeJSON(w, http.StatusOK, a.streamJSON(s, a.publishers()))
	}))
	mux.Handle("GET /api/v1/streams/{app}/{name}/{rendition}", guard(func(w http.ResponseWriter, r *http.Request) {
		s := a.reg.Stream(r.PathValue("app") + "/" + r.PathValue("name") + "/" + r.PathValue("rendition"))
		if s == nil {
			writeJSON(w, http.StatusNotFound, apiError{"no such rendition"})
			return
		}
		writeJSON(w, http.StatusOK, a.streamJSON(s, a.publishers()))
	}))
	mux.Handle("DELETE /api/v1/streams/{app}/{name}", guard(func(w http.ResponseWriter, r *http.Request) {
		path := r.PathValue("app") + "/" + r.PathValue("name")
		if !a.rtmp.Disconnect(path) && (a.rtc == nil || !a.rtc.Disconnect(path)) {
			writeJSON(w, http.StatusNotFound, apiError{"no publisher on this stream"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.Handle("POST /api/v1/streams/{app}/{name}/cues", guard(a.postCue))
	mux.Handle("POST /api/v1/streams/{app}/{name}/interstitials", guard(a.postInterstitial))
	a.recordingRoutes(mux, guard)
	a.metadataRoutes(mux, guard)
}

// recordingRoutes adds the recordings (--record) to the API. Without
// --record the registry knows none: the list is empty.
func (a *api) recordingRoutes(mux *http.ServeMux, guard func(http.HandlerFunc) http.Handler) {
	mux.Handle("GET /api/v1/recordings", guard(func(w http.ResponseWriter, r *http.Request) {
		stream := r.URL.Query().Get("stream")
		if stream != "" && !validStreamPath(stream) {
			writeJSON(w, http.StatusBadRequest, apiError{"stream must be APP/NAME, each of letters, digits, '-', '_' and '.'"})
			return
		}
		list := apiRecordingList{HTTPPort: a.httpPort, HTTPScheme: a.httpScheme, Recordings: []playlist.Recording{}}
		for _, rec := range a.reg.Recordings(stream) {
			list.Recordings = append(list.Recordings, recordingJSON(rec))
		}
		writeJSON(w, http.StatusOK, list)
	}))
	mux.Handle("GET /api/v1/recordings/{app}/{name}/{id}", guard(func(w http.ResponseWriter, r *http.Request) {
		stream, id, ok := recordingPath(w, r)
		if !ok {
			return
		}
		rec, err := a.reg.Recording(stream, id)
		if err != nil {
			writeRecordingError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, recordingJSON(rec))
	}))
	mux.Handle("DELETE /api/v1/recordings/{app}/{name}/{id}", guard(func(w http.ResponseWriter, r *http.Request) {
		stream, id, ok := recordingPath(w, r)
		if !ok {
			return
		}
		// An operator who closes the connection must not leave the
		// recording half deleted: the deletion runs to its end.
		if err := a.reg.DeleteRecording(context.WithoutCancel(r.Context()), stream, id); err != nil {
			writeRecordingError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

// recordingPath returns the stream (APP/NAME) and recording id of a
// request, or answers 400 when they cannot name one.
func recordingPath(w http.ResponseWriter, r *http.Request) (stream, id string, ok bool) {
	stream, id = r.PathValue("app")+"/"+r.PathValue("name"), r.PathValue("id")
	if !validStreamPath(stream) || storage.ValidName(id) != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"app, name and recording id must each be letters, digits, '-', '_' and '.'"})
		return "", "", false
	}
	return stream, id, true
}

// validStreamPath reports whether s is APP/NAME, as a stream's storage
// keys and viewer URLs spell it.
func validStreamPath(s string) bool {
	return strings.Count(s, "/") == 1 && storage.ValidKey(s) == nil
}

// writeRecordingError answers a failed lookup or deletion of a recording.
func writeRecordingError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, playlist.ErrRecordingNotFound):
		writeJSON(w, http.StatusNotFound, apiError{"no such recording"})
	case errors.Is(err, playlist.ErrRecordingActive):
		writeJSON(w, http.StatusConflict, apiError{playlist.ErrRecordingActive.Error()})
	default:
		// Storage failed part way: what is left stays listed, so that
		// deleting it again finishes the job.
		msg := strings.Join(strings.Fields(err.Error()), " ")
		writeJSON(w, http.StatusInternalServerError, apiError{"storage failed while deleting; what is left of the recording is still listed, delete it again: " + msg})
	}
}

// recordingJSON gives a recording's times in UTC, as the streams' are.
func recordingJSON(rec playlist.Recording) playlist.Recording {
	rec.Start, rec.End = rec.Start.UTC(), rec.End.UTC()
	return rec
}

// isLoopback reports whether a listen address only accepts local
// connections.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
