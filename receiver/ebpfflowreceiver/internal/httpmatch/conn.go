package httpmatch

import (
	"time"
)

type connState uint8

const (
	stProbe   connState = iota // protocol not known yet
	stHTTP1                    // HTTP/1.x
	stHTTP2                    // HTTP/2 (at least one direction switched)
	stIgnored                  // not HTTP, another protocol, or no longer decodable
)

// maxProbes is how many calls may pass without a message start before a
// connection is given up as not HTTP. Generous: a connection older than
// the capture can be in the middle of a long body.
const maxProbes = 64

// Bounds of the chunks held back on one connection.
const (
	maxHeld      = 16
	maxHeldBytes = 256 << 10
)

type conn struct {
	id     uint64
	pid    uint32
	state  connState
	role   Role
	probes int
	dirs   [2]direction // by Dir-1
	last   time.Time

	held      []Chunk // chunks held back, in arrival order; Data copied
	heldBytes int

	byUse links[conn] // on Matcher.lru
	byPID links[conn] // on the list of its process

	// HTTP/1: requests awaiting their final response, oldest first.
	q       fifo
	reqNums uint64 // requests numbered as they are queued
	// Last strings made, reused while the next request repeats them.
	host, ua, path string

	h2 *h2conn
}

// direction is one byte stream of a connection.
type direction struct {
	next    uint32 // Seq expected next
	hasNext bool
	// floor: chunks of the other direction stop waiting for this
	// direction's bytes before floor (they were given up as lost).
	floor    uint32
	hasFloor bool
	last     time.Time // completion time of the last call
	p        h1parser
	h2       *h2dir // non-nil once this direction speaks HTTP/2
}

func (c *conn) dir(d Dir) *direction { return &c.dirs[d-1] }

// reqDir is the direction carrying requests; 0 while the role is unknown.
func (c *conn) reqDir() Dir {
	switch c.role {
	case RoleClient:
		return Sent
	case RoleServer:
		return Received
	}
	return 0
}

// seqLess compares TCP sequence numbers across wrap-around.
func seqLess(a, b uint32) bool { return int32(a-b) < 0 }

// position is how far a direction is known to have got.
func (d *direction) position() uint32 {
	if d.hasFloor && seqLess(d.next, d.floor) {
		return d.floor
	}
	return d.next
}

// order processes ch now, or holds it back until what must precede it has
// come: the bytes before it in its own direction (a Seq gap), the other
// direction's bytes sent or read before it (OtherSeq), or, for an HTTP/1
// response, its request.
func (m *Matcher) order(c *conn, ch *Chunk) {
	if !c.holds(ch.Dir) && c.ready(ch, c.held) {
		m.process(c, ch)
		if len(c.held) > 0 {
			m.drain(c, false)
		}
		return
	}
	m.stats.Held++
	c.held = append(c.held, *ch)
	h := &c.held[len(c.held)-1]
	h.Data = append([]byte(nil), ch.Data...)
	c.heldBytes += len(h.Data)
	m.held[c] = struct{}{}
	m.drain(c, false)
	for len(c.held) > 0 && (len(c.held) > maxHeld || c.heldBytes > maxHeldBytes ||
		ch.Time.Sub(c.held[0].Time) >= m.cfg.HoldWait) {
		m.drain(c, true)
	}
}

// holds says whether a chunk of direction d is held back.
func (c *conn) holds(d Dir) bool {
	for i := range c.held {
		if c.held[i].Dir == d {
			return true
		}
	}
	return false
}

// ready says whether ch, first of its direction, can be processed now,
// after the chunks held before it.
func (c *conn) ready(ch *Chunk, before []Chunk) bool {
	d := c.dir(ch.Dir)
	if ch.HasSeq && d.hasNext && seqLess(d.next, ch.Seq) {
		return false
	}
	if c.state == stHTTP2 || c.state == stIgnored {
		return true // streams pair by id whatever the order of directions
	}
	o := c.dir(ch.Dir.other())
	if ch.HasOtherSeq && o.hasNext {
		return !seqLess(o.position(), ch.OtherSeq)
	}
	// Without OtherSeq the arrival order is all there is: keep it, except
	// past chunks that wait for this direction.
	for i := range before {
		if y := &before[i]; y.Dir != ch.Dir && c.gapBefore(y) {
			return false
		}
	}
	return !c.awaitsRequest(ch)
}

