package httpmatch

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for zero Config fields.
const (
	DefaultMaxConns       = 16384
	DefaultMaxInFlight    = 128
	DefaultMaxPending     = 65536
	DefaultMaxHead        = 16 << 10
	DefaultMaxHeaderTable = 64 << 10
	DefaultRequestTimeout = 2 * time.Minute
	DefaultIdleTimeout    = time.Hour
	DefaultHoldWait       = 200 * time.Millisecond
)

// Config bounds the matcher.
type Config struct {
	// MaxConns bounds the connections tracked; beyond it the least
	// recently active one is forgotten (its exchanges in flight are
	// reported lost, CauseEvicted).
	MaxConns int
	// MaxInFlight bounds the exchanges in flight on one connection: an
	// HTTP/2 stream beyond it evicts the oldest; an HTTP/1 request beyond
	// it (pipelined that deep, or answers lost) gives the connection up.
	// Either way counted, CauseEvicted.
	MaxInFlight int
	// MaxPending bounds the exchanges in flight over all connections; the
	// oldest is reported lost (CauseEvicted) beyond it.
	MaxPending int
	// MaxHead bounds one HTTP/1 message head (start line and fields) and
	// one HTTP/2 header field; longer ones are skipped (CauseTooLarge).
	MaxHead int
	// MaxHeaderTable bounds each HPACK dynamic table; a peer that sizes it
	// larger is not decoded (CauseHPACKDesync).
	MaxHeaderTable int
	// RequestTimeout: an exchange none of whose bytes moved for this long
	// is reported with OutcomeTimeout.
	RequestTimeout time.Duration
	// IdleTimeout: a connection without chunks for this long is forgotten,
	// as if closed (Close and ProcessExit are the usual ends; this one is
	// for those whose notices were lost). Long: an HTTP/2 connection
	// forgotten cannot be decoded again (its HPACK state is gone).
	IdleTimeout time.Duration
	// HoldWait bounds how long a chunk is held back waiting for bytes that
	// must be parsed before it (see Chunk.OtherSeq); then it is taken as is
	// and the missing bytes count as a gap.
	HoldWait time.Duration
}

func (cfg *Config) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.MaxConns, DefaultMaxConns)
	def(&cfg.MaxInFlight, DefaultMaxInFlight)
	def(&cfg.MaxPending, DefaultMaxPending)
	def(&cfg.MaxHead, DefaultMaxHead)
	def(&cfg.MaxHeaderTable, DefaultMaxHeaderTable)
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defd(&cfg.RequestTimeout, DefaultRequestTimeout)
	defd(&cfg.IdleTimeout, DefaultIdleTimeout)
	defd(&cfg.HoldWait, DefaultHoldWait)
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxConns", int64(cfg.MaxConns)}, {"MaxInFlight", int64(cfg.MaxInFlight)},
		{"MaxPending", int64(cfg.MaxPending)}, {"MaxHead", int64(cfg.MaxHead)},
		{"MaxHeaderTable", int64(cfg.MaxHeaderTable)}, {"RequestTimeout", int64(cfg.RequestTimeout)},
		{"IdleTimeout", int64(cfg.IdleTimeout)}, {"HoldWait", int64(cfg.HoldWait)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %d", f.name, f.v))
		}
	}
	if cfg.MaxHead > 1<<24 {
		errs = append(errs, fmt.Errorf("MaxHead: at most %d, got %d", 1<<24, cfg.MaxHead))
	}
	return errors.Join(errs...)
}

// Matcher turns chunks into exchanges. Not safe for concurrent use.
type Matcher struct {
	cfg   Config
	emit  func(*Exchange)
	conns map[uint64]*conn
	lru   list[conn] // least recently active first
	pids  map[uint32]*list[conn]
	held  map[*conn]struct{} // connections holding chunks back

	// Exchanges in flight, least recently progressed first.
	flight   list[pending]
	npending int // on the list
	live     int // of them, with their request seen
	free     []*pending
	bufs     [][]byte          // spare head buffers
	shared   map[string]string // strings of requests, shared by connections (see str)

	stats Stats
	last  *conn // of the last chunk taken, for Body
}

// New returns a matcher that calls emit once for every exchange; a bad
// Config value names its field.
func New(cfg Config, emit func(*Exchange)) (*Matcher, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if emit == nil {
		return nil, errors.New("emit: must not be nil")
	}
	return &Matcher{
		cfg:    cfg,
		emit:   emit,
		conns:  make(map[uint64]*conn),
		lru:    list[conn]{at: func(c *conn) *links[conn] { return &c.byUse }},
		pids:   make(map[uint32]*list[conn]),
		held:   make(map[*conn]struct{}),
		shared: make(map[string]string),
		flight: list[pending]{at: func(p *pending) *links[pending] { return &p.links }},
	}, nil
}

