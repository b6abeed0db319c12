package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fount-live/fount/playlist"
)

// The cue and interstitial API (docs/markers.md).

// apiCueRequest is POST /api/v1/streams/APP/NAME/cues.
type apiCueRequest struct {
	// Type is out (a break starts) or in (the open break ends); with
	// SCTE35 it is read from the section and may be left out.
	Type string `json:"type"`
	// ID is the EXT-X-DATERANGE ID (default: splice-EVENT from the
	// section, or one fount makes); for in, the break to end (default:
	// the open one).
	ID string `json:"id"`
	// Duration is the break's planned duration in seconds.
	Duration float64 `json:"duration"`
	// AutoReturn ends the break after Duration (default: true, or what
	// the section says).
	AutoReturn *bool `json:"auto_return"`
	// SCTE35 is a splice_info_section, base64 or 0x hex; without it fount
	// writes a splice_insert of its own.
	SCTE35 string `json:"scte35"`
	// At is the program date-time the cue is due at (default: now, the
	// next segment).
	At *time.Time `json:"at"`
}

// apiCue is the answer: what was queued.
type apiCue struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"`
	DuePTS       float64 `json:"due_pts"` // seconds on the stream timeline: the first keyframe at or after it begins the segment
	Duration     float64 `json:"duration,omitempty"`
	SCTE35       string  `json:"scte35,omitempty"` // 0x hex, as SCTE35-OUT/IN/CMD will carry it
	ReturnDuePTS float64 `json:"return_due_pts,omitempty"`
}

// apiInterstitialRequest is POST /api/v1/streams/APP/NAME/interstitials.
type apiInterstitialRequest struct {
	ID           string     `json:"id"`
	AssetURI     string     `json:"asset_uri"`     // X-ASSET-URI: one asset (an HLS playlist)
	AssetList    string     `json:"asset_list"`    // X-ASSET-LIST: a JSON asset list
	Duration     float64    `json:"duration"`      // DURATION, seconds
	ResumeOffset *float64   `json:"resume_offset"` // X-RESUME-OFFSET, seconds
	Restrict     string     `json:"restrict"`      // X-RESTRICT: SKIP, JUMP or SKIP,JUMP
	At           *time.Time `json:"at"`            // START-DATE (default: now, the next segment)
}

type apiInterstitial struct {
	ID     string  `json:"id"`
	DuePTS float64 `json:"due_pts"`
}

const maxCueBody = 64 << 10

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxCueBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"request body: " + err.Error()})
		return false
	}
	return true
}

// cueStream finds the stream a cue request names.
func (a *api) cueStream(w http.ResponseWriter, r *http.Request) *playlist.Stream {
	path := r.PathValue("app") + "/" + r.PathValue("name")
	if !validStreamPath(path) {
		writeJSON(w, http.StatusBadRequest, apiError{"app and name must each be letters, digits, '-', '_' and '.'"})
		return nil
	}
	st := a.reg.Stream(path)
	if st == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no such stream"})
	}
	return st
}

// dueAt is when a cue asked for at (nil: now) is due on the stream's
// timeline.
func (a *api) dueAt(w http.ResponseWriter, st *playlist.Stream, at *time.Time) (time.Duration, bool) {
	now, ok := a.pub.nowPTS(st)
	if !ok {
		writeJSON(w, http.StatusConflict, apiError{errNoFrames.Error()})
		return 0, false
	}
	if at == nil {
		return now, true
	}
	t, ok := st.TimelineAt(*at)
	if !ok {
		writeJSON(w, http.StatusConflict, apiError{"the stream has no segment yet to place a date by; leave out \"at\" for the next segment"})
		return 0, false
	}
	if t < now {
		writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("at %s is before the live edge (%s)", at.UTC().Format(time.RFC3339Nano), st.LiveEdgeDate().UTC().Format(time.RFC3339Nano))})
		return 0, false
	}
	return t, true
}

