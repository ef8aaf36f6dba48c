package engine

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// HTTPConfig drives the http probe and the HTTP matcher.
type HTTPConfig struct {
	Enabled bool
	// CaptureBytes is how many bytes of each socket call are copied.
	CaptureBytes int
	// MaxConns bounds the connections tracked, in the kernel and in the
	// matcher.
	MaxConns int
	// RequestTimeout: an exchange none of whose bytes moved this long is
	// reported timed out.
	RequestTimeout time.Duration
	// MaxBuffered bounds the exchanges held between two reports; beyond,
	// they are dropped and counted (Stats.HTTPDropped).
	MaxBuffered int
}

// HTTPStats is the span path's self-telemetry.
type HTTPStats struct {
	httpmatch.Stats
	InFlight int    // requests seen and not yet reported
	Conns    int    // connections the matcher tracks
	Dropped  uint64 // exchanges dropped: the buffer was full (the consumer is slow)
	Ignored  uint64 // connections the kernel was told to stop copying (not HTTP)
}

// httpHandler is what the http probe's reader calls (httpprobe.Handler).
type httpHandler interface {
	Open(c *observed.HTTPConn)
	Chunk(ch *httpmatch.Chunk)
	Close(cookie uint64, at time.Time)
	Tick(now time.Time)
}

// httpSource streams captured socket calls until ctx ends or it is closed,
// and stops copying a connection when told.
type httpSource interface {
	probe.Probe
	Run(ctx context.Context, boot time.Time, h httpHandler) error
	Ignore(cookie uint64) error
	SkipBody(cookie uint64, sent bool, from, to uint32) error
}

// minSkip is the least body left to come for which the kernel is told to
// stop copying it (httpprobe SkipBody). Telling costs two system calls
// (some 3-5 µs); a skipped call saves ~260 ns in the kernel and the record
// here. But the kernel runs ahead: the reader takes the ring when it is a
// quarter full, some 250 records of a long body, 2-16 MiB of it at 8-64 KiB
// reads, and by the time a head is parsed that much of its body has been
// copied already. Under 4 MiB telling rarely pays (a 256 KiB page served
// under load: more collector CPU, no call skipped).
const minSkip = 4 << 20

// reportBatch is how many exchanges are reported at once at most when
// they come faster than one report a second: the spans of a report are
// live together, so smaller reports keep the collector's heap small.
const reportBatch = 8192

// expireEvery is how often the matcher is asked for timed-out exchanges.
const expireEvery = 250 * time.Millisecond

// httpPath is the span path beside the DNS one: the probe's reader feeds
// the matcher through it, the flush loop takes what it emitted.
type httpPath struct {
	src httpSource
	cfg HTTPConfig
	log *zap.Logger

	// full is signalled when half the buffer (at most reportBatch) is
	// taken: the loop reports at once instead of at the next tick.
	full chan struct{}

	mu         sync.Mutex
	m          *httpmatch.Matcher
	conns      map[uint64]*httpConn
	out        []observed.HTTPExchange // emitted since the last take
	spare      []observed.HTTPExchange // a taken buffer back from the sink, for the next take
	dropped    uint64
	ignored    uint64
	lastExpire time.Time
	// protos are the connections seen carrying HTTP, for their flow
	// records: 0 while open, else the flush generation of their close.
	protos map[uint64]uint64
	gen    uint64
}

type httpConn struct {
	info    observed.HTTPConn
	ignored bool      // the kernel was told
	skipTo  [2]uint32 // end of the body range the kernel was last told, by direction
}

func newHTTPPath(src httpSource, cfg HTTPConfig, log *zap.Logger) (*httpPath, error) {
	h := &httpPath{src: src, cfg: cfg, log: log, conns: map[uint64]*httpConn{}, protos: map[uint64]uint64{}, gen: 1,
		full: make(chan struct{}, 1)}
	m, err := httpmatch.New(httpmatch.Config{MaxConns: cfg.MaxConns, RequestTimeout: cfg.RequestTimeout}, h.emit)
	if err != nil {
		return nil, err
	}
	h.m = m
	return h, nil
}

func (h *httpPath) Open(c *observed.HTTPConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns) >= h.cfg.MaxConns {
		// Close notices lost to a full ring leave entries behind: drop
		// one (its exchanges lose their addresses, nothing else).
		for k := range h.conns {
			delete(h.conns, k)
			break
		}
	}
	h.conns[c.Cookie] = &httpConn{info: *c}
}

func (h *httpPath) Chunk(ch *httpmatch.Chunk) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m.Add(ch) {
		if len(ch.Data) > 0 { // bytes seen: a body may have begun
			h.skipBody(ch)
		}
		return
	}
	c := h.conns[ch.Conn]
	if c == nil {
		c = &httpConn{info: observed.HTTPConn{Cookie: ch.Conn}}
		h.conns[ch.Conn] = c
	}
	if c.ignored {
		return // chunks already on their way when the kernel was told
	}
	c.ignored = true
	h.ignored++
	if err := h.src.Ignore(ch.Conn); err != nil {
		h.log.Debug("http: cannot tell the kernel to ignore a connection", zap.Error(err))
	}
}

