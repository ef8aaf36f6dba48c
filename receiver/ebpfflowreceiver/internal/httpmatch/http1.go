package httpmatch

import (
	"bytes"
	"strings"
	"time"
)

// HTTP/1 framing (RFC 9112). Each direction is parsed on its own; the
// direction carrying requests queues them, the other pairs each final
// response with the oldest queued request. Bodies are followed by size, so
// bytes the capture did not keep are passed over exactly, except where
// framing lives in them (a head, a chunk-size line, trailers): then the
// direction waits for a call that starts a message.

type h1state uint8

const (
	h1Lost      h1state = iota // framing unknown: wait for a call that starts a message
	h1Start                    // between messages
	h1Head                     // inside a head that spans calls (bytes in buf)
	h1Body                     // Content-Length body: rest bytes to go
	h1ChunkSize                // a chunk-size line
	h1ChunkData                // chunk data: rest bytes to go
	h1ChunkEnd                 // the CRLF after chunk data: rest bytes to go
	h1Trailer                  // the trailer section
	h1Close                    // body delimited by the connection's close
)

// maxChunkLine bounds a chunk-size line with its extensions.
const maxChunkLine = 4096

type h1parser struct {
	st      h1state
	buf     []byte // a head spanning calls
	scanned int    // where in buf the search for the head's end resumes

	// The current message's first byte.
	startT        time.Time
	startSeq      uint32
	startHasSeq   bool
	startOther    uint32
	startHasOther bool

	rest    int64  // bytes to go in h1Body, h1ChunkData, h1ChunkEnd
	body    int64  // body bytes so far
	bodyOK  bool   // body is a known count
	size    uint64 // chunk size being read
	digits  int    // its hex digits
	ext     bool   // past them: extensions up to the line end
	lineLen int    // bytes of the current chunk-size or trailer line
	trailer int    // bytes of the trailer section

	num      uint64 // the queued request this message is (or answers); 0 none
	lossWait bool   // requests: framing was lost; resume once nothing is queued
}

// feed1 parses n bytes of an HTTP/1 direction, of which data were
// captured, and returns how many it took (fewer when the direction
// switched to HTTP/2 mid-call).
func (c *conn) feed1(m *Matcher, d *direction, cl *call, data []byte, n int64) int64 {
	p := &d.p
	var pos int64
	isReq := c.reqDir() == cl.dir
	defer c.progress1(m, cl.t)
	for pos < n {
		if d.h2 != nil || c.state == stIgnored {
			return pos
		}
		captured := int64(len(data)) - pos // ≤ 0: the rest is not seen
		switch p.st {
		case h1Lost:
			if pos != 0 || !cl.start || len(data) == 0 || !c.resync(m, d, cl, data, n) {
				if d.h2 != nil {
					return pos
				}
				return n
			}
			p.st = h1Start
			isReq = c.reqDir() == cl.dir
		case h1Start:
			for pos < int64(len(data)) && (data[pos] == '\r' || data[pos] == '\n') {
				pos++
			}
			if pos == n {
				return n
			}
			if pos >= int64(len(data)) {
				c.lose1Call(m, d, cl, n)
				return n
			}
			pos += c.startHead(m, d, cl, data[pos:], n-pos, pos)
			isReq = c.reqDir() == cl.dir
		case h1Head:
			b := data[min(pos, int64(len(data))):]
			pos += c.moreHead(m, d, cl, b, n-pos)
			isReq = c.reqDir() == cl.dir
		case h1Body, h1ChunkData:
			k := min(p.rest, n-pos)
			pos += k
			p.rest -= k
			p.body += k
			if p.rest == 0 {
				if p.st == h1Body {
					c.msgEnd1(m, d, isReq, cl.t)
				} else {
					p.st, p.rest = h1ChunkEnd, 2
				}
			}
		case h1ChunkEnd:
			if captured <= 0 {
				// Past the capture: a CRLF, as every sender writes it.
				k := min(p.rest, n-pos)
				pos += k
				if p.rest -= k; p.rest == 0 {
					p.chunkLine()
				}
				continue
			}
			switch b := data[pos]; {
			case b == '\n':
				p.chunkLine()
			case b == '\r' && p.rest == 2:
				p.rest = 1
			default:
				c.lose1(m, d, cl.dir, CauseUnparseable, cl.t)
				return n
			}
			pos++
		case h1ChunkSize, h1Trailer:
			if captured <= 0 {
				c.lose1Call(m, d, cl, n)
				return n
			}
			var k int
			var cause Cause
			if p.st == h1ChunkSize {
				k, cause = p.chunkSize(data[pos:])
			} else {
				k, cause = p.trailers(data[pos:], m.cfg.MaxHead)
			}
			pos += int64(k)
			if cause != CauseNone {
				c.lose1(m, d, cl.dir, cause, cl.t)
				return n
			}
			if p.st == h1Start {
				c.msgEnd1(m, d, isReq, cl.t)
			} else if p.st == h1ChunkData && p.rest == 0 {
				p.st, p.rest = h1ChunkEnd, 2 // an empty chunk cannot be: size 0 ends the body
			}
		case h1Close:
			p.body += n - pos
			pos = n
		}
	}
	return pos
}

