package ingest

import (
	"context"
	"maps"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// reqPublisher records the publish requests it accepts.
type reqPublisher struct {
	mu   sync.Mutex
	reqs []PublishRequest
}

func (p *reqPublisher) Publish(_ context.Context, req PublishRequest) (Session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, req)
	return nopSession{}, nil
}

func (p *reqPublisher) requests() []PublishRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PublishRequest(nil), p.reqs...)
}

// authRecorder passes requests on to an Authorizer and records them.
type authRecorder struct {
	Authorizer
	mu   sync.Mutex
	reqs []AuthRequest
}

func (a *authRecorder) Authorize(ctx context.Context, req AuthRequest) (string, error) {
	a.mu.Lock()
	a.reqs = append(a.reqs, req)
	a.mu.Unlock()
	return a.Authorizer.Authorize(ctx, req)
}

func (a *authRecorder) last() AuthRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reqs[len(a.reqs)-1]
}

// TestPublishVariant: ?variant=RENDITION on the publishing name is a
// grouped push: the key before '?' is authorised as always, the variant
// goes to the Publisher beside the public name and shows in the publisher's
// stats; a variant that is not a valid name refuses the publish, with a
// line and a count, before the authoriser or the Publisher hear of it.
func TestPublishVariant(t *testing.T) {
	pub := &reqPublisher{}
	srv, addr, logs := startLimitServer(t, Config{}, pub, nil)

	plain := publishName(t, addr, "show")
	hi := publishName(t, addr, "show?variant=720p&token=x")
	await(t, "two publishes", func() bool { return srv.Stats().PublishesAccepted == 2 })
	reqs := pub.requests()
	got := map[string]bool{}
	for _, r := range reqs {
		got[r.App+"/"+r.Name+"|"+r.Variant] = true
	}
	if len(reqs) != 2 || !got["live/show|"] || !got["live/show|720p"] {
		t.Fatalf("publish requests %+v", reqs)
	}
	st := srv.Stats()
	if len(st.Publishers) != 2 || st.Publishers[0].Stream != "live/show" || st.Publishers[0].Variant != "" ||
		st.Publishers[1].Stream != "live/show" || st.Publishers[1].Variant != "720p" {
		t.Fatalf("publishers %+v", st.Publishers)
	}
	if !strings.Contains(logs.String(), "stream=live/show variant=720p") {
		t.Errorf("the grouped push's log lines do not name its variant\n%s", logs)
	}
	// A stream's publishers go together: the main one and its renditions.
	if !srv.Disconnect("live/show") {
		t.Fatal("Disconnect found no publisher")
	}
	await(t, "both publishers to go", func() bool { return len(srv.Stats().Publishers) == 0 })
	plain.Close()
	hi.Close()

	refused := uint64(0)
	for _, name := range []string{
		"show?variant=", "show?variant=..", "show?variant=a/b", "show?variant=a%2Fb", "show?variant=%zz",
		"show?variant=caf%C3%A9", "show?variant=" + strings.Repeat("v", 129), "show?variant=a&variant=b",
		"show?x=1&variant=%0a",
	} {
		cc := publishName(t, addr, name)
		refused++
		await(t, "the refusal of "+name[:min(len(name), 40)], func() bool {
			return srv.Stats().PublishesRefused == refused &&
				strings.Count(logs.String(), `msg="rtmp publish refused: invalid variant"`) == int(refused)
		})
		cc.Close()
	}
	if n := len(pub.requests()); n != 2 {
		t.Fatalf("%d publish requests; invalid variants reached the Publisher", n)
	}
	if out := logs.String(); !strings.Contains(out, ErrInvalidName.Error()) || strings.Contains(out, strings.Repeat("v", 65)) {
		t.Errorf("refusals do not give the reason, or log the whole variant\n%s", out)
	}
	if srv.Stats().PublishesAccepted != 2 {
		t.Errorf("stats %+v", srv.Stats())
	}
}

// TestPublishVariantKeys: with --auth keys, the secret key is what comes
// before '?': it maps to the public name, and the variant is added to it,
// never read as part of the key. The query still reaches the authoriser as
// metadata.
func TestPublishVariantKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.yaml")
	authWriteFile(t, path, "streams:\n  - key: s3cret\n    name: show\n")
	keys, err := LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	auth := &authRecorder{Authorizer: keys}
	pub := &reqPublisher{}
	srv, addr, logs := startLimitServer(t, Config{Auth: auth}, pub, nil)

	cc := publishName(t, addr, "s3cret?variant=low")
	defer cc.Close()
	await(t, "the publish", func() bool { return srv.Stats().PublishesAccepted == 1 })
	if r := auth.last(); r.Key != "s3cret" || !maps.Equal(r.Metadata, map[string]string{"variant": "low"}) {
		t.Errorf("authoriser got key %q metadata %v", r.Key, r.Metadata)
	}
	if r := pub.requests(); len(r) != 1 || r[0].Name != "show" || r[0].Variant != "low" {
		t.Errorf("publish requests %+v", r)
	}
	if p := srv.Stats().Publishers; len(p) != 1 || p[0].Stream != "live/show" || p[0].Variant != "low" {
		t.Errorf("publishers %+v", p)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("the key is in the log\n%s", logs)
	}

	// An unknown key with a variant is refused by the authoriser, as without.
	bad := publishName(t, addr, "wrong?variant=low")
	defer bad.Close()
	await(t, "the refusal", func() bool { return srv.Stats().PublishesRefused == 1 })
	if r := auth.last(); r.Key != "wrong" {
		t.Errorf("authoriser got key %q", r.Key)
	}
	if out := logs.String(); !strings.Contains(out, `msg="rtmp publish refused by authorisation"`) || !strings.Contains(out, "key="+KeyFingerprint("wrong")) {
		t.Errorf("no authorisation refusal\n%s", logs)
	}
}

func TestVariantParam(t *testing.T) {
	for _, c := range []struct {
		query, want string
		bad         bool
	}{
		{"", "", false},
		{"token=a", "", false},
		{"variant=hd", "hd", false},
		{"a=1&variant=hd.1_x-y&b=%zz", "hd.1_x-y", false}, // another pair unreadable: not the variant's business
		{"variant=", "", true},
		{"variant", "", true},
		{"variant=%zz", "", true},
		{"variant=a;b", "", true},
		{"variant=a&variant=a", "a", true},
		{"variant=a..b", "a..b", true},
		{"Variant=hd", "", false}, // query names are case-sensitive, as in URLs
	} {
		v, err := variantParam(c.query, partialQuery(c.query))
		if v != c.want || (err != nil) != c.bad {
			t.Errorf("%q: %q, %v; want %q, error %v", c.query, v, err, c.want, c.bad)
		}
	}
}

// partialQuery is what url.ParseQuery makes of what it can read.
func partialQuery(q string) url.Values {
	v, _ := url.ParseQuery(q)
	return v
}
