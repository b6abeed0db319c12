package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Comcast/scte35-go/pkg/scte35"
	"github.com/grafov/m3u8"
)

// apiPost posts body to the API and checks the answer against the
// OpenAPI description.
func apiPost(t *testing.T, o *origin, spec map[string]any, path, specPath string, body any, wantCode int) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+o.api+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != wantCode {
		t.Fatalf("POST %s %s: %d, want %d: %s", path, b, resp.StatusCode, wantCode, raw)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("POST %s: %v: %s", path, err, raw)
	}
	op := spec["paths"].(map[string]any)[specPath].(map[string]any)["post"].(map[string]any)
	r := op["responses"].(map[string]any)[strconv.Itoa(wantCode)].(map[string]any)
	schema := r["content"].(map[string]any)["application/json"].(map[string]any)["schema"].(map[string]any)
	for _, e := range schemaCheck(spec, schema, v, "response") {
		t.Errorf("POST %s %d does not match the OpenAPI description: %s", path, wantCode, e)
	}
	return v
}

var dateRangeRE = regexp.MustCompile(`(?m)^#EXT-X-DATERANGE:ID="([^"]+)",START-DATE="([^"]+)",(?:DURATION=[0-9.]+,)?PLANNED-DURATION=([0-9.]+),SCTE35-OUT=0x([0-9a-f]+)(?:,SCTE35-IN=0x[0-9a-f]+)?\n(#EXT-X-CUE-OUT:DURATION=[0-9.]+\n)?#EXT-X-PROGRAM-DATE-TIME:(\S+)\n#EXTINF:[0-9.]+,\n(\S+)\n`)

