package playlist

import (
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/grafov/m3u8"
)

// The multivariant playlist of a stream with renditions (group.go), and
// what it is made from: each rendition's MediaInfo and measured bit rates.

// MediaInfo describes what a rendition carries, for the multivariant
// playlist. The session feeding the rendition sets it (Stream.SetInfo).
type MediaInfo struct {
	VideoCodecs   string // RFC 6381, e.g. "avc1.64001f"; "" without video
	AudioCodecs   string // e.g. "mp4a.40.2"; "" without audio
	Width, Height int
	FrameRate     float64
	VideoRange    string // "SDR", "PQ" or "HLG"
	Name          string // audio and subtitles renditions: the NAME the player shows
	Language      string
	Subtitles     bool // a WebVTT rendition (captions.go)
}

// SetInfo sets what the rendition carries, for the multivariant playlist.
func (s *Stream) SetInfo(info MediaInfo) {
	if old := s.info.Load(); old != nil && *old == info {
		return
	}
	s.info.Store(&info)
	s.groupChanged()
}

// bandwidthStats are a rendition's peak and average segment bit rates over
// its window, and the peak bit rate of its keyframes (measureLocked).
type bandwidthStats struct {
	peak, avg, ipeak atomic.Uint64
}

// measureLocked recomputes the bit rates over the window; s.mu is held.
// It reports whether they moved enough (a tenth) to re-render the
// multivariant playlist.
func (s *Stream) measureLocked() bool {
	var peak, ipeak float64
	var bytes int64
	var dur time.Duration
	for _, e := range s.window {
		if e.gap || e.duration <= 0 {
			continue
		}
		bytes += e.size
		dur += e.duration
		peak = max(peak, float64(e.size)*8/e.duration.Seconds())
		for _, f := range e.iframes {
			if f.Duration > 0 {
				ipeak = max(ipeak, float64(f.Size)*8/f.Duration.Seconds())
			}
		}
	}
	var avg float64
	if dur > 0 {
		avg = float64(bytes) * 8 / dur.Seconds()
	}
	moved := func(old uint64, v float64) bool {
		o := float64(old)
		return o == 0 && v > 0 || v > o*1.1 || v < o*0.9
	}
	changed := moved(s.bw.peak.Load(), peak) || moved(s.bw.avg.Load(), avg) || moved(s.bw.ipeak.Load(), ipeak)
	if changed {
		s.bw.peak.Store(uint64(peak))
		s.bw.avg.Store(uint64(avg))
		s.bw.ipeak.Store(uint64(ipeak))
	}
	return changed
}

// variantRow is one rendition as the multivariant playlist lists it.
type variantRow struct {
	s                *Stream
	info             *MediaInfo
	peak, avg, ipeak uint64
	order            int // publish order
}

// audioGroup is one EXT-X-MEDIA group: the audio renditions of one codec.
type audioGroup struct {
	id, codecs string
	alts       []*m3u8.Alternative
	peak, avg  uint64 // the highest of its renditions'
}

// changed sets the parent's state from its renditions' and re-renders the
// multivariant playlist. Called without any stream's lock held.
func (g *variants) changed() {
	g.renderMu.Lock()
	defer g.renderMu.Unlock()
	rows, state := g.rows()
	p := g.parent
	p.mu.Lock()
	if state != p.state {
		p.state, p.since = state, p.cfg.Now()
	}
	p.mu.Unlock()
	body := renderMultivariant(rows, "", g.signalled())
	if body == nil {
		p.pl.Store(nil)
		return
	}
	if old := p.pl.Load(); old != nil && string(old.body) == string(body) {
		return
	}
	h := fnv.New64a()
	h.Write(body)
	rd := newRendered(body, "mv-"+strconv.FormatUint(h.Sum64(), 16), p.cfg.Now(), int(p.cfg.TargetDuration/time.Second)/2)
	p.pl.Store(rd) // renders are serialized by g.renderMu
	p.storePlaylist(rd)
}

// rows returns the renditions to list — the live ones when there are any,
// else every one that has segments (a stream waiting for its encoders, or
// ended) — and the state the parent takes from them.
func (g *variants) rows() ([]variantRow, State) {
	var rows, live []variantRow
	state := StateEnded
	for i, s := range g.snapshot() {
		st := s.State()
		switch {
		case st == StateLive:
			state = StateLive
		case st == StateIdle && state == StateEnded:
			state = StateIdle
		}
		info := s.info.Load()
		if info == nil || s.pl.Load() == nil {
			continue
		}
		rw := variantRow{s: s, info: info, peak: s.bw.peak.Load(), avg: s.bw.avg.Load(), ipeak: s.bw.ipeak.Load(), order: i}
		rows = append(rows, rw)
		if st == StateLive {
			live = append(live, rw)
		}
	}
	if len(live) > 0 {
		rows = live
	}
	return rows, state
}

