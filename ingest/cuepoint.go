package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// onCuePoint: the AMF0 data message encoders send cue points in. Its
// shapes, all read here:
//
//   - Adobe's cue point object, as NetStream.onCuePoint hands it to a
//     player (FLV files, Wowza): {name: String, time: Number (seconds),
//     type: "event" | "navigation", parameters: Object of Strings}
//     (Adobe AIR docs, "Using cue points and metadata":
//     https://github.com/airsdk/airsdk.dev/blob/main/docs/development/rich-media-content/working-with-video/using-cue-points-and-metadata.md).
//   - SCTE-35 in a cue point, as AWS Elemental MediaLive's RTMP output
//     sends with its ad markers set to ON_CUE_POINT_SCTE35 (MediaLive API
//     RtmpAdMarkers): the splice_info_section as a base64 string. Its
//     property name is not relied on: any string of the object, or of its
//     parameters, that decodes (base64 or hex) to a section (table_id
//     0xFC) is taken.
//   - YouTube's cue point, as OvenMediaEngine documents inserting it
//     (https://ovenmediaengine-enterprise.gitbook.io/guide/workflow-integration-and-external-system-connectivity/oncuepoint-message-insertion):
//     {type: "com.youtube.cuepoint", version: "0.1", pre_roll_time_sec:
//     Number, cue_point_start: Boolean, break_duration_sec: Number,
//     splice_event_id: Number}.

// CuePoint is one onCuePoint message.
type CuePoint struct {
	// Timestamp is the message's RTMP timestamp on the publisher's
	// unwrapped timeline (as Frame.DTS is).
	Timestamp time.Duration
	Name      string  // Adobe: the cue point's name
	Type      string  // Adobe: event or navigation; YouTube: com.youtube.cuepoint
	Time      float64 // Adobe: seconds; valid if HasTime
	HasTime   bool
	// SCTE35 is a splice_info_section found in it (nil if none).
	SCTE35 []byte
	// YouTube's cue point: a break starts (Start) or ends, PreRoll
	// seconds after the message, BreakDuration seconds long.
	YouTube       bool
	Start         bool
	PreRoll       float64
	BreakDuration float64
	EventID       uint32
}

// CueSession is implemented by a Session that takes cue points.
type CueSession interface {
	Cue(CuePoint)
}

// maxCueStrings bounds the strings looked at in one cue point.
const maxCueStrings = 64

var errNotCuePoint = errors.New("onCuePoint: not an object")

// parseCuePoint reads the AMF0 values after the message's name.
func parseCuePoint(b []byte) (CuePoint, error) {
	if err := checkAMF0(b, 1); err != nil {
		return CuePoint{}, fmt.Errorf("onCuePoint: %w", err)
	}
	r := amf0Reader{b: b}
	if isObj, err := r.object(); err != nil || !isObj {
		return CuePoint{}, errNotCuePoint
	}
	var cp CuePoint
	strs := 0
	look := func(s []byte) {
		if cp.SCTE35 == nil && strs < maxCueStrings {
			strs++
			cp.SCTE35 = spliceSection(s)
		}
	}
	err := r.properties(func(k []byte) error {
		switch string(k) {
		case "parameters":
			isObj, err := r.object()
			if err != nil || !isObj {
				if errors.Is(err, errAMF0NotObject) {
					return r.skip()
				}
				return err
			}
			return r.properties(func([]byte) error {
				v, err := r.scalar()
				if v.marker == amf0String || v.marker == amf0LongString {
					look(v.str)
				}
				return err
			})
		}
		v, err := r.scalar()
		if err != nil {
			return err
		}
		str := v.marker == amf0String || v.marker == amf0LongString
		switch string(k) {
		case "name":
			if str {
				cp.Name = string(v.str)
			}
		case "type":
			if str {
				cp.Type = string(v.str)
				cp.YouTube = cp.Type == "com.youtube.cuepoint"
			}
		case "time":
			if v.marker == amf0Number {
				cp.Time, cp.HasTime = v.number(), true
			}
		case "pre_roll_time_sec":
			cp.PreRoll = max(v.number(), 0)
		case "break_duration_sec":
			cp.BreakDuration = max(v.number(), 0)
		case "cue_point_start":
			cp.Start = v.marker == amf0Boolean && v.num != 0
		case "splice_event_id":
			if n := v.number(); n >= 0 && n <= 1<<32-1 {
				cp.EventID = uint32(n)
			}
		}
		if str {
			look(v.str)
		}
		return nil
	})
	if err != nil {
		return CuePoint{}, fmt.Errorf("onCuePoint: %w", err)
	}
	return cp, nil
}

// spliceSection returns s decoded, base64 or hex (0x...), when it is a
// splice_info_section (table_id 0xFC, section length matching), else nil.
func spliceSection(s []byte) []byte {
	if len(s) < 4 || len(s) > 8192 {
		return nil
	}
	var b []byte
	if h, ok := bytes.CutPrefix(bytes.ToLower(s), []byte("0x")); ok {
		b = make([]byte, hex.DecodedLen(len(h)))
		if _, err := hex.Decode(b, h); err != nil {
			return nil
		}
	} else {
		str := strings.TrimSpace(string(s))
		var err error
		if b, err = base64.StdEncoding.DecodeString(str); err != nil {
			if b, err = base64.RawStdEncoding.DecodeString(str); err != nil {
				return nil
			}
		}
	}
	// table_id 0xFC, section_syntax_indicator 0, section_length.
	if len(b) < 14 || b[0] != 0xFC || int(b[1]&0x0f)<<8|int(b[2]) != len(b)-3 {
		return nil
	}
	return b
}

// onCuePoint takes an onCuePoint data message (its body unread: see
// textdata.go's pass-through decoders) for the session, if it takes cues.
func (h *handler) onCuePoint(ts uint32, body io.Reader) error {
	raw, err := io.ReadAll(io.LimitReader(body, maxAMFMessageSize))
	if err != nil {
		return fmt.Errorf("reading onCuePoint: %w", err)
	}
	cs, ok := h.sess.(CueSession)
	if h.sess == nil || !ok {
		return nil
	}
	cp, err := parseCuePoint(raw)
	if err != nil {
		h.log.Warn("ignoring unreadable onCuePoint", "err", err)
		return nil
	}
	cp.Timestamp = h.clock.peek(ts)
	cs.Cue(cp)
	return nil
}