// TestE2ECueABR: ffmpeg pushes two renditions with a keyframe every half
// second (segments of 2 s); an ad break posted to the API cuts every
// rendition at the next keyframe, whose segment carries the
// EXT-X-DATERANGE (START-DATE its PROGRAM-DATE-TIME, SCTE35-OUT a
// splice_insert that scte35-go reads back) and, with --ad-markers both,
// EXT-X-CUE-OUT; the break ends by itself after its duration.
func TestE2ECueABR(t *testing.T) {
	lockEndToEndLogged(t)
	requireTool(t, "ffmpeg")
	requireTool(t, "ffprobe")
	o := startOrigin(t, func(c *config) { c.AdMarkers = "both" })
	code, raw, _ := httpGet(t, "http://"+o.api+"/api/v1/openapi.json")
	var spec map[string]any
	if code != 200 || json.Unmarshal(raw, &spec) != nil {
		t.Fatalf("openapi.json: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rends := []string{"hi", "lo"}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-filter_complex", "[0:v]split=2[a][b];[b]scale=320:180[c]"}
	for i, r := range rends {
		args = append(args, "-map", map[int]string{0: "[a]", 1: "[c]"}[i], "-map", "1:a",
			"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
			"-g", "15", "-keyint_min", "15", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k",
			"-f", "flv", "rtmp://"+o.rtmp+"/live/ad?variant="+r)
	}
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("ffmpeg:\n%s", stderr.String())
		}
	}()
	for _, r := range rends {
		awaitPlaylist(t, o.url("/live/ad/"+r+"/index.m3u8"), 30*time.Second, "two segments", func(_ *m3u8.MediaPlaylist, b []byte) bool {
			return bytes.Count(b, []byte("#EXTINF")) >= 2
		})
	}
	cue := apiPost(t, o, spec, "/api/v1/streams/live/ad/cues", "/api/v1/streams/{app}/{name}/cues", map[string]any{"type": "out", "duration": 4}, 202)
	id := cue["id"].(string)
	if cue["type"] != "out" || math.Abs(cue["return_due_pts"].(float64)-cue["due_pts"].(float64)-4) > 1e-6 {
		t.Fatalf("cue %v", cue)
	}
	// A second break with the same ID is refused.
	apiPost(t, o, spec, "/api/v1/streams/live/ad/cues", "/api/v1/streams/{app}/{name}/cues", map[string]any{"type": "out", "id": id}, 409)

	var starts []string
	for _, r := range rends {
		var m []string
		_, body := awaitPlaylist(t, o.url("/live/ad/"+r+"/index.m3u8"), 20*time.Second, "the break's daterange", func(_ *m3u8.MediaPlaylist, b []byte) bool {
			m = dateRangeRE.FindStringSubmatch(string(b))
			return m != nil
		})
		if m[1] != id || m[3] != "4.000" || m[5] == "" {
			t.Errorf("%s: daterange %q (want EXT-X-CUE-OUT too)\n%s", r, m[0], body)
		}
		// The group's first rendition to take the cue sets its
		// START-DATE: the others' PROGRAM-DATE-TIME may differ by the
		// milliseconds between their publishers' starts.
		sd, _ := time.Parse(time.RFC3339Nano, m[2])
		pdt, _ := time.Parse(time.RFC3339Nano, m[6])
		if d := sd.Sub(pdt); d > 50*time.Millisecond || d < -50*time.Millisecond {
			t.Errorf("%s: START-DATE %s is not the segment's PROGRAM-DATE-TIME %s", r, m[2], m[6])
		}
		starts = append(starts, m[2]+" "+m[7])
		// SCTE35-OUT is the splice_insert the API answered with.
		b, _ := hex.DecodeString(m[4])
		sis := &scte35.SpliceInfoSection{}
		if err := sis.Decode(b); err != nil {
			t.Fatalf("%s: SCTE35-OUT does not decode: %v", r, err)
		}
		ins, ok := sis.SpliceCommand.(*scte35.SpliceInsert)
		if !ok || !ins.OutOfNetworkIndicator || ins.BreakDuration == nil || scte35.TicksToDuration(ins.BreakDuration.Duration) != 4*time.Second ||
			"splice-"+strconv.FormatUint(uint64(ins.SpliceEventID), 10) != id || "0x"+m[4] != cue["scte35"] {
			t.Errorf("%s: SCTE35-OUT %+v", r, sis.SpliceCommand)
		}
		// The segment that starts the break starts with a keyframe.
		seg := fetchTo(t, o.url("/live/ad/"+r+"/"+m[7]), initOf(t, o, "/live/ad/"+r+"/", body))
		out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=key_frame,pict_type",
			"-read_intervals", "%+#1", "-of", "csv=p=0", seg).Output()
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "1,I") {
			t.Errorf("%s: %s does not start with a keyframe: %q %v", r, m[7], out, err)
		}
	}
	if len(starts) == 2 && starts[0] != starts[1] {
		t.Errorf("renditions mark different segments or dates: %q", starts)
	}
	// The break returns by itself after 4 s: DURATION, SCTE35-IN and
	// EXT-X-CUE-IN in every rendition.
	for _, r := range rends {
		awaitPlaylist(t, o.url("/live/ad/"+r+"/index.m3u8"), 20*time.Second, "the break's end", func(_ *m3u8.MediaPlaylist, b []byte) bool {
			return bytes.Contains(b, []byte(",SCTE35-IN=0x")) && bytes.Contains(b, []byte("#EXT-X-CUE-IN\n")) && bytes.Contains(b, []byte("#EXT-X-CUE-OUT-CONT:ElapsedTime="))
		})
	}
	var st struct {
		Cues struct {
			OpenBreak *struct{} `json:"open_break"`
			LastCue   struct {
				ID, Type, Source string
			} `json:"last_cue"`
		} `json:"cues"`
	}
	_, raw, _ = httpGet(t, "http://"+o.api+"/api/v1/streams/live/ad")
	if err := json.Unmarshal(raw, &st); err != nil || st.Cues.OpenBreak != nil || st.Cues.LastCue.ID != id || st.Cues.LastCue.Type != "in" || st.Cues.LastCue.Source != "api" {
		t.Errorf("API cues: %s", raw)
	}
	code, raw, _ = httpGet(t, "http://"+o.api+"/metrics")
	if code != 200 {
		t.Errorf("metrics: %d %.300s", code, raw)
	}
	for _, want := range []string{`fount_cues_total{source="api",type="out"} 1`, `fount_cues_total{source="api",type="in"} 1`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("metrics lack %s: %s", want, regexp.MustCompile(`(?m)^fount_cues.*$`).FindAll(raw, -1))
		}
	}
	if n := strings.Count(o.logs.String(), `msg=cue `); n != 2 {
		t.Errorf("%d cue log lines, want 2 (one per cue, not per rendition)", n)
	}
}

// fetchTo saves a URL's body in a temporary file.
func fetchTo(t *testing.T, url string, prefix []byte) string {
	t.Helper()
	code, b, _ := httpGet(t, url)
	if code != 200 {
		t.Fatalf("GET %s: %d", url, code)
	}
	f := filepath.Join(t.TempDir(), filepath.Base(url))
	if err := os.WriteFile(f, append(prefix, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

var _ = fmt.Sprint