// renderMultivariant writes the multivariant playlist of rows with
// grafov/m3u8; nil when there is nothing to list. With a recording id it
// is that recording's, at APP/NAME/rec/ID/: its renditions are their
// recordings, and it has no I-frame playlists.
func renderMultivariant(rows []variantRow, rec string, cc *Captions) []byte {
	uriOf := func(rend string) string { return rend + "/" + playlistName }
	if rec != "" {
		uriOf = func(rend string) string { return "../../" + rend + "/" + recDir + "/" + rec + "/" + playlistName }
	}
	var video, audio []variantRow
	var subs *variantRow
	for _, rw := range rows {
		if rw.info.Subtitles {
			if rec == "" { // recordings list their media only
				subs = &rw
			}
			continue
		}
		if rw.info.VideoCodecs != "" {
			video = append(video, rw)
		} else if rw.info.AudioCodecs != "" {
			audio = append(audio, rw)
		}
	}
	if len(video) == 0 {
		// Audio only: the audio renditions are the variants.
		video, audio = audio, nil
	}
	if len(video) == 0 {
		return nil
	}
	// The first published first (players start with the first listed
	// variant), then by bandwidth, highest first.
	sort.SliceStable(video, func(i, j int) bool {
		if video[i].order == 0 || video[j].order == 0 {
			return video[i].order == 0
		}
		return video[i].peak > video[j].peak
	})
	groups := audioGroups(audio, uriOf)

	mp := m3u8.NewMasterPlaylist()
	mp.SetVersion(6)
	mp.SetIndependentSegments(true)
	for _, rw := range video {
		uri := uriOf(rw.s.rendition)
		vp := m3u8.VariantParams{
			Bandwidth: clamp32(rw.peak), AverageBandwidth: clamp32(rw.avg),
			Codecs: rw.info.VideoCodecs, Resolution: resolution(rw.info),
			FrameRate: rw.info.FrameRate, VideoRange: rw.info.VideoRange,
			// CLOSED-CAPTIONS only when captions were found or declared
			// (captions.go): NONE would hide captions fount missed.
		}
		if cc != nil && rw.info.VideoCodecs != "" {
			vp.Captions = ccGroup
		}
		if subs != nil {
			vp.Subtitles = subsGroup
		}
		if len(groups) == 0 {
			if vp.Codecs == "" {
				vp.Codecs = rw.info.AudioCodecs
			} else if rw.info.AudioCodecs != "" {
				vp.Codecs += "," + rw.info.AudioCodecs
			}
			mp.Append(uri, nil, vp)
			continue
		}
		// Once per audio group, so that a player picks a codec it plays.
		for _, ag := range groups {
			v := vp
			v.Bandwidth, v.AverageBandwidth = clamp32(rw.peak+ag.peak), clamp32(rw.avg+ag.avg)
			v.Codecs += "," + ag.codecs
			v.Audio, v.Alternatives = ag.id, ag.alts
			mp.Append(uri, nil, v)
		}
	}
	for _, rw := range video {
		if rw.info.VideoCodecs == "" || rw.ipeak == 0 || rec != "" {
			continue
		}
		mp.Append(rw.s.rendition+"/"+iframesName, nil, m3u8.VariantParams{Iframe: true, Bandwidth: clamp32(rw.ipeak),
			Codecs: rw.info.VideoCodecs, Resolution: resolution(rw.info), VideoRange: rw.info.VideoRange})
	}
	// grafov/m3u8 writes PROGRAM-ID, removed from HLS in protocol version 6.
	body := strings.ReplaceAll(mp.Encode().String(), "PROGRAM-ID=0,", "")
	if cc != nil && strings.Contains(body, "CLOSED-CAPTIONS=") {
		body = cc.addTo(body, cc.mediaTag())
	}
	if subs != nil {
		body = cc.addTo(body, subtitlesTag(subs.info, uriOf(subs.s.rendition)))
	}
	return []byte(body)
}

// audioGroups makes one group per audio codec, in publish order, the first
// published rendition of each its default.
func audioGroups(audio []variantRow, uriOf func(rend string) string) []*audioGroup {
	var groups []*audioGroup
	byCodecs := map[string]*audioGroup{}
	for _, rw := range audio {
		ag := byCodecs[rw.info.AudioCodecs]
		if ag == nil {
			id := "audio-" + strings.SplitN(rw.info.AudioCodecs, ".", 2)[0]
			for _, o := range groups {
				if o.id == id { // two codecs of one family (mp4a.40.2, mp4a.40.5)
					id += "-" + strconv.Itoa(len(groups))
				}
			}
			ag = &audioGroup{id: id, codecs: rw.info.AudioCodecs}
			byCodecs[ag.codecs] = ag
			groups = append(groups, ag)
		}
		name := rw.info.Name
		if name == "" {
			name = rw.s.rendition
		}
		ag.alts = append(ag.alts, &m3u8.Alternative{
			GroupId: ag.id, Type: "AUDIO", Name: name, Language: rw.info.Language,
			Default: len(ag.alts) == 0, Autoselect: "YES", URI: uriOf(rw.s.rendition),
		})
		ag.peak, ag.avg = max(ag.peak, rw.peak), max(ag.avg, rw.avg)
	}
	return groups
}

func resolution(in *MediaInfo) string {
	if in.Width <= 0 || in.Height <= 0 {
		return ""
	}
	return strconv.Itoa(in.Width) + "x" + strconv.Itoa(in.Height)
}

func clamp32(v uint64) uint32 { return uint32(min(v, 1<<32-1)) }

// newRendered wraps a playlist that has no delta-update form (a
// multivariant or an I-frame playlist) for serving, tagged tag and
// cacheable for maxAge seconds (at least 1).
func newRendered(body []byte, tag string, mod time.Time, maxAge int) *rendered {
	tag = `"` + tag
	return &rendered{
		body: body, skipBody: body,
		etag: tag + `"`, etagSkip: tag + `"`, etagGz: tag + `-gz"`, etagSkipGz: tag + `-gz"`,
		modTime:      mod,
		cacheControl: "public, max-age=" + strconv.Itoa(max(1, maxAge)),
	}
}
