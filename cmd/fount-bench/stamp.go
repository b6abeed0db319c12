package main

import (
	"fmt"
	"slices"
)

// The time stamp a glass-to-glass frame carries: the wall-clock send time
// in Unix milliseconds, drawn as big black and white blocks in the top of
// a grey (8-bit luma) picture, so that it survives H.264 at any sane
// bitrate and the page can read it back from the decoded frame.
//
// The stamp is stampRows rows of stampCols blocks, read left to right, top
// to bottom: 48 bits of time (most significant first), then 16 check bits
// (stampCheck). A block is white (255) for 1, black (0) for 0. The page's
// decoder (testdata/browser/glass.mjs) mirrors this layout: change both.
const (
	stampCols     = 16
	stampRows     = 4
	stampTimeBits = 48
	stampBits     = stampCols * stampRows
)

// stampCheck is the check word of a 48-bit time: its three 16-bit words
// XORed with 0xA5A5, so an all-black or all-white picture never passes.
func stampCheck(ms uint64) uint16 {
	return uint16(ms>>32) ^ uint16(ms>>16) ^ uint16(ms) ^ 0xA5A5
}

// stampBlock is the side of a block for a picture width.
func stampBlock(width int) int { return width / stampCols }

// checkStampSize says whether a width x height picture can carry a stamp
// with blocks of at least 16 pixels.
func checkStampSize(width, height int) error {
	b := stampBlock(width)
	if b < 16 || stampRows*b > height || width%2 != 0 || height%2 != 0 {
		return fmt.Errorf("picture %dx%d: want even sizes, width >= %d and height >= 4 blocks of width/%d", width, height, 16*stampCols, stampCols)
	}
	return nil
}

// drawStamp writes ms into the top of the luma picture pix (width x height,
// one byte per pixel).
func drawStamp(pix []byte, width int, ms uint64) {
	b := stampBlock(width)
	word := ms<<16 | uint64(stampCheck(ms))
	for i := range stampBits {
		v := byte(0)
		if word>>(stampBits-1-i)&1 == 1 {
			v = 255
		}
		x0, y0 := (i%stampCols)*b, (i/stampCols)*b
		for y := y0; y < y0+b; y++ {
			row := pix[y*width+x0 : y*width+x0+b]
			for x := range row {
				row[x] = v
			}
		}
	}
}

// readStamp decodes a stamp from a luma picture: the mean of each block's
// middle half against mid-grey. ok is false when the check word does not
// match. It is what the page does, in Go, for the tests.
func readStamp(pix []byte, width int) (ms uint64, ok bool) {
	b := stampBlock(width)
	var word uint64
	for i := range stampBits {
		x0, y0 := (i%stampCols)*b+b/4, (i/stampCols)*b+b/4
		sum, n := 0, 0
		for y := y0; y < y0+b/2; y++ {
			for x := x0; x < x0+b/2; x++ {
				sum += int(pix[y*width+x])
				n++
			}
		}
		word <<= 1
		if sum/n >= 128 {
			word |= 1
		}
	}
	ms = word >> 16
	return ms, uint16(word) == stampCheck(ms)
}

// drawMotion fills the picture below the stamp with a pattern that moves
// each frame, so the encoder has something to code besides the stamp.
func drawMotion(pix []byte, width, height, frame int) {
	top := stampRows * stampBlock(width)
	for y := top; y < height; y++ {
		row := pix[y*width : (y+1)*width]
		for x := range row {
			row[x] = byte((x + y + 4*frame) & 0xff)
		}
	}
}

// quantile returns the q-quantile (0..1) of v by nearest rank, sorting a
// copy; 0 for no values.
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(q*float64(len(s)-1) + 0.5)
	return s[i]
}
