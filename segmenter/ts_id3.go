package segmenter

import (
	"errors"
	"fmt"
	"time"

	"github.com/asticode/go-astits"
)

// Timed ID3 in MPEG-TS, as Apple's "Timed Metadata for HTTP Live
// Streaming" lays it out: a PES stream of stream_type 0x15 (metadata in
// PES packets, ISO/IEC 13818-1 2.12.4), stream_id 0xBD, each PES one ID3
// tag with a PTS; in the PMT a metadata_descriptor on that stream and a
// metadata_pointer_descriptor in the program info, both with
// metadata_application_format and metadata_format 'ID3 '. hls.js takes the
// first PID of stream_type 0x15 as its ID3 track; ffmpeg reads the stream
// as timed_id3 by its metadata_descriptor.

const (
	id3PID      = 0x102
	id3StreamID = 0xbd // private_stream_1

	tagMetadataPointer = 0x25
	tagMetadata        = 0x26
)

// metadataIDs: metadata_application_format 0xFFFF and its identifier
// 'ID3 ', metadata_format 0xFF and its identifier 'ID3 ',
// metadata_service_id 0: the start of both descriptors.
var metadataIDs = [...]byte{0xff, 0xff, 'I', 'D', '3', ' ', 0xff, 'I', 'D', '3', ' ', 0}

// metadataDescriptor is the body of the stream's metadata_descriptor:
// decoder_config_flags 000 (none), DSM-CC_flag 0, reserved 1111.
func metadataDescriptor() []byte {
	return append(metadataIDs[:], 0x0f)
}

// metadataPointer is the body of the program's
// metadata_pointer_descriptor: metadata_locator_record_flag 0,
// MPEG_carriage_flags 00 (this transport stream), reserved 11111, then the
// program_number.
func metadataPointer(program uint16) []byte {
	return append(metadataIDs[:], 0x1f, byte(program>>8), byte(program))
}

// writeID3 writes the tag as one PES with a PTS on the ID3 PID, declaring
// the stream (and writing PAT and PMT again, mid-segment) at the first.
func (t *tsMuxer) writeID3(pts time.Duration, tag []byte) error {
	if len(tag)+8 > 0xffff {
		return malformedError{fmt.Errorf("segmenter: ID3 tag of %d bytes, more than a PES holds", len(tag))}
	}
	if !t.id3.declared {
		err := t.m.AddElementaryStream(astits.PMTElementaryStream{
			ElementaryPID: id3PID,
			StreamType:    astits.StreamTypeMetadata,
			ElementaryStreamDescriptors: []*astits.Descriptor{{
				Tag: tagMetadata, Length: uint8(len(metadataIDs) + 1),
				Unknown: &astits.DescriptorUnknown{Tag: tagMetadata, Content: metadataDescriptor()},
			}},
		})
		if err != nil {
			return fmt.Errorf("segmenter: declaring the ID3 stream: %w", err)
		}
		t.id3 = tsStream{declared: true, streamType: astits.StreamTypeMetadata, streamID: id3StreamID}
		t.tables = nil
		// The new PMT goes out now, before the stream's first PES.
		if err := t.writeTables(); err != nil {
			return fmt.Errorf("segmenter: declaring the ID3 stream: %w", err)
		}
	}
	hdr := t.pesHeader(id3StreamID, false, 0, ts90k(pts), len(tag))
	t.w.buf = appendPESPackets(t.w.buf, id3PID, &t.id3.cc, hdr, tag, false, false, false, 0)
	return nil
}

// addMetadataPointer puts a metadata_pointer_descriptor into the program
// info of the PMT among tables (astits v1.16.0 has no way to set program
// descriptors), fixing section_length and the CRC.
func addMetadataPointer(tables []byte) error {
	for p := 0; p+188 <= len(tables); p += 188 {
		pkt := tables[p : p+188]
		if uint16(pkt[1]&0x1f)<<8|uint16(pkt[2]) != pmtPID || pkt[1]&0x40 == 0 {
			continue
		}
		if pkt[3]&0x30 != 0x10 {
			return errors.New("segmenter: PMT packet with an adaptation field")
		}
		sec := pkt[5+int(pkt[4]):]
		if len(sec) < 16 || sec[0] != 0x02 {
			return errors.New("segmenter: PMT section not found")
		}
		secLen := int(sec[1]&0x0f)<<8 | int(sec[2])
		infoLen := int(sec[10]&0x0f)<<8 | int(sec[11])
		desc := append([]byte{tagMetadataPointer, 0}, metadataPointer(uint16(sec[3])<<8|uint16(sec[4]))...)
		desc[1] = byte(len(desc) - 2)
		end := 3 + secLen // CRC included
		if end+len(desc) > len(sec) || 12+infoLen > end-4 {
			return errors.New("segmenter: PMT too large for one packet with its metadata pointer")
		}
		at := 12 + infoLen
		copy(sec[at+len(desc):end+len(desc)], sec[at:end])
		copy(sec[at:], desc)
		secLen += len(desc)
		infoLen += len(desc)
		sec[1] = sec[1]&0xf0 | byte(secLen>>8)
		sec[2] = byte(secLen)
		sec[10] = sec[10]&0xf0 | byte(infoLen>>8)
		sec[11] = byte(infoLen)
		end = 3 + secLen
		crc := crc32MPEG(sec[:end-4])
		sec[end-4], sec[end-3], sec[end-2], sec[end-1] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
		return nil
	}
	return errors.New("segmenter: no PMT among the tables")
}

// crc32MPEG is the CRC of PSI sections (ISO/IEC 13818-1 Annex A): polynomial
// 0x04C11DB7, initial value all ones, no reflection, no final XOR.
func crc32MPEG(b []byte) uint32 {
	crc := uint32(0xffffffff)
	for _, v := range b {
		crc ^= uint32(v) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