// gapBefore: bytes of h's own direction before it have not come.
func (c *conn) gapBefore(h *Chunk) bool {
	d := c.dir(h.Dir)
	return h.HasSeq && d.hasNext && seqLess(d.next, h.Seq)
}

// awaitsRequest: ch starts an HTTP/1 response while no request is
// waiting for one: its request may still be on its way.
func (c *conn) awaitsRequest(ch *Chunk) bool {
	if c.q.n > 0 || len(ch.Data) < 5 || string(ch.Data[:5]) != "HTTP/" {
		return false
	}
	d := c.dir(ch.Dir)
	if d.h2 != nil || (d.p.st != h1Start && d.p.st != h1Lost) {
		return false
	}
	return c.reqDir() != ch.Dir
}

// drain processes the held chunks that became ready; force: at least the
// first held one, ready or not (what it waited for counts as lost).
func (m *Matcher) drain(c *conn, force bool) {
	for len(c.held) > 0 {
		i := c.nextReady()
		if i < 0 {
			if !force {
				return
			}
			force = false
			i = 0
			// Chunks of the other direction no longer wait for bytes
			// this one waited for.
			if h := &c.held[0]; h.HasOtherSeq {
				o := c.dir(h.Dir.other())
				if !o.hasFloor || seqLess(o.floor, h.OtherSeq) {
					o.floor, o.hasFloor = h.OtherSeq, true
				}
			}
		}
		h := c.held[i]
		copy(c.held[i:], c.held[i+1:])
		c.held[len(c.held)-1] = Chunk{}
		c.held = c.held[:len(c.held)-1]
		c.heldBytes -= len(h.Data)
		m.process(c, &h)
		if c.state == stIgnored {
			c.held, c.heldBytes = nil, 0
		}
	}
	c.held, c.heldBytes = nil, 0
	delete(m.held, c)
}

// nextReady returns the index of a held chunk that can be processed: the
// first held of its direction, or one continuing its direction exactly
// (chunks of one direction reported out of order).
func (c *conn) nextReady() int {
	var seen [2]bool
	for i := range c.held {
		h := &c.held[i]
		first := !seen[h.Dir-1]
		seen[h.Dir-1] = true
		d := c.dir(h.Dir)
		if !first && !(h.HasSeq && d.hasNext && h.Seq == d.next) {
			continue
		}
		if c.ready(h, c.held[:i]) {
			return i
		}
	}
	return -1
}

// release takes held chunks as they are: all of them (now nil), or those
// held for HoldWait by now.
func (m *Matcher) release(c *conn, now *time.Time) {
	for len(c.held) > 0 && (now == nil || now.Sub(c.held[0].Time) >= m.cfg.HoldWait) {
		m.drain(c, true)
	}
}

// call describes the bytes handed to a parser.
type call struct {
	dir      Dir
	t        time.Time
	seq      uint32 // Seq of the first byte handed over
	hasSeq   bool
	other    uint32
	hasOther bool
	start    bool  // the first byte handed over is the first of a call: a resynchronisation point
	cause    Cause // why bytes past the captured ones are not seen
}

// process parses one chunk in order: bytes seen before are dropped (a
// peek re-read), a Seq jump is a gap.
func (m *Matcher) process(c *conn, ch *Chunk) {
	d := c.dir(ch.Dir)
	data, n, seq := ch.Data, ch.Size, ch.Seq
	if n == 0 {
		if ch.Dir == Received {
			c.endOfStream(m, d, ch.Time)
		}
		return
	}
	start := true
	if ch.HasSeq && d.hasNext {
		switch {
		case seqLess(seq, d.next):
			over := d.next - seq
			if over >= n {
				return // seen before
			}
			if int(over) < len(data) {
				data = data[over:]
			} else {
				data = nil
			}
			n -= over
			seq = d.next
			start = false
		case seqLess(d.next, seq):
			gap := seq - d.next
			m.stats.GapBytes += uint64(gap)
			cl := call{dir: ch.Dir, t: ch.Time, seq: d.next, hasSeq: true, cause: CauseGap}
			c.feed(m, d, &cl, nil, int64(gap))
		}
	}
	d.next, d.hasNext = seq+n, ch.HasSeq
	d.last = ch.Time
	if c.state == stIgnored {
		return
	}
	cl := call{dir: ch.Dir, t: ch.Time, seq: seq, hasSeq: ch.HasSeq, other: ch.OtherSeq, hasOther: ch.HasOtherSeq,
		start: start, cause: CauseUncaptured}
	c.feed(m, d, &cl, data, int64(n))
}

