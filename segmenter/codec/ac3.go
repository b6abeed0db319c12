package codec

import (
	"errors"
	"fmt"
)

// ac3Channels is nfchans by acmod (ETSI TS 102 366 table 4.3); acmod 0 is
// two independent mono channels.
func ac3Channels(acmod int, lfe bool) int {
	n := [8]int{2, 1, 2, 3, 3, 4, 4, 5}[acmod&7]
	if lfe {
		n++
	}
	return n
}

// ac3Rate is the sample rate by fscod; 0 for the reserved code 3.
func ac3Rate(fscod int) int {
	return [4]int{48000, 44100, 32000, 0}[fscod&3]
}

// ac3FromFrame reads the bit stream information of an AC-3 sync frame
// (ETSI TS 102 366 4.4.1 and 4.4.2) and builds the dac3 payload (F.4).
func ac3FromFrame(f []byte) (*Audio, error) {
	if len(f) < 7 {
		return nil, fmt.Errorf("ac-3 frame: truncated sync frame header (%d bytes)", len(f))
	}
	if f[0] != 0x0b || f[1] != 0x77 {
		return nil, fmt.Errorf("ac-3 frame: syncword %02x%02x, want 0b77", f[0], f[1])
	}
	r := &bitReader{b: f[4:]}
	fscod := int(r.u(2))
	frmsizecod := int(r.u(6))
	bsid := int(r.u(5))
	bsmod := int(r.u(3))
	acmod := int(r.u(3))
	if acmod&1 != 0 && acmod != 1 {
		r.u(2) // cmixlev
	}
	if acmod&4 != 0 {
		r.u(2) // surmixlev
	}
	if acmod == 2 {
		r.u(2) // dsurmod
	}
	lfe := r.flag()
	switch {
	case r.err != nil:
		return nil, fmt.Errorf("ac-3 frame: bsi: %w", r.err)
	case fscod == 3:
		return nil, errors.New("ac-3 frame: reserved fscod 3")
	case bsid > 8:
		// 9 and 10 are half and quarter rate AC-3, above 10 E-AC-3 (whose
		// bsid sits at the same place, so this is what tells them apart).
		return nil, fmt.Errorf("ac-3 frame: bsid %d is not AC-3 (at most 8)", bsid)
	case frmsizecod > 37:
		return nil, fmt.Errorf("ac-3 frame: frmsizecod %d out of range", frmsizecod)
	}
	kbps := [19]int{32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640}[frmsizecod>>1]
	w := &bitWriter{}
	w.put(uint32(fscod), 2)
	w.put(uint32(bsid), 5)
	w.put(uint32(bsmod), 3)
	w.put(uint32(acmod), 3)
	w.putBool(lfe)
	w.put(uint32(frmsizecod>>1), 5) // bit_rate_code
	w.put(0, 5)
	return &Audio{
		Codec:      AC3,
		Codecs:     "ac-3",
		SampleRate: ac3Rate(fscod),
		Channels:   ac3Channels(acmod, lfe),
		Config:     w.b,
		BitRate:    kbps * 1000,
		BSID:       bsid,
		BSMod:      bsmod,
		ACMod:      acmod,
		LFE:        lfe,
		Blocks:     6,
	}, nil
}

// eac3Sync is the part of an E-AC-3 sync frame's bsi (ETSI TS 102 366
// E.1.2.2) that a dec3 needs.
type eac3Sync struct {
	strmtyp, substreamid int
	size                 int // bytes
	fscod, rate          int
	blocks               int
	acmod                int
	lfe                  bool
	bsid, bsmod          int
	chanmap              int // -1 if absent
}