// validID: an EXT-X-DATERANGE ID is a quoted-string: no quotes, no line
// breaks; fount also keeps it short and printable.
func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c < 0x20 || c == '"' || c == 0x7f {
			return false
		}
	}
	return true
}

func (a *api) postCue(w http.ResponseWriter, r *http.Request) {
	st := a.cueStream(w, r)
	if st == nil {
		return
	}
	var req apiCueRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Duration < 0 || req.Duration > 86400 {
		writeJSON(w, http.StatusBadRequest, apiError{"duration must be between 0 and 86400 seconds"})
		return
	}
	c := playlist.Cue{ID: req.ID, Duration: time.Duration(req.Duration * float64(time.Second)), Source: "api"}
	autoReturn := true
	var eventID uint32
	if req.SCTE35 != "" {
		b, sis, err := parseSplice(req.SCTE35)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
			return
		}
		sc := interpret(sis)
		if sc.kind == 0 {
			writeJSON(w, http.StatusBadRequest, apiError{"scte35: a splice_null or a cancel: nothing to mark"})
			return
		}
		if req.Type != "" && req.Type != sc.kind.String() {
			writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("type %q, but the section is a cue %s", req.Type, sc.kind)})
			return
		}
		c.Kind, c.SCTE35, autoReturn = sc.kind, b, sc.autoReturn
		if c.ID == "" {
			c.ID = sc.id
		}
		if c.Duration == 0 {
			c.Duration = sc.duration
		}
	} else {
		switch req.Type {
		case "out":
			c.Kind = playlist.CueOut
		case "in":
			c.Kind = playlist.CueIn
		default:
			writeJSON(w, http.StatusBadRequest, apiError{`type must be "out" or "in" (or give scte35)`})
			return
		}
	}
	if req.AutoReturn != nil {
		autoReturn = *req.AutoReturn
	}
	if c.Kind == playlist.CueIn && c.ID == "" {
		id, ok := st.OpenBreakID()
		if !ok {
			writeJSON(w, http.StatusConflict, apiError{"no ad break is open"})
			return
		}
		c.ID = id
	}
	if c.ID == "" {
		eventID = a.pub.nextEventID()
		c.ID = "splice-" + strconv.FormatUint(uint64(eventID), 10)
	} else if n, err := strconv.ParseUint(strings.TrimPrefix(c.ID, "splice-"), 10, 32); err == nil {
		eventID = uint32(n)
	} else {
		eventID = a.pub.nextEventID()
	}
	if !validID(c.ID) {
		writeJSON(w, http.StatusBadRequest, apiError{"id: 1 to 128 printable characters, no double quote"})
		return
	}
	if c.Kind != playlist.CueIn && st.HasDateRange(c.ID) {
		writeJSON(w, http.StatusConflict, apiError{"a cue with this id is listed already"})
		return
	}
	at, ok := a.dueAt(w, st, req.At)
	if !ok {
		return
	}
	c.At = at
	if c.SCTE35 == nil && c.Kind != playlist.CueCmd {
		b, err := encodeSplice(eventID, c.Kind == playlist.CueOut, c.Duration, autoReturn, at)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{"encoding the splice_insert: " + err.Error()})
			return
		}
		c.SCTE35 = b
	}
	if err := a.pub.addCue(st, c); err != nil {
		writeCueError(w, err)
		return
	}
	out := apiCue{ID: c.ID, Type: c.Kind.String(), DuePTS: at.Seconds(), Duration: c.Duration.Seconds(), SCTE35: "0x" + hex.EncodeToString(c.SCTE35)}
	if c.Kind == playlist.CueOut && c.Duration > 0 && autoReturn {
		in := playlist.Cue{Kind: playlist.CueIn, ID: c.ID, At: at + c.Duration, Source: "api"}
		if b, err := encodeSplice(eventID, false, 0, false, in.At); err == nil {
			in.SCTE35 = b
		}
		if err := a.pub.addCue(st, in); err != nil {
			writeCueError(w, err)
			return
		}
		out.ReturnDuePTS = in.At.Seconds()
	}
	writeJSON(w, http.StatusAccepted, out)
}

