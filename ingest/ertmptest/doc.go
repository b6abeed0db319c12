// Package ertmptest is a test-only Enhanced RTMP publisher for fount's
// end-to-end tests. It is not used by fount itself and must only be imported
// from _test.go files.
//
// The RTMP connection (handshake, connect, createStream, publish, chunking and
// Set Chunk Size) comes from github.com/bluenviron/gortmplib, an independent
// RTMP implementation. The video, audio and data message bodies are written by
// this package, field by field, from the Enhanced RTMP v2 specification
// (github.com/veovera/enhanced-rtmp, docs/enhanced/enhanced-rtmp-v2.md):
// gortmplib's own body writers do not follow the specification (no keyframe
// flag in ExHeader frames, CodedFramesX for AV1/VP9, big-endian OpusHead,
// OneTrack only), so they are never used here.
//
// Inputs are MP4 clips (LoadMP4) that Debian's ffmpeg encodes at test time
// (MakeClip). Publish sends them in one of several layouts (Legacy, ExHeader,
// OBS, ManyTracks, ManyTracksManyCodecs), paced in real time or as fast as
// possible; Dial gives a raw Conn for hand-shaped bodies (Message.Body,
// LegacyAVC, LegacyAAC, LegacyMP3).
package ertmptest
