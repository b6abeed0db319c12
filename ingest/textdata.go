package ingest

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/yutopp/go-rtmp/message"
)

// Timed metadata from the encoder (docs/markers.md): an AMF0 onTextData
// data message, or an onMetaData that changes mid-stream, becomes a
// TimedMetadata event for the session, which muxes it as ID3.

func init() {
	// go-rtmp v0.0.7 decodes a data message it has no body decoder for
	// with go-amf0 and drops it with a warning, before any handler sees
	// it. These decoders leave the body unread, so that it reaches
	// handler.OnUnknownDataMessage, which reads it with fount's own AMF0
	// reader. Set once, before any connection.
	for _, name := range []string{onTextData, onCaption, "onMetaData", "onCuePoint"} {
		if _, ok := message.DataBodyDecoders[name]; !ok {
			message.DataBodyDecoders[name] = passDataBody
		}
	}
}

// rawDataBody is what passDataBody decodes to: nothing; go-rtmp hands the
// message on to OnUnknownDataMessage with its body unread.
type rawDataBody struct{}

func (rawDataBody) FromArgs(...any) error                      { return nil }
func (rawDataBody) ToArgs(message.EncodingType) ([]any, error) { return nil, nil }

func passDataBody(_ io.Reader, _ message.AMFDecoder, v *message.AMFConvertible) error {
	*v = rawDataBody{}
	return nil
}

// TimedMetadata is one timed metadata event an encoder sent.
type TimedMetadata struct {
	Source string // the data message: "onTextData" or "onMetaData"
	// DTS is the message's timestamp on the publisher's unwrapped
	// timeline (as Frame.DTS) when HasDTS; without it (no media yet, or a
	// timestamp far from the media's) the event is for the next frame.
	DTS    time.Duration
	HasDTS bool
	Text   string     // onTextData's "text"
	Values []KeyValue // the other scalar properties, in message order
}

// KeyValue is one property of a data message, its value as text.
type KeyValue struct{ Key, Value string }

// TimedMetadataSession is implemented by a Session that carries timed
// metadata; others do not get it.
type TimedMetadataSession interface {
	TimedMetadata(TimedMetadata)
}

// Bounds on one event: an ID3 tag travels in one PES.
const (
	maxDataValues   = 32
	maxDataValueLen = 512
)

var errDataNotObject = errors.New("not an object or ECMA array")

// parseDataObject reads the object (or ECMA array) that follows a data
// message's name: "text" into text, every other number, boolean or string
// property into values (at most maxDataValues, each cut to
// maxDataValueLen bytes); other values are skipped.
func parseDataObject(p []byte) (text string, values []KeyValue, err error) {
	if err := checkAMF0(p, 1); err != nil {
		return "", nil, err
	}
	r := amf0Reader{b: p}
	if isObj, err := r.object(); err != nil || !isObj {
		if err == nil {
			err = errDataNotObject
		}
		return "", nil, err
	}
	err = r.properties(func(k []byte) error {
		v, err := r.scalar()
		if err != nil {
			return err
		}
		var s string
		switch v.marker {
		case amf0String, amf0LongString:
			s = string(v.str[:min(len(v.str), maxDataValueLen)])
		case amf0Number:
			s = strconv.FormatFloat(v.num, 'g', -1, 64)
		case amf0Boolean:
			s = strconv.FormatBool(v.num != 0)
		default:
			return nil
		}
		if string(k) == "text" && text == "" {
			text = s
		} else if len(values) < maxDataValues && len(k) > 0 {
			values = append(values, KeyValue{string(k[:min(len(k), maxDataValueLen)]), s})
		}
		return nil
	})
	return text, values, err
}

// dataTime places a data message's timestamp on the media timeline: near
// the last media frame's DTS (within 10 s, modulo the 32-bit wrap), or
// nowhere (the event is for the next frame).
func (h *handler) dataTime(ts uint32) (time.Duration, bool) {
	if h.frames == 0 {
		return 0, false
	}
	d := time.Duration(int32(ts-uint32(h.dts.Milliseconds()))) * time.Millisecond
	if d > 10*time.Second || d < -10*time.Second {
		return 0, false
	}
	return h.dts + d, true
}

// onDataEvent handles an onTextData data message, or a bare onMetaData
// (which some encoders send mid-stream rather than @setDataFrame).
func (h *handler) onDataEvent(ts uint32, name string, body []byte) {
	if name == "onMetaData" {
		h.metadataBody(ts, body)
		return
	}
	h.timedMetadata(ts, name, body)
}

// metadataUpdate is told each @setDataFrame onMetaData payload (its name,
// then its ECMA array); see metadataBody.
func (h *handler) metadataUpdate(ts uint32, payload []byte) {
	r := amf0Reader{b: payload}
	if _, err := r.string(); err == nil { // "onMetaData", checked by parseMetadata
		h.metadataBody(ts, payload[r.p:])
	}
}

// metadataBody turns an onMetaData that changes after the first media
// frame into a timed metadata event (its scalar properties); the first one,
// and repeats of the last (GStreamer sends it several times a second), are
// not events. The stream's description keeps the last @setDataFrame one
// (OnSetDataFrame).
func (h *handler) metadataBody(ts uint32, body []byte) {
	if bytes.Equal(body, h.metaBody) {
		return
	}
	first := h.metaBody == nil
	h.metaBody = append(h.metaBody[:0], body...)
	if first || h.frames == 0 {
		return
	}
	h.timedMetadata(ts, "onMetaData", body)
}

// timedMetadata parses a data message's object and hands it to the session
// as a TimedMetadata event.
func (h *handler) timedMetadata(ts uint32, name string, body []byte) {
	tm, ok := h.sess.(TimedMetadataSession)
	if !ok {
		return
	}
	text, values, err := parseDataObject(body)
	if err != nil {
		// Advisory, like onMetaData: a line, not a dropped stream.
		h.log.Warn("ignoring an unreadable data message", "message", name, "err", err)
		return
	}
	if text == "" && len(values) == 0 {
		return
	}
	dts, has := h.dataTime(ts)
	h.log.Info("timed metadata from the encoder", "message", name, "text", text, "values", len(values), "dts", dts, "timed", has)
	tm.TimedMetadata(TimedMetadata{Source: name, DTS: dts, HasDTS: has, Text: text, Values: values})
}
