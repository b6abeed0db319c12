package httploop

import "strings"

// AcceptsGzip reports whether an Accept-Encoding header allows gzip: a
// "gzip" (or "*") token whose q is not 0. The loops and the Source's
// net/http handler both decide with it.
func AcceptsGzip(h string) bool {
	for h != "" {
		var tok string
		tok, h, _ = strings.Cut(h, ",")
		name, params, _ := strings.Cut(tok, ";")
		name = strings.TrimSpace(name)
		if !strings.EqualFold(name, "gzip") && name != "*" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		if v, ok := strings.CutPrefix(strings.ToLower(q), "q="); ok && strings.Trim(v, "0.") == "" {
			return false
		}
		return true
	}
	return false
}
