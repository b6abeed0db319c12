// Package codec parses codec configurations and derives what the rest of
// fount needs from them: the RFC 6381 CODECS string, picture size, frame
// rate, HDR transfer, sample rate, channels and frame durations.
//
// It owns the decoder configuration records of every codec fount carries
// (avcC, hvcC, av1C, vpcC for video; AudioSpecificConfig, OpusHead,
// FLAC STREAMINFO, dac3/dec3 for audio), builds them from in-band data when
// an encoder sends none (parameter sets in a keyframe, an AV1 sequence header
// OBU, a VP9 keyframe's uncompressed header, an AC-3 or MP3 frame header), and
// renders the few sample entry payloads that differ from what arrives (dOps,
// dfLa).
//
// It never muxes, never reads RTMP or FLV framing and knows nothing of HLS or
// HTTP: ingest and segmenter both import it, so it imports neither.
//
// Parsers take untrusted bytes. They never panic, never keep a reference to
// their input (a Video or Audio owns copies of its bytes) and return errors
// that name the codec and the field at fault.
package codec
