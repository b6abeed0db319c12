package main

import "testing"

// FuzzParseSplice: whatever an API caller or an encoder passes as a
// splice_info_section, reading and interpreting it is an error or a cue,
// never a panic (scte35-go's decoder runs behind a recover; interpret
// walks what it decoded).
func FuzzParseSplice(f *testing.F) {
	f.Add("/DAlAAAAAAAAAP/wFAUAAAPof+/+ABZ8yP4AKTLgAAEAAAAAo3X5Sg==")
	f.Add("0xfc302000000000000000fff00f05000003e97fef7f000000000000000000ad5b7d3a")
	f.Add("0xfc")
	f.Fuzz(func(t *testing.T, s string) {
		b, sis, err := parseSplice(s)
		if err != nil {
			return
		}
		if len(b) < 3 || b[0] != 0xFC {
			t.Fatalf("accepted %x as a splice_info_section", b)
		}
		interpret(sis)
	})
}
