package playlist

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fount-live/fount/storage"
)

// restored is what a stream's stored playlist tells about it.
type restored struct {
	firstMSN   uint64
	discSeq    uint64
	target     int
	segments   []*entry
	nextInit   int
	dateranges []*dateRange // their msn set to the segment that follows each
}

// restore reads the stream's playlist that an earlier process left in
// storage, so that a stream published again after a restart continues it:
// same window, sequence numbers going on, a discontinuity, and no URL
// reused for other bytes. It returns nil when there is nothing to continue.
func (r *Registry) restore(ctx context.Context, path string) (*restored, error) {
	obj, err := r.cfg.Store.Get(ctx, path+"/"+playlistName)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the stored playlist: %w", err)
	}
	if bytes.Contains(obj.Data, []byte("#EXT-X-STREAM-INF")) {
		// A multivariant playlist: its renditions continue on their own.
		return nil, nil
	}
	rs, err := parseStored(obj.Data)
	if err != nil {
		return nil, fmt.Errorf("stored playlist %s: %w", path, err)
	}
	// Init segments in storage that the playlist no longer lists still own
	// their names.
	if keys, err := r.cfg.Store.Keys(ctx, path+"/"); err == nil {
		for _, k := range keys {
			name := k[strings.LastIndexByte(k, '/')+1:]
			if v, ok := strings.CutPrefix(name, "init"); ok {
				if n, err := strconv.Atoi(strings.TrimSuffix(v, ".mp4")); err == nil && n >= rs.nextInit {
					rs.nextInit = n + 1
				}
			}
		}
	}
	return rs, nil
}

// parseStored parses a media playlist as fount renders it (the full form,
// parts and all).
func parseStored(b []byte) (*restored, error) {
	rs := &restored{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	var (
		disc     bool
		pdt      time.Time
		dur      time.Duration
		init     = -1
		haveSeq  bool
		msn      uint64
		sawEXTM3 bool
		key      *segKey // the segment's EXT-X-KEY (fount writes one before each)
		cue      cueTag
		drs      []*dateRange // before the next segment
	)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "#EXTM3U":
			sawEXTM3 = true
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			v, err := strconv.ParseUint(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bad media sequence %q", line)
			}
			rs.firstMSN, msn, haveSeq = v, v, true
		case strings.HasPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE:"):
			v, err := strconv.ParseUint(strings.TrimPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE:"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bad discontinuity sequence %q", line)
			}
			rs.discSeq = v
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			v, err := strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-TARGETDURATION:"))
			if err != nil {
				return nil, fmt.Errorf("bad target duration %q", line)
			}
			rs.target = v
		case strings.HasPrefix(line, "#EXT-X-DATERANGE:"):
			if d, ok := parseDateRange(line); ok {
				drs = append(drs, d)
			}
		case strings.HasPrefix(line, "#EXT-X-CUE-OUT-CONT:"):
			cue = parseCueCont(line)
		case strings.HasPrefix(line, "#EXT-X-CUE-OUT"):
			cue = cueTag{kind: cueTagOut}
			if v, ok := strings.CutPrefix(line, "#EXT-X-CUE-OUT:DURATION="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && f < 1e9 {
					cue.duration = time.Duration(f * float64(time.Second))
				}
			}
		case line == "#EXT-X-CUE-IN":
			cue = cueTag{kind: cueTagIn}
		case line == "#EXT-X-DISCONTINUITY":
			disc = true
		case strings.HasPrefix(line, "#EXT-X-KEY:"):
			// Its key is in the key directory or at the key server,
			// where the earlier process put it.
			key = parseKeyLine(line)
		case strings.HasPrefix(line, "#EXT-X-MAP:URI=\"init"):
			v := strings.TrimSuffix(strings.TrimPrefix(line, "#EXT-X-MAP:URI=\"init"), ".mp4\"")
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("bad map %q", line)
			}
			init = n
			rs.nextInit = max(rs.nextInit, n+1)
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"))
			if err != nil {
				return nil, fmt.Errorf("bad date-time %q", line)
			}
			pdt = t
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("bad EXTINF %q", line)
			}
			dur = time.Duration(math.Round(f * float64(time.Second)))
		case line != "" && !strings.HasPrefix(line, "#"):
			if !haveSeq || dur == 0 {
				return nil, fmt.Errorf("segment %q without EXTINF or media sequence", line)
			}
			rs.segments = append(rs.segments, &entry{msn: msn, name: line, duration: dur, pdt: pdt, discontinuity: disc, init: init, key: key, cue: cue})
			for _, d := range drs {
				// Listed before its segment, or (an open break whose
				// segment slid out) before the first: the segment it
				// starts at is the one its START-DATE falls in.
				d.msn = msn
				rs.dateranges = append(rs.dateranges, d)
			}
			msn++
			disc, dur, key, cue, drs = false, 0, nil, cueTag{}, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !sawEXTM3 || !haveSeq {
		return nil, errors.New("not a media playlist")
	}
	return rs, nil
}

// parseCueCont reads an EXT-X-CUE-OUT-CONT:ElapsedTime=..,Duration=.. tag.
func parseCueCont(line string) cueTag {
	c := cueTag{kind: cueTagCont}
	attrs, _ := parseAttrs(strings.TrimPrefix(line, "#EXT-X-CUE-OUT-CONT:"))
	for _, a := range attrs {
		f, err := strconv.ParseFloat(a.Value, 64)
		if err != nil || f < 0 || f > 1e9 {
			continue
		}
		switch a.Name {
		case "ElapsedTime":
			c.elapsed = time.Duration(f * float64(time.Second))
		case "Duration":
			c.duration = time.Duration(f * float64(time.Second))
		}
	}
	return c
}