// Stats returns the cumulative counters.
func (m *Matcher) Stats() Stats { return m.stats }

// Conns returns the number of connections tracked.
func (m *Matcher) Conns() int { return len(m.conns) }

// InFlight returns the number of requests seen and not yet emitted.
func (m *Matcher) InFlight() int { return m.live }

// Add takes one chunk. It returns false when the connection's data is of
// no further use (not HTTP, switched to another protocol, or no longer
// decodable): the capture may stop copying its bytes until it closes.
func (m *Matcher) Add(ch *Chunk) bool {
	m.stats.Chunks++
	if ch.Dir != Sent && ch.Dir != Received {
		m.stats.Invalid++
		return true
	}
	if uint32(len(ch.Data)) > ch.Size {
		m.stats.Invalid++
		c := *ch
		c.Data = c.Data[:c.Size]
		ch = &c
	}
	c := m.conns[ch.Conn]
	if c == nil {
		c = m.newConn(ch.Conn)
	} else {
		m.lru.remove(c)
	}
	m.lru.pushBack(c)
	m.last = c
	c.last = ch.Time
	if ch.PID != 0 && ch.PID != c.pid {
		m.setPID(c, ch.PID)
	}
	if c.state == stIgnored {
		return false
	}
	m.order(c, ch)
	return c.state != stIgnored
}

// maxBodyRange bounds a range Body reports: half the sequence space, so
// that it is never taken for one behind.
const maxBodyRange = 1 << 30

// Body returns the bytes of conn's direction dir that the HTTP/1 parser,
// as of the chunks taken so far, knows to be body it will not read: the
// sequence numbers [from, to) from the next byte it expects, up to the end
// of a Content-Length body or of the current chunk's data, or (a body
// delimited by the close) as far as maxBodyRange. ok is false when there
// are none: between messages, inside a head or chunk-size line, HTTP/2,
// not HTTP, or Seq unknown. The capture may report calls lying wholly
// inside by their size alone.
func (m *Matcher) Body(conn uint64, dir Dir) (from, to uint32, ok bool) {
	c := m.last // usually asked right after Add
	if c == nil || c.id != conn {
		c = m.conns[conn]
	}
	if c == nil || c.state != stHTTP1 || (dir != Sent && dir != Received) {
		return 0, 0, false
	}
	d := c.dir(dir)
	if !d.hasNext || d.h2 != nil {
		return 0, 0, false
	}
	switch d.p.st {
	case h1Body, h1ChunkData:
		if d.p.rest <= 0 {
			return 0, 0, false
		}
		return d.next, d.next + uint32(min(d.p.rest, maxBodyRange)), true
	case h1Close:
		return d.next, d.next + maxBodyRange, true
	}
	return 0, 0, false
}

// Close reports that the local socket was closed: what it still holds
// is parsed, responses delimited by the close end, and exchanges still in
// flight are reported with OutcomeClosed. The connection is forgotten.
func (m *Matcher) Close(conn uint64, at time.Time) {
	if c := m.conns[conn]; c != nil {
		m.closeConn(c, at)
	}
}

// ProcessExit reports that a process exited: its connections, those whose
// last call was made by it, are closed as by Close.
func (m *Matcher) ProcessExit(pid uint32, at time.Time) {
	for l := m.pids[pid]; l != nil; l = m.pids[pid] {
		m.closeConn(l.head, at)
	}
}

// Expire reports exchanges that timed out by now, takes chunks held
// longer than HoldWait as they are, and forgets connections idle longer
// than IdleTimeout. now is on the clock of Chunk.Time.
func (m *Matcher) Expire(now time.Time) {
	for c := range m.held {
		m.release(c, &now)
	}
	for p := m.flight.head; p != nil && now.Sub(p.last) >= m.cfg.RequestTimeout; p = m.flight.head {
		if p.reqSeen {
			m.stats.Lost[CauseTimeout]++
		} else {
			m.stats.Lost[CauseUnmatched]++ // an HTTP/2 response whose request never came
		}
		m.fail(p, OutcomeTimeout, CauseNone, now)
	}
	for c := m.lru.head; c != nil && now.Sub(c.last) >= m.cfg.IdleTimeout; c = m.lru.head {
		m.release(c, nil)
		m.stats.Lost[CauseTimeout] += uint64(c.inFlight())
		c.failAll(m, OutcomeTimeout, CauseNone, now)
		m.forget(c)
	}
}

func (m *Matcher) newConn(id uint64) *conn {
	if len(m.conns) >= m.cfg.MaxConns {
		m.evictConn(m.lru.head)
	}
	c := &conn{id: id}
	m.conns[id] = c
	m.stats.Conns++
	return c
}