func writeCueError(w http.ResponseWriter, err error) {
	if errors.Is(err, playlist.ErrTooManyCues) {
		writeJSON(w, http.StatusTooManyRequests, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
}

// validAssetURL: an asset URI is an absolute http(s) URL, or a path
// relative to the playlist, that a quoted-string can carry.
func validAssetURL(s string) bool {
	if s == "" || len(s) > 2048 || strings.ContainsAny(s, "\"\r\n") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "" || u.Scheme == "http" || u.Scheme == "https")
}

func (a *api) postInterstitial(w http.ResponseWriter, r *http.Request) {
	st := a.cueStream(w, r)
	if st == nil {
		return
	}
	var req apiInterstitialRequest
	if !decodeBody(w, r, &req) {
		return
	}
	c := playlist.Cue{Kind: playlist.CueInterstitial, Class: playlist.InterstitialClass, ID: req.ID, Source: "api"}
	switch {
	case (req.AssetURI == "") == (req.AssetList == ""):
		writeJSON(w, http.StatusBadRequest, apiError{"give one of asset_uri and asset_list"})
		return
	case req.AssetURI != "" && !validAssetURL(req.AssetURI), req.AssetList != "" && !validAssetURL(req.AssetList):
		writeJSON(w, http.StatusBadRequest, apiError{"the asset must be an http(s) URL (or a relative one) without quotes or line breaks"})
		return
	case req.AssetURI != "":
		c.Attrs = append(c.Attrs, playlist.Attr{Name: "X-ASSET-URI", Value: req.AssetURI, Quoted: true})
	default:
		c.Attrs = append(c.Attrs, playlist.Attr{Name: "X-ASSET-LIST", Value: req.AssetList, Quoted: true})
	}
	if req.Duration < 0 || req.Duration > 86400 {
		writeJSON(w, http.StatusBadRequest, apiError{"duration must be between 0 and 86400 seconds"})
		return
	}
	c.Duration = time.Duration(req.Duration * float64(time.Second))
	if o := req.ResumeOffset; o != nil {
		if *o < 0 || *o > 86400 {
			writeJSON(w, http.StatusBadRequest, apiError{"resume_offset must be between 0 and 86400 seconds"})
			return
		}
		c.Attrs = append(c.Attrs, playlist.Attr{Name: "X-RESUME-OFFSET", Value: strconv.FormatFloat(*o, 'f', 3, 64)})
	}
	if req.Restrict != "" {
		vals := strings.Split(req.Restrict, ",")
		for i, v := range vals {
			if v != "SKIP" && v != "JUMP" || slices.Contains(vals[:i], v) {
				writeJSON(w, http.StatusBadRequest, apiError{`restrict is a list of SKIP and JUMP, each at most once, e.g. "SKIP,JUMP"`})
				return
			}
		}
		c.Attrs = append(c.Attrs, playlist.Attr{Name: "X-RESTRICT", Value: req.Restrict, Quoted: true})
	}
	if c.ID == "" {
		c.ID = "interstitial-" + strconv.FormatUint(uint64(a.pub.nextEventID()), 10)
	}
	if !validID(c.ID) {
		writeJSON(w, http.StatusBadRequest, apiError{"id: 1 to 128 printable characters, no double quote"})
		return
	}
	if st.HasDateRange(c.ID) {
		writeJSON(w, http.StatusConflict, apiError{"a cue with this id is listed already"})
		return
	}
	at, ok := a.dueAt(w, st, req.At)
	if !ok {
		return
	}
	c.At = at
	if err := a.pub.addCue(st, c); err != nil {
		writeCueError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, apiInterstitial{ID: c.ID, DuePTS: at.Seconds()})
}
