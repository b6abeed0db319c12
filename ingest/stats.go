package ingest

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// counters are the server-wide ingest counters, read by Stats: one per
// Stats field of the same name, which says what it counts.
type counters struct {
	connections       atomic.Int64
	publishesAccepted atomic.Uint64
	publishesRefused  atomic.Uint64
	bytesIn           atomic.Uint64
	protocolErrors    atomic.Uint64
	timeouts          atomic.Uint64
	timestampWraps    atomic.Uint64
	connsEvicted      atomic.Uint64
	connsRefused      atomic.Uint64
	handshakeTimeouts atomic.Uint64
	publisherLimit    atomic.Uint64
	panics            atomic.Uint64
	tracksSkipped     atomic.Uint64
}

// publishStats is one live publisher's, updated on its read goroutine and
// read by Stats from others.
type publishStats struct {
	stream    string
	variant   string // ?variant=, "" for a plain publish
	remote    string
	conn      *conn // to disconnect the publisher
	started   time.Time
	bytes     atomic.Uint64 // media payload bytes
	lastVideo atomic.Int64  // last video DTS, ms; min int64 = none yet
	lastAudio atomic.Int64

	mu     sync.Mutex // guards tracks
	tracks []*trackStat
}

func (ps *publishStats) addTrack(t *trackStat) {
	ps.mu.Lock()
	ps.tracks = append(ps.tracks, t)
	ps.mu.Unlock()
}

// Stats is a snapshot of the ingest server.
type Stats struct {
	Connections       int64            // RTMP connections open now (one evicted at MaxConnections is not, from the moment it is chosen)
	PublishesAccepted uint64           // publishes that went ahead
	PublishesRefused  uint64           // publishes refused, for any reason
	BytesIn           uint64           // raw bytes read from RTMP connections
	ProtocolErrors    uint64           // connections closed for a protocol or media error
	Timeouts          uint64           // connections dropped by the read timeout
	TimestampWraps    uint64           // RTMP timestamps that wrapped at 2^32 ms (49.7 days) and were unwrapped
	ConnsEvicted      uint64           // connections closed at MaxConnections to admit a new one
	ConnsRefused      uint64           // connections refused at MaxConnections (every slot publishing)
	HandshakeTimeouts uint64           // connections closed for not publishing within HandshakeTimeout
	PublisherLimit    uint64           // publishes refused at MaxPublishers (also in PublishesRefused)
	Panics            uint64           // panics recovered in connections (each closed its connection)
	TracksSkipped     uint64           // publisher tracks skipped: a codec fount cannot use, or an unreadable configuration
	Publishers        []PublisherStats // the live publishers
}

// PublisherStats describes one live publisher.
type PublisherStats struct {
	Stream string // "app/name"
	// Variant is the rendition a grouped push (?variant=) adds to Stream;
	// "" for a plain publish. Several publishers may share a Stream.
	Variant    string
	Remote     string    // the encoder's address (never its key)
	Started    time.Time // when the publish began
	MediaBytes uint64    // audio and video message bytes received
	// AVSkew is the last audio timestamp minus the last video timestamp;
	// zero until both tracks have arrived.
	AVSkew time.Duration
	// ChunkSize is the chunk size the encoder sends in: what it announced
	// with Set Chunk Size, or RTMP's default of 128 bytes. Small chunks
	// cost the encoder and fount a system call each.
	ChunkSize uint32
	// Tracks are the audio and video tracks the encoder sends, in the
	// order they appeared: legacy FLV has track 0 of each kind, Enhanced
	// RTMP multitrack more.
	Tracks []TrackStats
}

// publishers tracks the live publishers for Stats.
type publishers struct {
	mu sync.Mutex
	m  map[*publishStats]struct{}
}

func (p *publishers) add(ps *publishStats) {
	p.mu.Lock()
	if p.m == nil {
		p.m = make(map[*publishStats]struct{})
	}
	p.m[ps] = struct{}{}
	p.mu.Unlock()
}

func (p *publishers) remove(ps *publishStats) {
	p.mu.Lock()
	delete(p.m, ps)
	p.mu.Unlock()
}

const noTimestamp = -1 << 63

// Disconnect closes the connections of the publishers of stream
// ("app/name"), its grouped pushes (?variant=) included, and reports
// whether there was one.
func (s *Server) Disconnect(stream string) bool {
	s.pubs.mu.Lock()
	var cs []*conn
	for ps := range s.pubs.m {
		if ps.stream == stream {
			cs = append(cs, ps.conn)
		}
	}
	s.pubs.mu.Unlock()
	// Closed outside the lock: conn.Close takes the server's.
	for _, c := range cs {
		c.Close()
	}
	return len(cs) > 0
}

// Stats returns a snapshot of the server's counters and live publishers.
func (s *Server) Stats() Stats {
	st := Stats{
		Connections:       s.counters.connections.Load(),
		PublishesAccepted: s.counters.publishesAccepted.Load(),
		PublishesRefused:  s.counters.publishesRefused.Load(),
		BytesIn:           s.counters.bytesIn.Load(),
		ProtocolErrors:    s.counters.protocolErrors.Load(),
		Timeouts:          s.counters.timeouts.Load(),
		TimestampWraps:    s.counters.timestampWraps.Load(),
		ConnsEvicted:      s.counters.connsEvicted.Load(),
		ConnsRefused:      s.counters.connsRefused.Load(),
		HandshakeTimeouts: s.counters.handshakeTimeouts.Load(),
		PublisherLimit:    s.counters.publisherLimit.Load(),
		Panics:            s.counters.panics.Load(),
		TracksSkipped:     s.counters.tracksSkipped.Load(),
	}
	s.pubs.mu.Lock()
	for ps := range s.pubs.m {
		p := PublisherStats{Stream: ps.stream, Variant: ps.variant, Remote: ps.remote, Started: ps.started, MediaBytes: ps.bytes.Load(),
			ChunkSize: cmp.Or(ps.conn.peerChunkSize.Load(), rtmpDefaultChunkSize)}
		ps.mu.Lock()
		for _, t := range ps.tracks {
			p.Tracks = append(p.Tracks, t.snapshot())
		}
		ps.mu.Unlock()
		v, a := ps.lastVideo.Load(), ps.lastAudio.Load()
		if v != noTimestamp && a != noTimestamp {
			p.AVSkew = time.Duration(a-v) * time.Millisecond
		}
		st.Publishers = append(st.Publishers, p)
	}
	s.pubs.mu.Unlock()
	slices.SortFunc(st.Publishers, func(a, b PublisherStats) int {
		return cmp.Or(cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Variant, b.Variant))
	})
	return st
}