// evictConn forgets a connection at MaxConns.
func (m *Matcher) evictConn(c *conn) {
	if c.state == stHTTP1 || c.state == stHTTP2 {
		m.stats.Lost[CauseEvicted]++
	}
	c.failAll(m, OutcomeLost, CauseEvicted, c.last)
	m.forget(c)
}

func (m *Matcher) closeConn(c *conn, at time.Time) {
	m.release(c, nil)
	if c.state != stIgnored {
		c.closed(m, at)
	}
	c.failAll(m, OutcomeClosed, CauseNone, at)
	m.forget(c)
}

func (m *Matcher) forget(c *conn) {
	if m.last == c {
		m.last = nil
	}
	m.lru.remove(c)
	m.setPID(c, 0)
	delete(m.conns, c.id)
	delete(m.held, c)
	c.held = nil
	for i := range c.dirs {
		m.putBuf(&c.dirs[i].p)
	}
}

// setPID files c under the process that made its last call.
func (m *Matcher) setPID(c *conn, pid uint32) {
	if l := m.pids[c.pid]; l != nil {
		l.remove(c)
		if l.head == nil {
			delete(m.pids, c.pid)
		}
	}
	c.pid = pid
	if pid != 0 {
		l := m.pids[pid]
		if l == nil {
			l = &list[conn]{at: func(c *conn) *links[conn] { return &c.byPID }}
			m.pids[pid] = l
		}
		l.pushBack(c)
	}
}

// pending is an exchange in flight.
type pending struct {
	ex    Exchange
	c     *conn
	gen   uint32    // bumped when recycled: stale references compare it
	last  time.Time // last progress, for RequestTimeout
	links links[pending]
	// reqSeen: the request head was seen (an HTTP/2 response can come
	// first when chunks arrive out of order without OtherSeq).
	reqSeen bool

	// HTTP/1
	head, connect, upgradeH2C bool
	// HTTP/2
	reqEnd, respFinal, respEnd bool
	reqBody, respBody          int64
}

// newPending returns a cleared exchange for c, on the in-flight list,
// evicting the oldest at MaxPending.
func (m *Matcher) newPending(c *conn, t time.Time) *pending {
	if m.npending >= m.cfg.MaxPending && m.flight.head != nil {
		m.stats.Lost[CauseEvicted]++
		m.fail(m.flight.head, OutcomeLost, CauseEvicted, t)
	}
	var p *pending
	if n := len(m.free); n > 0 {
		p = m.free[n-1]
		m.free = m.free[:n-1]
		gen := p.gen
		*p = pending{gen: gen}
	} else {
		p = &pending{}
	}
	p.c = c
	p.ex.Conn, p.ex.PID = c.id, c.pid
	p.ex.Role = c.role
	p.ex.GRPCStatus = -1
	p.ex.ReqBodySize, p.ex.RespBodySize = -1, -1
	p.last = t
	m.npending++
	m.flight.pushBack(p)
	return p
}

// requestSeen counts p's request, which makes p an exchange to emit.
func (m *Matcher) requestSeen(p *pending) {
	if !p.reqSeen {
		p.reqSeen = true
		m.live++
		m.stats.Requests++
	}
}

// touch records progress of p at t.
func (m *Matcher) touch(p *pending, t time.Time) {
	if t.After(p.last) {
		p.last = t
	}
	if m.flight.tail != p {
		m.flight.remove(p)
		m.flight.pushBack(p)
	}
}

// done emits p with outcome o at end, if its request was seen, and
// recycles it.
func (m *Matcher) done(p *pending, o Outcome, cause Cause, end time.Time) {
	m.flight.remove(p)
	m.npending--
	if p.reqSeen {
		m.live--
		p.ex.Outcome, p.ex.Cause = o, cause
		if end.Before(p.ex.Start) {
			end = p.ex.Start // calls completing on two CPUs can be reported a hair apart
		}
		p.ex.End = end
		m.stats.Exchanges++
		m.stats.Outcomes[o]++
		m.emit(&p.ex)
	}
	p.gen++
	p.c = nil
	if len(m.free) < 1024 {
		m.free = append(m.free, p)
	}
}

// fail ends p before its response completed: its connection forgets it.
func (m *Matcher) fail(p *pending, o Outcome, cause Cause, at time.Time) {
	if p.c != nil {
		p.c.forgetPending(p)
	}
	m.done(p, o, cause, at)
}

// getBuf returns a spare head buffer.
func (m *Matcher) getBuf() []byte {
	if n := len(m.bufs); n > 0 {
		b := m.bufs[n-1]
		m.bufs = m.bufs[:n-1]
		return b[:0]
	}
	return make([]byte, 0, 1024)
}

func (m *Matcher) putBuf(p *h1parser) {
	if p.buf != nil && len(m.bufs) < 64 && cap(p.buf) <= m.cfg.MaxHead {
		m.bufs = append(m.bufs, p.buf[:0])
	}
	p.buf = nil
}
