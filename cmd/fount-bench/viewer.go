package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// viewer is one simulated player on one goroutine.
type viewer struct {
	client *http.Client
	stats  *viewStats
	mode   string
	url    string // media playlist
	dir    string // what relative URIs resolve against

	body bytes.Buffer
	pl   mediaPlaylist
	init string // the last init segment fetched

	// Position: the next media wanted is part nextPart of segment nextMSN
	// (LL), or segment nextMSN (classic).
	nextMSN  uint64
	nextPart int
	// A preload-hint part fetched before any playlist listed it; its lag
	// is sampled once a playlist gives its duration, as of hintAt, when
	// the viewer had it (the playlist comes a part later).
	hinted             bool
	hintMSN, hintIndex uint64
	hintAt             time.Time
	// steady is set from the first reload after joining: lag is sampled
	// from then on.
	steady bool
}

func (v *viewer) run(ctx context.Context) {
	if !v.join(ctx) {
		if ctx.Err() != nil {
			v.stats.neverJoined.Add(1)
		}
		return
	}
	v.stats.joined.Add(1)
	ll := v.pl.partTarget > 0
	switch v.mode {
	case "classic":
		ll = false
	case "ll":
		if !ll {
			v.stats.modeMismatch.Add(1)
		}
	}
	if ll {
		v.stats.ll.Add(1)
		v.followLL(ctx)
	} else {
		v.stats.classic.Add(1)
		v.followClassic(ctx)
	}
}

// join loads the playlist until it has media, following a multivariant
// playlist to its first variant.
func (v *viewer) join(ctx context.Context) bool {
	for {
		status, err := v.getPlaylist(ctx, kindPlaylist, v.url, true)
		if err == nil && status == http.StatusOK {
			if err := v.pl.parse(v.body.Bytes()); err != nil {
				v.stats.failure(kindPlaylist, err.Error())
			} else if v.pl.variant != nil {
				v.url = v.resolve(v.pl.variant)
				continue
			} else if len(v.pl.segs) > 0 || len(v.segParts(&v.pl.open)) > 0 {
				return true
			}
		}
		if ctx.Err() != nil {
			return false
		}
		v.stats.joinRetries.Add(1)
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return false
		}
	}
}

func (v *viewer) segParts(s *plSegment) []plPart { return v.pl.segParts(s) }

// followClassic reloads the playlist every target duration (half when it
// did not change, RFC 8216 6.3.4) and fetches each new segment once.
func (v *viewer) followClassic(ctx context.Context) {
	start := max(0, len(v.pl.segs)-3)
	v.nextMSN = v.pl.msn(start)
	for {
		loaded := time.Now()
		fetched := false
		for i := range v.pl.segs {
			s := &v.pl.segs[i]
			if msn := v.pl.msn(i); msn >= v.nextMSN {
				v.fetchInit(ctx, s.mapURI)
				v.fetchMedia(ctx, kindSegment, s.uri, s.pdt, s.pdt.Add(s.dur))
				v.nextMSN, fetched = msn+1, true
			}
		}
		if v.pl.ended || ctx.Err() != nil {
			return
		}
		wait := v.pl.target
		if !fetched {
			wait /= 2
		}
		if wait <= 0 {
			wait = time.Second
		}
		for {
			if !sleepCtx(ctx, time.Until(loaded.Add(wait))) {
				return
			}
			loaded = time.Now()
			if v.reload(ctx, kindPlaylist, v.url) {
				break
			}
			wait = max(v.pl.target/2, 100*time.Millisecond)
		}
	}
}

// reload fetches and parses the playlist, then accounts for segments that
// left the window unfetched. It reports whether a playlist was parsed.
func (v *viewer) reload(ctx context.Context, kind int, u string) bool {
	status, err := v.getPlaylist(ctx, kind, u, false)
	if err != nil || status != http.StatusOK {
		return false
	}
	v.steady = true
	if err := v.pl.parse(v.body.Bytes()); err != nil {
		v.stats.failure(kind, err.Error())
		return false
	}
	switch first, end := v.pl.mediaSeq, v.pl.openMSN(); {
	case end < v.nextMSN:
		// The sequence went backwards: a new stream under the same name.
		v.stats.restarts.Add(1)
		v.nextMSN, v.nextPart, v.hinted = first, 0, false
	case first > v.nextMSN:
		v.stats.missed.Add(first - v.nextMSN)
		v.nextMSN, v.nextPart, v.hinted = first, 0, false
	}
	return true
}