// chunkLine starts reading a chunk-size line.
func (p *h1parser) chunkLine() {
	p.st, p.size, p.digits, p.ext, p.lineLen = h1ChunkSize, 0, 0, false, 0
}

// chunkSize reads a chunk-size line from b; it returns the bytes taken and
// a cause when the line is malformed.
func (p *h1parser) chunkSize(b []byte) (int, Cause) {
	for i, c := range b {
		p.lineLen++
		if p.lineLen > maxChunkLine {
			return i, CauseUnparseable
		}
		switch {
		case c == '\n':
			if p.digits == 0 {
				return i, CauseUnparseable
			}
			if p.size == 0 {
				p.st, p.lineLen, p.trailer = h1Trailer, 0, 0
			} else {
				p.st, p.rest = h1ChunkData, int64(p.size)
			}
			return i + 1, CauseNone
		case !p.ext && hexValue(c) >= 0:
			if p.digits == 15 {
				return i, CauseUnparseable // beyond 2^60 bytes
			}
			p.size = p.size<<4 | uint64(hexValue(c))
			p.digits++
		default:
			if p.digits == 0 {
				return i, CauseUnparseable
			}
			p.ext = true // BWS, ";ext=…", CR
		}
	}
	return len(b), CauseNone
}

func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// trailers reads the trailer section (fields after a last chunk) through
// its empty line; then the state is h1Start.
func (p *h1parser) trailers(b []byte, limit int) (int, Cause) {
	for i, c := range b {
		if p.trailer++; p.trailer > limit {
			return i, CauseTooLarge
		}
		switch c {
		case '\n':
			if p.lineLen == 0 {
				p.st = h1Start
				return i + 1, CauseNone
			}
			p.lineLen = 0
		case '\r':
		default:
			p.lineLen++
		}
	}
	return len(b), CauseNone
}

// startHead begins a message at b (captured bytes; rem bytes of the call
// from there, off into the call). It returns the bytes taken.
func (c *conn) startHead(m *Matcher, d *direction, cl *call, b []byte, rem, off int64) int64 {
	p := &d.p
	p.startT, p.startSeq, p.startHasSeq = cl.t, cl.seq+uint32(off), cl.hasSeq
	p.startOther, p.startHasOther = cl.other, cl.hasOther
	if classify(b) == kindNone {
		c.lose1(m, d, cl.dir, CauseUnparseable, cl.t)
		return rem
	}
	var h head
	end, ok := parseHead(b, &h)
	switch {
	case !ok:
		c.lose1(m, d, cl.dir, CauseUnparseable, cl.t)
		return rem
	case end > 0:
		c.message1(m, d, cl, &h)
		return int64(end)
	case int64(len(b)) < rem:
		h.truncated = true // the head goes on past the capture
		c.message1(m, d, cl, &h)
		return rem
	}
	_, resume := headEnd(b, 0)
	if resume > 0 && !c.startLine(m, d, cl, b) {
		return rem
	}
	if len(b) >= m.cfg.MaxHead {
		c.lose1(m, d, cl.dir, CauseTooLarge, cl.t)
		return rem
	}
	p.buf = append(m.getBuf(), b...)
	p.scanned = resume
	p.st = h1Head
	return rem
}

