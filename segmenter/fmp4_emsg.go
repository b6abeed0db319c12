package segmenter

import (
	"bytes"
	"fmt"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
)

// EmsgSchemeID3 is the scheme_id_uri of an emsg whose message_data is an
// ID3 tag (AOM "Carriage of ID3 Timed Metadata in CMAF").
const EmsgSchemeID3 = "https://aomedia.org/emsg/ID3"

// writeID3 encodes the tag as a version 1 emsg (absolute presentation_time
// in 90 kHz, event_duration unknown) that goes right before the moof of the
// next fragment written: the one holding the frame just added.
func (m *fmp4Muxer) writeID3(pts time.Duration, tag []byte) error {
	t := toTicks(pts, videoTimescale)
	if t < 0 {
		t = 0 // decode times are clamped alike
	}
	m.emsgID++
	box := mp4.EmsgBox{
		Version:          1,
		TimeScale:        videoTimescale,
		PresentationTime: uint64(t),
		EventDuration:    0xffffffff,
		ID:               m.emsgID,
		SchemeIDURI:      EmsgSchemeID3,
		MessageData:      tag,
	}
	var b bytes.Buffer
	if err := box.Encode(&b); err != nil {
		return fmt.Errorf("segmenter: encoding emsg: %w", err)
	}
	m.emsg = append(m.emsg, b.Bytes()...)
	return nil
}