// followLL joins PART-HOLD-BACK behind the live edge, then per round:
// fetches the parts listed after its position (or whole segments whose
// parts are no longer listed), the preload-hint part, and blocks on the
// playlist that lists the next part.
func (v *viewer) followLL(ctx context.Context) {
	v.llStart()
	for ctx.Err() == nil {
		v.fetchListed(ctx)
		if v.pl.ended || ctx.Err() != nil {
			return
		}
		open := v.pl.openMSN()
		if v.pl.hint != nil && v.nextMSN == open && v.nextPart == len(v.segParts(&v.pl.open)) {
			v.fetchInit(ctx, v.pl.open.mapURI)
			// The hint names the open segment's next part or, once that
			// segment may end (fount: it reached its target), the next
			// segment's first: its name tells which. A server may hint
			// the open segment's next part when a keyframe then ends the
			// segment instead (fount did until issue 20): the part never
			// exists and is answered 404. A hint is a prefetch; the
			// player goes on with the next blocking reload, so this is
			// counted apart, not as a failure.
			hm, hp := open, uint64(v.nextPart)
			if m, p, ok := partNumbers(v.pl.hint); ok {
				hm, hp = m, p
			}
			status, err := v.do(ctx, kindPart, v.resolve(v.pl.hint), nil, true)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					v.stats.failure(kindPart, errorReason(err))
				}
			case status/100 == 2:
				v.hinted, v.hintMSN, v.hintIndex, v.hintAt = true, hm, hp, time.Now()
				if hm == open && hp == uint64(v.nextPart) {
					v.nextPart++
				}
				// Else the position stays: parts of the open segment
				// that come before the hinted one are still to fetch.
			case status == http.StatusNotFound:
				v.stats.hintGone(func() string {
					return fmt.Sprintf("%s at %s: playlist open segment %d with %d parts, %d segments listed",
						v.pl.hint, time.Now().UTC().Format("15:04:05.000"), open, len(v.segParts(&v.pl.open)), len(v.pl.segs))
				})
			default:
				v.stats.failure(kindPart, strconv.Itoa(status))
			}
		}
		sep := "?"
		if strings.IndexByte(v.url, '?') >= 0 {
			sep = "&" // a signed URL's query (fount --play-auth token)
		}
		u := v.url + sep + "_HLS_msn=" + strconv.FormatUint(v.nextMSN, 10) + "&_HLS_part=" + strconv.Itoa(v.nextPart)
		if !v.reload(ctx, kindBlocking, u) {
			// Resynchronise with a plain reload after a pause.
			for ctx.Err() == nil {
				if !sleepCtx(ctx, max(v.pl.partTarget, 100*time.Millisecond)) || v.reload(ctx, kindPlaylist, v.url) {
					break
				}
			}
		}
	}
}

// partNumbers reads the segment number and part index from a part URI
// named as fount names parts: [.../]segMSN.INDEX.EXT.
func partNumbers(uri []byte) (msn, idx uint64, ok bool) {
	if i := bytes.LastIndexByte(uri, '/'); i >= 0 {
		uri = uri[i+1:]
	}
	rest, ok := bytes.CutPrefix(uri, []byte("seg"))
	if !ok {
		return 0, 0, false
	}
	a, rest, ok1 := bytes.Cut(rest, []byte{'.'})
	b, _, ok2 := bytes.Cut(rest, []byte{'.'})
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	m, err1 := strconv.ParseUint(string(a), 10, 64)
	p, err2 := strconv.ParseUint(string(b), 10, 64)
	return m, p, err1 == nil && err2 == nil
}

// llStart picks the join position: the last independent part that starts
// at least PART-HOLD-BACK before the end of the listed media.
func (v *viewer) llStart() {
	p := &v.pl
	holdBack := p.holdBack
	if holdBack <= 0 {
		holdBack = 3 * p.partTarget
	}
	v.nextMSN, v.nextPart = p.openMSN(), 0
	var fromEnd time.Duration
	visit := func(msn uint64, parts []plPart) bool {
		for j := len(parts) - 1; j >= 0; j-- {
			fromEnd += parts[j].dur
			if fromEnd >= holdBack && parts[j].independent {
				v.nextMSN, v.nextPart = msn, j
				return true
			}
		}
		return false
	}
	if visit(p.openMSN(), v.segParts(&p.open)) {
		return
	}
	for i := len(p.segs) - 1; i >= 0; i-- {
		parts := v.segParts(&p.segs[i])
		if len(parts) == 0 {
			// Parts no longer listed: start at this whole segment.
			v.nextMSN, v.nextPart = p.msn(i), 0
			return
		}
		if visit(p.msn(i), parts) {
			return
		}
	}
}

// fetchListed downloads what the playlist lists after the position.
func (v *viewer) fetchListed(ctx context.Context) {
	p := &v.pl
	for i := range p.segs {
		s := &p.segs[i]
		msn := p.msn(i)
		if msn < v.nextMSN {
			continue
		}
		parts := v.segParts(s)
		switch {
		case len(parts) > 0:
			v.fetchParts(ctx, msn, s, parts)
		case v.nextPart == 0:
			v.fetchInit(ctx, s.mapURI)
			v.fetchMedia(ctx, kindSegment, s.uri, s.pdt, s.pdt.Add(s.dur))
		default:
			// Its remaining parts aged out of the listing before we
			// got them.
			v.stats.missed.Add(1)
		}
		v.nextMSN, v.nextPart = msn+1, 0
		if ctx.Err() != nil {
			return
		}
	}
	if v.nextMSN == p.openMSN() {
		v.fetchParts(ctx, v.nextMSN, &p.open, v.segParts(&p.open))
		if n := len(v.segParts(&p.open)); n > v.nextPart {
			v.nextPart = n
		}
	}
}