// startLine checks the start line of a head that spans calls as soon as
// it is complete, so that bytes that are not HTTP are not buffered and an
// HTTP connection is known as one before its first head ends.
func (c *conn) startLine(m *Matcher, d *direction, cl *call, b []byte) bool {
	var h head
	if !parseStartLine(trimCR(b[:bytes.IndexByte(b, '\n')]), &h) ||
		!h.preface && (!c.takeRole(cl.dir, h.req) || c.state != stHTTP1) {
		c.lose1(m, d, cl.dir, CauseUnparseable, cl.t)
		return false
	}
	return true
}

// moreHead goes on with a head that spans calls.
func (c *conn) moreHead(m *Matcher, d *direction, cl *call, b []byte, rem int64) int64 {
	p := &d.p
	old := len(p.buf)
	take := b[:min(len(b), max(m.cfg.MaxHead-old, 0))]
	p.buf = append(p.buf, take...)
	end, resume := headEnd(p.buf, p.scanned)
	if end <= 0 && p.scanned == 0 && resume > 0 && !c.startLine(m, d, cl, p.buf) {
		return rem
	}
	var h head
	switch {
	case end > 0:
		_, ok := parseHead(p.buf[:end], &h)
		c.bufferedHead(m, d, cl, &h, ok)
		return int64(end - old)
	case len(p.buf) >= m.cfg.MaxHead:
		m.putBuf(p)
		c.lose1(m, d, cl.dir, CauseTooLarge, cl.t)
	case int64(len(b)) < rem:
		_, ok := parseHead(p.buf, &h)
		h.truncated = true
		c.bufferedHead(m, d, cl, &h, ok)
	default:
		p.scanned = resume
	}
	return rem
}

// bufferedHead takes a head parsed from the buffer, which it releases.
func (c *conn) bufferedHead(m *Matcher, d *direction, cl *call, h *head, ok bool) {
	if !ok {
		m.putBuf(&d.p)
		c.lose1(m, d, cl.dir, CauseUnparseable, cl.t)
		return
	}
	c.message1(m, d, cl, h) // copies what it keeps out of the buffer
	m.putBuf(&d.p)
}

// message1 takes a parsed message head.
func (c *conn) message1(m *Matcher, d *direction, cl *call, h *head) {
	d.p.st = h1Start
	switch {
	case h.truncated && (h.method == nil && h.status == 0):
		c.lose1(m, d, cl.dir, cl.cause, cl.t) // not even the start line
	case h.preface:
		c.preface(m, d, cl)
	case h.req:
		c.request1(m, d, h, cl)
	default:
		c.response1(m, d, h, cl)
	}
}

// takeRole settles the role from the first message: who sends requests.
func (c *conn) takeRole(dir Dir, req bool) bool {
	if c.role == 0 {
		if (dir == Sent) == req {
			c.role = RoleClient
		} else {
			c.role = RoleServer
		}
	}
	if c.state == stProbe {
		c.state = stHTTP1
	}
	return (c.reqDir() == dir) == req
}

