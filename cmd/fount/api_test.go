package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grafov/m3u8"
)

// schemaCheck validates v (decoded JSON) against an OpenAPI 3 schema from
// spec: types, required properties, nullable, enum, arrays and $ref. It
// also rejects properties the schema does not describe, so the document
// cannot fall behind the responses.
func schemaCheck(spec map[string]any, schema map[string]any, v any, at string) []string {
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		return schemaCheck(spec, spec["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any), v, at)
	}
	if v == nil {
		if schema["nullable"] == true {
			return nil
		}
		return []string{at + ": null but not nullable"}
	}
	var errs []string
	switch schema["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want object", at, v)}
		}
		props, _ := schema["properties"].(map[string]any)
		req, _ := schema["required"].([]any)
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				errs = append(errs, at+"."+r.(string)+": required but missing")
			}
		}
		for k, val := range obj {
			ps, ok := props[k].(map[string]any)
			if !ok {
				errs = append(errs, at+"."+k+": not in the schema")
				continue
			}
			errs = append(errs, schemaCheck(spec, ps, val, at+"."+k)...)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want array", at, v)}
		}
		for i, it := range arr {
			errs = append(errs, schemaCheck(spec, schema["items"].(map[string]any), it, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, want string", at, v)}
		}
		if enum, ok := schema["enum"].([]any); ok {
			found := false
			for _, e := range enum {
				found = found || e == s
			}
			if !found {
				errs = append(errs, fmt.Sprintf("%s: %q not in %v", at, s, enum))
			}
		}
		if schema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339, s); err != nil {
				errs = append(errs, at+": not a date-time")
			}
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			errs = append(errs, fmt.Sprintf("%s: %v, want integer", at, v))
		}
	case "number":
		if _, ok := v.(float64); !ok {
			errs = append(errs, fmt.Sprintf("%s: %T, want number", at, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: %T, want boolean", at, v))
		}
	}
	return errs
}

// apiCall makes an API request and checks the response against the
// OpenAPI description of that path, method and status.
func apiCall(t *testing.T, o *origin, spec map[string]any, method, path, specPath, token string, wantCode int) any {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+o.api+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != wantCode {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, wantCode, body)
	}
	op := spec["paths"].(map[string]any)[specPath].(map[string]any)[strings.ToLower(method)].(map[string]any)
	r, ok := op["responses"].(map[string]any)[fmt.Sprint(wantCode)].(map[string]any)
	if !ok {
		t.Fatalf("the OpenAPI description has no %d for %s %s", wantCode, method, specPath)
	}
	content, ok := r["content"].(map[string]any)
	if !ok {
		if len(body) > 0 {
			t.Fatalf("%s %s: body where the description has none", method, path)
		}
		return nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: content type %q", method, path, ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	schema := content["application/json"].(map[string]any)["schema"].(map[string]any)
	for _, e := range schemaCheck(spec, schema, v, "response") {
		t.Errorf("%s %s %d does not match the OpenAPI description: %s", method, path, wantCode, e)
	}
	return v
}