// fetchParts downloads the parts of one segment from the position on, and
// samples the lag of a hinted part now listed.
func (v *viewer) fetchParts(ctx context.Context, msn uint64, s *plSegment, parts []plPart) {
	pdt := s.pdt
	for j, pt := range parts {
		end := pdt.Add(pt.dur)
		ppdt, pend := pdt, end
		if s.pdt.IsZero() {
			// No date for the segment: no lag to sample (a zero date plus
			// a part's duration is not zero: it read as year 1).
			ppdt, pend = time.Time{}, time.Time{}
		}
		switch {
		case v.hinted && v.hintMSN == msn && v.hintIndex == uint64(j):
			v.hinted = false
			v.sampleLag(ppdt, pend, v.hintAt)
		case msn == v.nextMSN && j >= v.nextPart:
			v.fetchInit(ctx, s.mapURI)
			v.fetchMedia(ctx, kindPart, pt.uri, ppdt, pend)
			v.nextPart = j + 1
		}
		pdt = end
		if ctx.Err() != nil {
			return
		}
	}
}

// sampleLag records how far behind live the viewer was when it had the
// media ending at end: at minus end.
func (v *viewer) sampleLag(pdt, end, at time.Time) {
	if !v.steady {
		return // media listed when joining is old by choice: a player's start position
	}
	if pdt.IsZero() {
		v.stats.noPDT.Add(1)
		return
	}
	v.stats.lag.record(at.Sub(end))
}

func (v *viewer) fetchInit(ctx context.Context, uri []byte) {
	if len(uri) == 0 || string(uri) == v.init {
		return
	}
	if v.fetchMedia(ctx, kindInit, uri, time.Time{}, time.Time{}) {
		v.init = string(uri)
	}
}

// fetchMedia downloads one object into io.Discard and, for media with a
// known end, samples the lag behind live.
func (v *viewer) fetchMedia(ctx context.Context, kind int, uri []byte, pdt, end time.Time) bool {
	ok := v.get(ctx, kind, v.resolve(uri), nil)
	if ok && !end.IsZero() {
		v.sampleLag(pdt, end, time.Now())
	}
	return ok
}

// getPlaylist fetches a playlist into v.body. During the join, 404s and
// errors are not failures: the stream may not have started yet.
func (v *viewer) getPlaylist(ctx context.Context, kind int, u string, joining bool) (int, error) {
	v.body.Reset()
	var status int
	var err error
	if joining {
		status, err = v.do(ctx, kind, u, &v.body, true)
	} else if !v.get(ctx, kind, u, &v.body) {
		return 0, errors.New("failed")
	} else {
		status = http.StatusOK
	}
	return status, err
}

// get does one request and records it; it reports a 2xx answer.
func (v *viewer) get(ctx context.Context, kind int, u string, into *bytes.Buffer) bool {
	status, err := v.do(ctx, kind, u, into, false)
	return err == nil && status/100 == 2
}

// do runs a GET, reads the body into into (or discards it) and records
// latency, bytes and failures under kind. quiet skips failure accounting.
func (v *viewer) do(ctx context.Context, kind int, u string, into *bytes.Buffer, quiet bool) (int, error) {
	ks := &v.stats.kinds[kind]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		v.stats.failure(kind, "bad URL")
		return 0, err
	}
	t0 := time.Now()
	resp, err := v.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, err // the run ended: not the server's failure
		}
		ks.requests.Add(1)
		if !quiet {
			v.stats.failure(kind, errorReason(err))
		}
		return 0, err
	}
	var n int64
	if into != nil {
		n, err = into.ReadFrom(resp.Body)
	} else {
		n, err = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	if err != nil && ctx.Err() != nil {
		return 0, err
	}
	ks.requests.Add(1)
	ks.bytes.Add(uint64(n))
	switch {
	case err != nil:
		if !quiet {
			v.stats.failure(kind, errorReason(err))
		}
		return 0, err
	case resp.StatusCode/100 != 2:
		if !quiet {
			v.stats.failure(kind, strconv.Itoa(resp.StatusCode))
		}
	default:
		ks.latency.record(time.Since(t0))
	}
	return resp.StatusCode, nil
}

// errorReason shortens a request error for the failure table.
func errorReason(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + " error"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected EOF"
	}
	return "error"
}

// resolve makes a playlist URI absolute against the playlist's URL.
func (v *viewer) resolve(uri []byte) string {
	s := string(uri)
	if strings.Contains(s, "://") {
		return s
	}
	if v.dir == "" || !strings.HasPrefix(v.url, v.dir) {
		u := v.url
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		v.dir = u[:strings.LastIndexByte(u, '/')+1]
	}
	if strings.HasPrefix(s, "/") {
		u, err := url.Parse(v.url)
		if err != nil {
			return s
		}
		return u.Scheme + "://" + u.Host + s
	}
	return v.dir + s
}