func (c *conn) request1(m *Matcher, d *direction, h *head, cl *call) {
	p := &d.p
	if !c.takeRole(cl.dir, true) || c.state != stHTTP1 {
		c.lose1(m, d, cl.dir, CauseUnparseable, cl.t)
		return
	}
	if c.q.n >= m.cfg.MaxInFlight {
		m.stats.Lost[CauseEvicted]++
		c.failAll(m, OutcomeLost, CauseEvicted, cl.t)
		c.state = stIgnored
		return
	}
	pd := m.newPending(c, p.startT)
	ex := &pd.ex
	ex.Proto = h.proto
	ex.Start = p.startT
	ex.Seq, ex.HasSeq = p.startSeq, p.startHasSeq
	ex.Method = methodString(h.method)
	ex.Scheme = "http"
	t := splitTarget(h.target)
	ex.Path = m.str(&c.path, t.path)
	if len(t.scheme) > 0 {
		ex.Scheme = strings.ToLower(string(t.scheme))
	}
	authority := h.host
	if t.hasAuth {
		authority = t.authority // an absolute-form target wins over Host (RFC 9112 3.2.2)
	}
	host, port := splitHostPort(authority)
	ex.ServerAddress, ex.ServerPort = m.str(&c.host, host), port
	ex.UserAgent = m.str(&c.ua, h.ua)
	if len(h.traceparent) > 0 {
		parseTraceparent(h.traceparent, ex)
	}
	pd.head = ex.Method == "HEAD"
	pd.connect = ex.Method == "CONNECT"
	pd.upgradeH2C = h.upgradeH2C
	m.requestSeen(pd)
	c.reqNums++
	c.q.push(slot{p: pd, num: c.reqNums, seq: p.startSeq, hasSeq: p.startHasSeq,
		other: p.startOther, hasOther: p.startHasOther, head: pd.head, connect: pd.connect})
	p.num, p.body, p.bodyOK = c.reqNums, 0, true
	switch {
	case h.truncated:
		c.lose1(m, d, cl.dir, cl.cause, cl.t)
	case h.chunked:
		p.chunkLine()
	case h.teOther:
		c.lose1(m, d, cl.dir, CauseUnparseable, cl.t) // a request must end in chunked (RFC 9112 6.3)
	case h.cl > 0:
		// Known now: the response may end before the body has been sent
		// (an early answer, 100-continue refused).
		ex.ReqBodySize = h.cl
		p.st, p.rest = h1Body, h.cl
	default:
		c.msgEnd1(m, d, true, cl.t)
	}
}

func (c *conn) response1(m *Matcher, d *direction, h *head, cl *call) {
	p := &d.p
	if !c.takeRole(cl.dir, false) || c.state != stHTTP1 {
		c.lose1(m, d, cl.dir, CauseUnparseable, cl.t)
		return
	}
	st := h.status
	if st < 200 && st != 101 {
		return // interim (100 Continue, 103 Early Hints): the final response follows
	}
	s := c.q.front()
	if s != nil && p.startHasOther && s.hasSeq && !seqLess(s.seq, p.startOther) {
		// The response was on its way before that request began: it
		// answers one the capture lost.
		s = nil
	}
	p.num, p.body, p.bodyOK = 0, 0, true
	if s == nil {
		m.stats.Lost[CauseUnmatched]++
	} else {
		p.num = s.num
		if s.p != nil {
			s.p.ex.StatusCode = st
		}
	}
	switch {
	case st == 101:
		if s != nil && s.p != nil && s.p.upgradeH2C {
			c.upgradeH2(m, d, cl.t)
			return
		}
		c.msgEnd1(m, d, false, cl.t)
		m.stats.Upgraded++
		c.state = stIgnored
	case s != nil && s.connect && st/100 == 2:
		c.msgEnd1(m, d, false, cl.t)
		m.stats.Upgraded++
		c.state = stIgnored
	case h.truncated:
		c.lose1(m, d, cl.dir, cl.cause, cl.t)
	case s != nil && s.head || st == 204 || st == 304:
		c.msgEnd1(m, d, false, cl.t)
	case h.chunked:
		p.chunkLine()
	case h.cl == 0:
		c.msgEnd1(m, d, false, cl.t)
	case h.cl > 0:
		p.st, p.rest = h1Body, h.cl
	default:
		p.st = h1Close
	}
}

// msgEnd1 ends the current message of d at t: a request's body size is
// known; a final response completes its exchange.
func (c *conn) msgEnd1(m *Matcher, d *direction, isReq bool, t time.Time) {
	p := &d.p
	if isReq {
		if s := c.q.back(); s != nil && s.num == p.num && s.p != nil && p.bodyOK {
			s.p.ex.ReqBodySize = p.body
		}
	} else if s := c.q.front(); s != nil && p.num != 0 && s.num == p.num {
		sl := c.q.pop()
		if sl.p != nil {
			if p.bodyOK {
				sl.p.ex.RespBodySize = p.body
			}
			m.done(sl.p, OutcomeOK, CauseNone, t)
		} else {
			m.stats.LateResponses++
		}
	}
	p.st, p.num, p.body = h1Start, 0, 0
}