func parseEAC3Sync(f []byte) (eac3Sync, error) {
	s := eac3Sync{chanmap: -1}
	if len(f) < 6 {
		return s, fmt.Errorf("e-ac-3 frame: truncated sync frame header (%d bytes)", len(f))
	}
	if f[0] != 0x0b || f[1] != 0x77 {
		return s, fmt.Errorf("e-ac-3 frame: syncword %02x%02x, want 0b77", f[0], f[1])
	}
	r := &bitReader{b: f[2:]}
	s.strmtyp = int(r.u(2))
	s.substreamid = int(r.u(3))
	s.size = (int(r.u(11)) + 1) * 2
	s.fscod = int(r.u(2))
	numblkscod := 3
	if s.fscod == 3 {
		fscod2 := int(r.u(2))
		if fscod2 == 3 {
			return s, errors.New("e-ac-3 frame: reserved fscod2 3")
		}
		s.rate = ac3Rate(fscod2) / 2
	} else {
		s.rate = ac3Rate(s.fscod)
		numblkscod = int(r.u(2))
	}
	s.blocks = [4]int{1, 2, 3, 6}[numblkscod]
	s.acmod = int(r.u(3))
	s.lfe = r.flag()
	s.bsid = int(r.u(5))
	if r.err != nil {
		return s, fmt.Errorf("e-ac-3 frame: bsi: %w", r.err)
	}
	if s.strmtyp == 3 {
		return s, errors.New("e-ac-3 frame: reserved strmtyp 3")
	}
	if s.bsid <= 10 || s.bsid > 16 {
		return s, fmt.Errorf("e-ac-3 frame: bsid %d is not E-AC-3 (11-16)", s.bsid)
	}
	r.u(5) // dialnorm
	if r.flag() {
		r.u(8) // compr
	}
	if s.acmod == 0 {
		r.u(5) // dialnorm2
		if r.flag() {
			r.u(8) // compr2
		}
	}
	if s.strmtyp == 1 && r.flag() { // chanmape
		s.chanmap = int(r.u(16))
	}
	if r.flag() { // mixmdate
		if s.acmod > 2 {
			r.u(2) // dmixmod
		}
		if s.acmod&1 != 0 && s.acmod > 2 {
			r.u(6) // ltrtcmixlev, lorocmixlev
		}
		if s.acmod&4 != 0 {
			r.u(6) // ltrtsurmixlev, lorosurmixlev
		}
		if s.lfe && r.flag() { // lfemixlevcode
			r.u(5)
		}
		if s.strmtyp == 0 {
			if r.flag() { // pgmscle
				r.u(6)
			}
			if s.acmod == 0 && r.flag() { // pgmscl2e
				r.u(6)
			}
			if r.flag() { // extpgmscle
				r.u(6)
			}
			switch r.u(2) { // mixdef
			case 1:
				r.u(5) // premixcmpsel, drcsrc, premixcmpscl
			case 2:
				r.u(12) // mixdata
			case 3:
				n := int(r.u(5)) + 2 // mixdeflen
				r.skip(8 * n)
			}
			if s.acmod < 2 {
				if r.flag() { // paninfoe
					r.u(14)
				}
				if s.acmod == 0 && r.flag() { // paninfo2e
					r.u(14)
				}
			}
			if r.flag() { // frmmixcfginfoe
				if numblkscod == 0 {
					r.u(5)
				} else {
					for i := 0; i < s.blocks; i++ {
						if r.flag() {
							r.u(5)
						}
					}
				}
			}
		}
	}
	if r.flag() { // infomdate
		s.bsmod = int(r.u(3))
	}
	if r.err != nil {
		return s, fmt.Errorf("e-ac-3 frame: bsi: %w", r.err)
	}
	return s, nil
}