// skipBody tells the kernel about a long body the chunk began or went on
// with, once per range.
func (h *httpPath) skipBody(ch *httpmatch.Chunk) {
	from, to, ok := h.m.Body(ch.Conn, ch.Dir)
	if !ok || to-from < minSkip {
		return
	}
	c := h.conns[ch.Conn]
	if c == nil {
		return // no OPEN seen: the kernel does not track it either
	}
	i := 0
	if ch.Dir == httpmatch.Received {
		i = 1
	}
	if c.skipTo[i] == to {
		return
	}
	c.skipTo[i] = to
	if err := h.src.SkipBody(ch.Conn, ch.Dir == httpmatch.Sent, from, to); err != nil {
		h.log.Debug("http: cannot tell the kernel to skip a body", zap.Error(err))
	}
}

func (h *httpPath) Close(cookie uint64, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m.Close(cookie, at)
	delete(h.conns, cookie)
	if _, ok := h.protos[cookie]; ok {
		h.protos[cookie] = h.gen
	}
}

func (h *httpPath) Tick(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Sub(h.lastExpire) >= expireEvery {
		h.lastExpire = now
		h.m.Expire(now)
	}
}

// emit receives each exchange from the matcher (under h.mu).
func (h *httpPath) emit(ex *httpmatch.Exchange) {
	if _, ok := h.protos[ex.Conn]; !ok && ex.Method != "" {
		h.protos[ex.Conn] = 0
	}
	if ex.Outcome == httpmatch.OutcomeLost {
		return // counted in Stats.Lost by its cause; what is left of it is not a span
	}
	if len(h.out) >= h.cfg.MaxBuffered {
		h.dropped++
		return
	}
	// Filled in place: building the value and appending it copies the
	// exchange twice, with write barriers while the GC marks.
	h.out = slices.Grow(h.out, 1)[:len(h.out)+1]
	x := &h.out[len(h.out)-1]
	x.Exchange = *ex
	x.Local, x.Backend = observed.Workload{}, netip.AddrPort{} // takeHTTP's
	if c := h.conns[ex.Conn]; c != nil {
		x.CgroupID, x.Comm = c.info.CgroupID, c.info.Comm
		x.LocalAddr, x.RemoteAddr = c.info.Local, c.info.Remote
	} else {
		x.CgroupID, x.Comm = 0, ""
		x.LocalAddr, x.RemoteAddr = netip.AddrPort{}, netip.AddrPort{}
	}
	if len(h.out) == min(h.cfg.MaxBuffered/2, reportBatch) {
		select {
		case h.full <- struct{}{}:
		default:
		}
	}
}

// take returns the exchanges emitted since the last take.
func (h *httpPath) take() []observed.HTTPExchange {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.out
	if h.spare != nil {
		h.out, h.spare = h.spare, nil
	} else {
		h.out = make([]observed.HTTPExchange, 0, min(len(out), h.cfg.MaxBuffered))
	}
	return out
}

// recycle takes back what take returned once the sink is done with it: a
// busy node then fills the same memory every report instead of a fresh
// buffer of tens of megabytes. A buffer mostly unused is let go, so a
// burst does not pin its memory. It is not cleared: emit overwrites every
// field of an entry before it is read again, and clearing megabytes of
// pointers per report costs a write barrier per pointer while the GC marks
// (which it mostly does on a busy node); what the stale entries keep
// alive until then is one report's strings, most of them shared.
func (h *httpPath) recycle(xs []observed.HTTPExchange) {
	if cap(xs) == 0 || len(xs) < cap(xs)/4 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if cap(xs) > cap(h.spare) {
		h.spare = xs[:0]
	}
}

// tagFlows sets network.protocol.name on the flows of HTTP connections,
// once per flush: those open and those closed since the flush before this
// one (the tcp probe may report a close one flush after the HTTP close);
// older ones are forgotten, their final flow record made.
func (h *httpPath) tagFlows(flows []observed.Flow) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, g := range h.protos {
		if g != 0 && g+1 < h.gen {
			delete(h.protos, k)
		}
	}
	if len(h.protos) > 4*h.cfg.MaxConns {
		clear(h.protos) // close notices lost: start over rather than grow
	}
	for i := range flows {
		if _, ok := h.protos[flows[i].Cookie]; ok {
			flows[i].Protocol = semconv.ProtocolHTTP
		}
	}
	h.gen++
}

func (h *httpPath) stats() HTTPStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HTTPStats{Stats: h.m.Stats(), InFlight: h.m.InFlight(), Conns: h.m.Conns(), Dropped: h.dropped, Ignored: h.ignored}
}
