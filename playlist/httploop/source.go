package httploop

// Source is what the loops answer from; the playlist side implements it.
type Source interface {
	// Lookup returns the answer to a plain GET, or HEAD if head is set, of
	// path, or false: then the request goes, with its connection, to the
	// Viewer handler, which answers it (a 404, a blocking reload, an object
	// that just expired). path is clean and made of '/' and name bytes
	// (storage.ValidName's); it aliases the loop's read buffer, so it is
	// valid only during the call. gzip: the request accepts gzip. The loop
	// calls Lookup for every plain request, so it should not allocate.
	Lookup(path []byte, gzip, head bool) (Answer, bool)
}

// Answer is a Source's 200 to a plain request: its head and its body,
// either bytes in memory or a byte range of a file, which the loop sends
// with sendfile. For a HEAD the loop sends no body, whatever Body and N
// say.
type Answer struct {
	Head Head
	// Body is the body, if it is in memory. The loop writes it after the
	// head, in one writev with it when it can.
	Body []byte
	// Otherwise N bytes of the file File (a descriptor) from Off; File is
	// read only when N > 0 and Body is nil. The head leaves in the first
	// packet of the body (MSG_MORE).
	File   int
	Off, N int64
	// Hold, if set, keeps Body or File valid until the loop releases it:
	// once the response is out, or its connection closed or handed to
	// net/http. An interface holding a pointer, not a closure, so that an
	// answer costs no allocation.
	Hold Releaser
}

// Releaser lets go of what an Answer held.
type Releaser interface{ Release() }