// eac3FromFrame reads the sync frames of an E-AC-3 access unit (an
// independent substream and any dependent ones, and further independent
// substreams with their own) and builds the dec3 payload (ETSI TS 102 366
// F.6).
func eac3FromFrame(f []byte) (*Audio, error) {
	type ind struct {
		s       eac3Sync
		numDeps int
		chanLoc int
	}
	var subs []ind
	bitRate := 0
	for p := 0; p < len(f); {
		s, err := parseEAC3Sync(f[p:])
		if err != nil {
			if len(subs) > 0 {
				break // trailing bytes after whole substreams are not ours to judge
			}
			return nil, err
		}
		if s.size > len(f)-p && len(subs) > 0 {
			break
		}
		switch s.strmtyp {
		case 0, 2: // independent
			if len(subs) == 8 || s.substreamid != len(subs) {
				return nil, fmt.Errorf("e-ac-3 frame: independent substream %d after %d", s.substreamid, len(subs))
			}
			subs = append(subs, ind{s: s})
		case 1: // dependent, belongs to the last independent one
			if len(subs) == 0 {
				return nil, errors.New("e-ac-3 frame: dependent substream before any independent one")
			}
			last := &subs[len(subs)-1]
			if last.numDeps == 15 {
				return nil, errors.New("e-ac-3 frame: more than 15 dependent substreams")
			}
			last.numDeps++
			if s.chanmap >= 0 {
				last.chanLoc |= chanLoc(s.chanmap)
			}
		}
		bitRate += 8 * s.size * s.rate / (s.blocks * 256)
		p += s.size
	}
	if len(subs) == 0 {
		return nil, errors.New("e-ac-3 frame: empty")
	}
	w := &bitWriter{}
	w.put(uint32(bitRate/1000), 13) // data_rate, kbit/s
	w.put(uint32(len(subs)-1), 3)   // num_ind_sub
	for _, sub := range subs {
		w.put(uint32(sub.s.fscod), 2)
		w.put(uint32(sub.s.bsid), 5)
		w.put(0, 1) // reserved
		w.put(0, 1) // asvc
		w.put(uint32(sub.s.bsmod), 3)
		w.put(uint32(sub.s.acmod), 3)
		w.putBool(sub.s.lfe)
		w.put(0, 3) // reserved
		w.put(uint32(sub.numDeps), 4)
		if sub.numDeps > 0 {
			w.put(uint32(sub.chanLoc), 9)
		} else {
			w.put(0, 1)
		}
	}
	first := subs[0]
	ch := ac3Channels(first.s.acmod, first.s.lfe)
	for i := 0; i < 9; i++ {
		if first.chanLoc>>i&1 == 0 {
			continue
		}
		switch i {
		case 2, 3, 7, 8: // Cs, Ts, Cvh, LFE2: one channel each
			ch++
		default:
			ch += 2
		}
	}
	return &Audio{
		Codec:      EAC3,
		Codecs:     "ec-3",
		SampleRate: first.s.rate,
		Channels:   ch,
		Config:     w.b,
		BitRate:    bitRate,
		BSID:       first.s.bsid,
		BSMod:      first.s.bsmod,
		ACMod:      first.s.acmod,
		LFE:        first.s.lfe,
		Blocks:     first.s.blocks,
	}, nil
}

// chanLoc turns a dependent substream's chanmap (E.1.3.1.8, Table E.1.4:
// locations numbered from the MSB: 0-4 L C R Ls Rs, 5 Lc/Rc, 6 Lrs/Rrs,
// 7 Cs, 8 Ts, 9 Lsd/Rsd, 10 Lw/Rw, 11 Lvh/Rvh, 12 Cvh, 13 reserved, 14 LFE2,
// 15 LFE) into dec3's chan_loc (F.6.2.13, Table F.6.1: from the LSB Lc/Rc,
// Lrs/Rrs, Cs, Ts, Lsd/Rsd, Lw/Rw, Lvh/Rvh, Cvh, LFE2): the channels beyond
// 5.1 that the dependent substreams add.
func chanLoc(chanmap int) int {
	loc := 0
	for k := 5; k <= 12; k++ {
		if chanmap>>(15-k)&1 != 0 {
			loc |= 1 << (k - 5)
		}
	}
	if chanmap>>(15-14)&1 != 0 {
		loc |= 1 << 8
	}
	return loc
}

var (
	errAC3Sync       = errors.New("ac-3 frame: no syncword 0b77")
	errEAC3Truncated = errors.New("e-ac-3 frame: truncated sync frame header")
	errEAC3Sync      = errors.New("e-ac-3 frame: no syncword 0b77")
)

// eac3FrameSamples returns 256 samples per audio block of the first sync
// frame; the substreams of one access unit cover the same time.
func eac3FrameSamples(f []byte) (int, error) {
	if len(f) < 5 {
		return 0, errEAC3Truncated
	}
	if f[0] != 0x0b || f[1] != 0x77 {
		return 0, errEAC3Sync
	}
	if f[4]>>6 == 3 { // fscod 3: reduced rates always have six blocks
		return 1536, nil
	}
	return 256 * [4]int{1, 2, 3, 6}[f[4]>>4&3], nil
}
