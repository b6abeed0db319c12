package main

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// web holds the operator page. web/hls.min.js is hls.js 1.7.4
// (dist/hls.min.js of the npm package, Apache-2.0, see web/hls.js.LICENSE).
//
//go:embed web
var webFiles embed.FS

// webTypes are the content types of the page's files, by extension; a
// file with any other extension is served as plain text.
var webTypes = map[string]string{
	".html":    "text/html; charset=utf-8",
	".js":      "text/javascript; charset=utf-8",
	".css":     "text/css; charset=utf-8",
	".svg":     "image/svg+xml",
	".png":     "image/png",
	".ico":     "image/x-icon",
	".txt":     "text/plain; charset=utf-8",
	".LICENSE": "text/plain; charset=utf-8",
}

// webCSP keeps the page to fount's own scripts and styles. Media and
// playlists come from fount's HTTP port, a different origin, hence http:
// and https: in connect-src and media-src; hls.js plays through blob: URLs
// and may start its worker from one.
const webCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' http: https:; media-src 'self' blob: http: https:; worker-src 'self' blob:; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type webFile struct {
	body  []byte
	ctype string
	etag  string
}

// webHandler serves the operator page at / and its files at /static/.
func webHandler() http.Handler {
	files := map[string]webFile{}
	err := fs.WalkDir(webFiles, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := webFiles.ReadFile(p)
		if err != nil {
			return err
		}
		ctype, ok := webTypes[path.Ext(p)]
		if !ok {
			ctype = "text/plain; charset=utf-8"
		}
		sum := sha256.Sum256(b)
		files[strings.TrimPrefix(p, "web/")] = webFile{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("fount: embedded web files: " + err.Error()) // cannot happen: they are compiled in
	}
	index := files["index.html"]

	serve := func(w http.ResponseWriter, r *http.Request, name string, f webFile, cache string) {
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("Cache-Control", cache)
		h.Set("ETag", f.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if f.ctype == index.ctype {
			h.Set("Content-Security-Policy", webCSP)
			h.Set("Referrer-Policy", "no-referrer")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch p := r.URL.Path; {
		case p == "/" || p == "/index.html":
			serve(w, r, "index.html", index, "no-cache")
		case strings.HasPrefix(p, "/static/"):
			name := strings.TrimPrefix(p, "/static/")
			f, ok := files[name]
			if !ok || name == "index.html" {
				http.NotFound(w, r)
				return
			}
			serve(w, r, name, f, "public, max-age=3600")
		default:
			http.NotFound(w, r)
		}
	})
}