func TestE2EAPI(t *testing.T) {
	src := source(t)
	const token = "api-t0ken"
	o := startClassic(t, func(c *config) { c.APIToken = token })
	code, raw, _ := httpGet(t, "http://"+o.api+"/api/v1/openapi.json")
	var spec map[string]any
	if code != 200 || json.Unmarshal(raw, &spec) != nil || spec["openapi"] == nil {
		t.Fatalf("openapi.json: %d %s", code, raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	push := o.push(ctx, t, "api", []string{"-re", "-stream_loop", "-1", "-i", src}, "-c", "copy")
	defer push.Wait()
	defer cancel()
	url := o.url("/live/api/index.m3u8")
	p, _ := awaitPlaylist(t, url, 10*time.Second, "two segments", func(p *m3u8.MediaPlaylist, _ []byte) bool { return p.Count() >= 2 })
	httpGet(t, o.url("/live/api/"+p.Segments[0].URI)) // one viewer's worth of bytes out

	apiCall(t, o, spec, "GET", "/api/v1/streams", "/api/v1/streams", "", 401)
	apiCall(t, o, spec, "GET", "/api/v1/streams", "/api/v1/streams", "wrong", 401)
	if code, _, _ := httpGet(t, "http://"+o.api+"/metrics"); code != 401 {
		t.Errorf("/metrics without the token: %d", code)
	}
	list := apiCall(t, o, spec, "GET", "/api/v1/streams", "/api/v1/streams", token, 200).(map[string]any)
	if int(list["http_port"].(float64)) == 0 || list["http_scheme"] != "http" || len(list["streams"].([]any)) != 1 {
		t.Fatalf("list: %v", list)
	}
	st := apiCall(t, o, spec, "GET", "/api/v1/streams/live/api", "/api/v1/streams/{app}/{name}", token, 200).(map[string]any)
	video, _ := st["video"].(map[string]any)
	audio, _ := st["audio"].(map[string]any)
	pub, _ := st["publisher"].(map[string]any)
	switch {
	case st["state"] != "live", st["playback_path"] != "/live/api/index.m3u8":
		t.Errorf("stream: %v", st)
	case video == nil || video["width"] != 640.0 || video["height"] != 360.0 || video["frame_rate"] != 30.0:
		t.Errorf("video: %v", video)
	case audio == nil || audio["sample_rate"] != 48000.0 || audio["channels"] != 2.0:
		t.Errorf("audio: %v", audio)
	case !strings.HasPrefix(st["codecs"].(string), "avc1.") || !strings.Contains(st["codecs"].(string), "mp4a.40.2"):
		t.Errorf("codecs %v", st["codecs"])
	case pub == nil || !strings.HasPrefix(pub["remote"].(string), "127.0.0.1:"):
		t.Errorf("publisher %v", pub)
	case st["gop_seconds"].(float64) < 1.9 || st["gop_seconds"].(float64) > 2.1:
		t.Errorf("gop %v", st["gop_seconds"])
	}
	// Bitrates need two sweeps.
	deadline := time.Now().Add(10 * time.Second)
	for st["bitrate_in_bps"].(float64) <= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("bitrate in still 0: %v", st)
		}
		time.Sleep(200 * time.Millisecond)
		st = apiCall(t, o, spec, "GET", "/api/v1/streams/live/api", "/api/v1/streams/{app}/{name}", token, 200).(map[string]any)
	}
	t.Logf("bitrate in %.0f bit/s, out %.0f bit/s, viewers %v", st["bitrate_in_bps"], st["bitrate_out_bps"], st["viewers_estimate"])
	apiCall(t, o, spec, "GET", "/api/v1/streams/live/nope", "/api/v1/streams/{app}/{name}", token, 404)

	// DELETE disconnects the publisher: ffmpeg fails, the stream goes idle.
	apiCall(t, o, spec, "DELETE", "/api/v1/streams/live/api", "/api/v1/streams/{app}/{name}", token, 204)
	if err := push.Wait(); err == nil {
		t.Error("ffmpeg kept publishing after DELETE")
	}
	for o.reg.Stream("live/api").State() == "live" {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("stream still live after DELETE")
		}
		time.Sleep(20 * time.Millisecond)
	}
	apiCall(t, o, spec, "DELETE", "/api/v1/streams/live/api", "/api/v1/streams/{app}/{name}", token, 404)
}

func TestAPITokenRequiredOffLoopback(t *testing.T) {
	cfg := defaultConfig()
	cfg.APIAddr = "0.0.0.0:9997"
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "--api-token") {
		t.Fatalf("non-loopback API without a token: %v", err)
	}
	cfg.APIToken = "x"
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:9997": true, "[::1]:1": true, "localhost:1": true, ":9997": false, "10.0.0.1:1": false} {
		if isLoopback(addr) != want {
			t.Errorf("isLoopback(%q) = %v", addr, !want)
		}
	}
}
