//go:build linux

package httploop

import (
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// A loop's parked requests: LL-HLS blocking requests that a Source said
// to wait (Wait), kept with no goroutine on their Waitable until it moves
// on, their timeout passes or their viewer leaves.

// parkGroup is a loop's parked requests on one Waitable, in the order they
// came. subscribed: the loop is on the Waitable's list for its next change.
type parkGroup struct {
	conns      []*lconn
	subscribed bool
}

// Notify is a Waitable's word that it moved on: the loop asks its requests
// parked on w again. It is called by the goroutine that changed w.
func (l *loop) Notify(w Waitable) {
	l.mu.Lock()
	first := len(l.notified) == 0 && len(l.adds) == 0
	l.notified = append(l.notified, w)
	l.mu.Unlock()
	if first { // otherwise a wake-up is on its way already
		l.wakeup()
	}
}

// park puts c, whose request the Source said to wait (c.park), in the list
// of its Waitable, subscribed to the Waitable's next change.
func (l *loop) park(c *lconn, now time.Time) {
	c.state, c.since = stateParked, now
	c.parkEnd = now.Add(c.park.Timeout)
	if l.nextExpiry.IsZero() || c.parkEnd.Before(l.nextExpiry) {
		l.nextExpiry = c.parkEnd
		l.rearm = l.rearm || c.parkEnd.Before(l.deadline)
	}
	w := c.park.On
	g := l.parked[w]
	if g == nil {
		g = &parkGroup{}
		l.parked[w] = g
	}
	g.conns = append(g.conns, c)
	if !g.subscribed {
		g.subscribed = true
		w.Subscribe(l, c.park.Pos, c.park.Epoch)
	}
}

// unpark takes c out of its Waitable's list (not for retry, which takes
// them out together) and tells the Waitable.
func (l *loop) unpark(c *lconn, timedOut bool) {
	if g := l.parked[c.park.On]; g != nil {
		if i := slices.Index(g.conns, c); i >= 0 {
			g.conns = slices.Delete(g.conns, i, i+1)
		}
	}
	c.park.On.Unpark(timedOut)
	c.state = stateIdle
}

// retry asks the Source again for the requests parked on w that its
// progress may answer — those waiting for what came, and all of them when
// its epoch changed — and leaves the others parked.
func (l *loop) retry(w Waitable, now time.Time) {
	g := l.parked[w]
	if g == nil {
		return
	}
	g.subscribed = false
	pos, epoch := w.Progress()
	due, kept := l.due[:0], g.conns[:0]
	for _, c := range g.conns {
		if pos >= c.park.Until || epoch != c.park.Epoch {
			due = append(due, c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(g.conns[len(kept):])
	g.conns = kept
	for i, c := range due {
		due[i] = nil
		w.Unpark(false)
		c.state = stateIdle
		l.resume(c, now)
	}
	l.due = due[:0]
	if len(g.conns) == 0 {
		if !g.subscribed {
			delete(l.parked, w)
		}
		return
	}
	if !g.subscribed {
		g.subscribed = true
		w.Subscribe(l, pos, epoch)
	}
}

// resume serves a request that was parked, and what was pipelined after it.
func (l *loop) resume(c *lconn, now time.Time) {
	if l.conns[c.fd] != c {
		return
	}
	data := append(l.buf[:0], c.in...)
	c.in = c.in[:0]
	l.serve(c, data, now)
}

// expire answers 503 to the parked requests whose timeout passed.
func (l *loop) expire(now time.Time) {
	l.nextExpiry = time.Time{}
	for w, g := range l.parked {
		due, kept := l.due[:0], g.conns[:0]
		for _, c := range g.conns {
			if !now.Before(c.parkEnd) {
				due = append(due, c)
				continue
			}
			kept = append(kept, c)
			if l.nextExpiry.IsZero() || c.parkEnd.Before(l.nextExpiry) {
				l.nextExpiry = c.parkEnd
			}
		}
		clear(g.conns[len(kept):])
		g.conns = kept
		for i, c := range due {
			due[i] = nil
			w.Unpark(true)
			c.state, c.expired = stateIdle, true
			l.resume(c, now)
		}
		l.due = due[:0]
		if len(g.conns) == 0 && !g.subscribed {
			delete(l.parked, w)
		}
	}
}

// parkedRead reads what comes on a parked request's connection: the
// viewer going away (the request is dropped, as net/http cancels it), or
// requests pipelined behind it, kept for after its answer up to the head
// limit (no player pipelines behind a blocking request; a client that
// sends more is closed).
func (l *loop) parkedRead(c *lconn) {
	n, err := rawRead(c.fd, l.buf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil || n == 0 || len(c.in)+n > 2*l.srv.maxHead:
		l.close(c)
		return
	}
	c.in = append(c.in, l.buf[:n]...)
}
