package segmenter

import "github.com/fount-live/fount/segmenter/codec"

// setAVC parses an avcC record with package codec and sets it, as ingest
// does with an FLV AVC sequence header.
func setAVC(s *Segmenter, record []byte) error {
	v, err := codec.ParseVideo(codec.AVC, record)
	if err != nil {
		return err
	}
	return s.SetVideoConfig(v)
}

// setAAC parses an AudioSpecificConfig with package codec and sets it.
func setAAC(s *Segmenter, asc []byte) error {
	a, err := codec.ParseAudio(codec.AAC, asc)
	if err != nil {
		return err
	}
	return s.SetAudioConfig(a)
}
