package ingest

import (
	"testing"

	"github.com/fount-live/fount/ingest/ertmptest"
)

func amfBody(t testing.TB, v ...any) []byte {
	b, err := ertmptest.AMF0(nil, v...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCaptionText(t *testing.T) {
	// ffmpeg's flvenc: onTextData, ECMA array {type, text}.
	ffmpeg := []byte("\x08\x00\x00\x00\x02\x00\x04type\x02\x00\x04Text\x00\x04text\x02\x00\x0cSUBTITLE ONE\x00\x00\x09")
	cases := []struct {
		name string
		body []byte
		want CaptionText
		err  bool
	}{
		{onTextData, ffmpeg, CaptionText{Text: "SUBTITLE ONE"}, false},
		{onTextData, amfBody(t, ertmptest.Object{{Key: "text", Value: "Hallo"}, {Key: "language", Value: "deu"}, {Key: "trackid", Value: 99.0}}), CaptionText{Text: "Hallo", Language: "deu", TrackID: 99}, false},
		{onCaption, amfBody(t, "plain string"), CaptionText{Text: "plain string"}, false},
		{onCaption, amfBody(t, ertmptest.Object{{Key: "text", Value: ""}}), CaptionText{}, false},
		{onTextData, amfBody(t, ertmptest.Object{{Key: "type", Value: "Text"}}), CaptionText{}, true},
		{onTextData, amfBody(t, ertmptest.Object{{Key: "text", Value: 3.0}}), CaptionText{}, true},
		{onTextData, amfBody(t, 1.0), CaptionText{}, true},
		{onTextData, ffmpeg[:20], CaptionText{}, true},
		{onTextData, nil, CaptionText{}, true},
	}
	for i, c := range cases {
		got, err := parseCaptionText(c.name, c.body)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("case %d: %+v, %v; want %+v, error %v", i, got, err, c.want, c.err)
		}
	}
}

func FuzzParseCaptionText(f *testing.F) {
	f.Add([]byte("\x08\x00\x00\x00\x02\x00\x04type\x02\x00\x04Text\x00\x04text\x02\x00\x0cSUBTITLE ONE\x00\x00\x09"))
	f.Add(amfBody(f, ertmptest.Object{{Key: "text", Value: "Hallo"}, {Key: "language", Value: "deu"}, {Key: "trackid", Value: 99.0}}))
	f.Add(amfBody(f, "plain string"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ct, err := parseCaptionText(onTextData, b)
		if err == nil && len(ct.Text) > len(b) {
			t.Fatal("text longer than the message")
		}
	})
}