// feed hands n bytes of one direction, of which data are seen, to the
// protocol of that direction; a direction switching protocols mid-call
// goes on with the rest.
func (c *conn) feed(m *Matcher, d *direction, cl *call, data []byte, n int64) {
	for n > 0 && c.state != stIgnored {
		var k int64
		if d.h2 != nil {
			k = d.h2.feed(m, cl, data, n)
		} else {
			k = c.feed1(m, d, cl, data, n)
		}
		if k >= n {
			return
		}
		n -= k
		if int64(len(data)) > k {
			data = data[k:]
		} else {
			data = nil
		}
		cl.seq += uint32(k)
		cl.start = cl.start && k == 0
	}
}

// endOfStream: the peer closed its side (a read returned 0).
func (c *conn) endOfStream(m *Matcher, d *direction, t time.Time) {
	switch c.state {
	case stHTTP1:
		if c.reqDir() == Received {
			return // a client's half close: the server may still answer
		}
		c.endClose1(m, d)
		c.failAll(m, OutcomeClosed, CauseNone, t)
	case stHTTP2:
		if c.role == RoleClient {
			c.failAll(m, OutcomeClosed, CauseNone, t)
		}
	}
}

// closed: the local socket was closed; responses delimited by the close
// end with the last bytes seen.
func (c *conn) closed(m *Matcher, at time.Time) {
	if c.state == stHTTP1 {
		if rd := c.reqDir(); rd != 0 {
			c.endClose1(m, c.dir(rd.other()))
		}
	}
}

// failAll reports every exchange in flight on c with outcome o.
func (c *conn) failAll(m *Matcher, o Outcome, cause Cause, at time.Time) {
	for c.q.n > 0 {
		s := c.q.pop()
		if s.p != nil {
			m.done(s.p, o, cause, at)
		}
	}
	if c.h2 != nil {
		for len(c.h2.streams) > 0 {
			p := c.h2.streams[len(c.h2.streams)-1]
			c.h2.streams = c.h2.streams[:len(c.h2.streams)-1]
			m.done(p, o, cause, at)
		}
	}
}

// inFlight counts the exchanges in flight on c whose request was seen.
func (c *conn) inFlight() int {
	n := 0
	for i := 0; i < c.q.n; i++ {
		if c.q.at(i).p != nil {
			n++
		}
	}
	if c.h2 != nil {
		for _, p := range c.h2.streams {
			if p.reqSeen {
				n++
			}
		}
	}
	return n
}

// forgetPending removes p from c's exchanges in flight; an HTTP/1
// request keeps its place in the queue so that its response, if it comes,
// is not taken for the next request's.
func (c *conn) forgetPending(p *pending) {
	for i := 0; i < c.q.n; i++ {
		if s := c.q.at(i); s.p == p {
			s.p = nil
			return
		}
	}
	if c.h2 != nil {
		c.h2.remove(p)
	}
}

// slot is a queued HTTP/1 request.
type slot struct {
	p        *pending // nil once reported (timeout, eviction): kept for alignment
	num      uint64
	seq      uint32 // Seq of its first byte
	hasSeq   bool
	other    uint32 // the response direction's position when it began
	hasOther bool
	head     bool // HEAD: the response has no body
	connect  bool // CONNECT: a 2xx response starts a tunnel
}

// fifo is a ring of queued requests.
type fifo struct {
	s    []slot
	h, n int
}

func (q *fifo) at(i int) *slot { return &q.s[(q.h+i)&(len(q.s)-1)] }

func (q *fifo) front() *slot {
	if q.n == 0 {
		return nil
	}
	return &q.s[q.h]
}

func (q *fifo) back() *slot {
	if q.n == 0 {
		return nil
	}
	return q.at(q.n - 1)
}

func (q *fifo) push(s slot) {
	if q.n == len(q.s) {
		ns := make([]slot, max(4, 2*len(q.s)))
		for i := 0; i < q.n; i++ {
			ns[i] = *q.at(i)
		}
		q.s, q.h = ns, 0
	}
	*q.at(q.n) = s
	q.n++
}

func (q *fifo) pop() slot {
	s := q.s[q.h]
	q.s[q.h] = slot{}
	q.h = (q.h + 1) & (len(q.s) - 1)
	q.n--
	return s
}
