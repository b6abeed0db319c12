package httploop

import "time"

// Source is what the loops answer from; the playlist side implements it.
type Source interface {
	// Lookup answers a plain GET or HEAD: Serve with the Answer's 200, Park
	// with Answer.Park (a blocking request for what is not there yet: the
	// loop keeps the connection, with no goroutine, and asks again when
	// Park.On moves on), or Decline: the request goes, with its
	// connection, to the Viewer handler, which answers it (a 404, an
	// error, an object that just expired). The loop calls Lookup for every
	// plain request, so it should not allocate.
	Lookup(req Request) (Answer, Verdict)
}

// Request is a plain request as a loop read it. Path and Query alias the
// loop's read buffer: they are valid only during the call.
type Request struct {
	// Path is clean and made of '/' and name bytes (storage.ValidName's).
	Path []byte
	// Query is what follows '?' (nil without one): name bytes, '=' and '&'
	// only, so that it reads raw as url.ParseQuery reads it.
	Query []byte
	Gzip  bool // the request accepts gzip
	Head  bool // HEAD, not GET
}

// Verdict is what a Source does with a request.
type Verdict uint8

const (
	Decline Verdict = iota // net/http answers it
	Serve                  // the Answer is a 200
	Wait                   // park it: Answer.Park says until when
)

// Park is a Source's word that a request must wait. The loop parks the
// connection in On's list and asks the Source again once On's progress
// reaches Until or its epoch is no longer Epoch; if Timeout passes first,
// the loop answers 503 with TimeoutMsg, as net/http's http.Error would.
// Every Wait the Source gives is matched by exactly one On.Unpark.
type Park struct {
	On         Waitable
	Pos, Epoch uint64 // On's progress when the Source decided
	Until      uint64 // the progress that may answer the request
	Timeout    time.Duration
	TimeoutMsg string
}

// Waitable is what requests park on (a stream): a progress that only
// grows, and an epoch that changes on whatever else may change an answer
// (the stream ends, the server drains).
type Waitable interface {
	Progress() (pos, epoch uint64)
	// Subscribe asks for one n.Notify(w) at the next change, or at once if
	// pos or epoch differs from the current ones already.
	Subscribe(n Notifier, pos, epoch uint64)
	// Unpark tells that a parked request left: asked again, closed, or, if
	// timedOut, answered 503.
	Unpark(timedOut bool)
}

// Notifier is told that a Waitable moved on. Notify must be quick and must
// not call back into the Waitable: it is called with the Waitable's lock
// held, from the goroutine that changed it.
type Notifier interface{ Notify(Waitable) }

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
	// Park is set with the verdict Wait.
	Park Park
}

// Releaser lets go of what an Answer held.
type Releaser interface{ Release() }