// endClose1 ends a response delimited by the connection's close.
func (c *conn) endClose1(m *Matcher, d *direction) {
	if d.h2 == nil && d.p.st == h1Close {
		c.msgEnd1(m, d, false, d.last)
	}
}

// lose1: d's framing is lost. Requests in flight keep their place (their
// responses still come in order). A loss in the response direction reports
// the exchanges whose responses the lost bytes may have held: all, unless
// the bytes lost are a gap of known end and a request began after the
// other end had read (or written) all of them.
func (c *conn) lose1(m *Matcher, d *direction, dir Dir, cause Cause, t time.Time) {
	c.loseUpTo(m, d, dir, cause, t, 0, false)
}

// lose1Call is lose1 for the rest of cl: a gap ends where its bytes end.
func (c *conn) lose1Call(m *Matcher, d *direction, cl *call, n int64) {
	c.loseUpTo(m, d, cl.dir, cl.cause, cl.t, cl.seq+uint32(n), cl.cause == CauseGap && cl.hasSeq)
}

func (c *conn) loseUpTo(m *Matcher, d *direction, dir Dir, cause Cause, t time.Time, end uint32, hasEnd bool) {
	p := &d.p
	m.putBuf(p)
	p.st = h1Lost
	if c.state == stProbe {
		c.probe(m)
		return
	}
	m.stats.Lost[cause]++
	if c.reqDir() == dir {
		if s := c.q.back(); s != nil && s.num == p.num && s.p != nil {
			s.p.ex.ReqBodySize = -1
		}
		p.lossWait = true
	} else {
		for c.q.n > 0 {
			if s := c.q.front(); hasEnd && s.hasOther && !seqLess(s.other, end) {
				break // sent after the lost bytes were read: its response is to come
			}
			if s := c.q.pop(); s.p != nil {
				m.done(s.p, OutcomeLost, cause, t)
			}
		}
	}
	p.num = 0
}

// probe counts a call of a connection whose protocol is not known yet.
func (c *conn) probe(m *Matcher) {
	if c.probes++; c.probes >= maxProbes {
		m.stats.NotHTTP++
		c.state = stIgnored
	}
}

// resync says whether a call starting with data starts a message, on a
// direction whose framing is lost or not known yet.
func (c *conn) resync(m *Matcher, d *direction, cl *call, data []byte, n int64) bool {
	k := classify(data)
	if c.state == stProbe {
		switch {
		case k != kindNone:
			return true
		case isTLS(data):
			m.stats.NotHTTP++
			c.state = stIgnored
		case isServerPreface(data):
			c.startH2(m, cl.dir)
		case looksLikeFrames(data, n):
			m.stats.Lost[CauseMidstream]++
			c.state = stIgnored
		default:
			c.probe(m)
		}
		return false
	}
	if c.reqDir() != cl.dir {
		return k == kindResponse || k == kindMaybe
	}
	// After a loss, without OtherSeq to tell responses to lost requests
	// from those to new ones, wait until nothing is queued.
	if k != kindRequest && k != kindMaybe || d.p.lossWait && !cl.hasOther && c.q.n > 0 {
		return false
	}
	d.p.lossWait = false
	return true
}

// isTLS: a TLS record header (handshake, alert, change cipher spec,
// application data).
func isTLS(b []byte) bool {
	return len(b) >= 3 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 3 && b[2] <= 4
}

// progress1 keeps the exchanges a call moved from timing out.
func (c *conn) progress1(m *Matcher, t time.Time) {
	if s := c.q.front(); s != nil && s.p != nil {
		m.touch(s.p, t)
	}
	if c.q.n > 1 {
		if s := c.q.back(); s.p != nil {
			m.touch(s.p, t)
		}
	}
}
