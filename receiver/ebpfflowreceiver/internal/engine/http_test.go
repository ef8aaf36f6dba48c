package engine

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// fakeHTTP replays a script of calls, then blocks until ctx ends.
type fakeHTTP struct {
	fakeBase
	script  func(h httpHandler)
	fed     chan struct{}
	mu      sync.Mutex
	ignored []uint64
	skips   []skip
}

type skip struct {
	conn     uint64
	sent     bool
	from, to uint32
}

func (f *fakeHTTP) Run(ctx context.Context, _ time.Time, h httpHandler) error {
	f.script(h)
	close(f.fed)
	<-ctx.Done()
	return nil
}

func (f *fakeHTTP) SkipBody(conn uint64, sent bool, from, to uint32) error {
	f.mu.Lock()
	f.skips = append(f.skips, skip{conn, sent, from, to})
	f.mu.Unlock()
	return nil
}

func (f *fakeHTTP) Ignore(cookie uint64) error {
	f.mu.Lock()
	f.ignored = append(f.ignored, cookie)
	f.mu.Unlock()
	return nil
}

// TestHTTPExchangesReported: the reader feeds the matcher; exchanges come
// out between flushes (partial reports) with their connection and
// workload, a connection that is not HTTP is ignored in the kernel, and
// the flow of an HTTP connection is tagged with its protocol until the
// flush after its close.
func TestHTTPExchangesReported(t *testing.T) {
	var mu sync.Mutex
	var reports []observed.Report
	cfg := Config{FlushInterval: 10 * time.Second, Flows: FlowsConfig{Enabled: true},
		HTTP: HTTPConfig{Enabled: true, CaptureBytes: 4096, MaxConns: 16, RequestTimeout: time.Minute, MaxBuffered: 1}}
	e := New(cfg, nil, func(r observed.Report) {
		mu.Lock()
		r.HTTP = slices.Clone(r.HTTP) // the engine reuses its memory
		reports = append(reports, r)
		mu.Unlock()
	})
	withFakes(e, &journal{})
	now := time.Now()
	const httpConn, tlsConn = 5, 6
	req := []byte("GET /x?secret=1 HTTP/1.1\r\nHost: svc:8080\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	chunk := func(conn uint64, dir httpmatch.Dir, at time.Duration, seq, other uint32, data []byte) *httpmatch.Chunk {
		return &httpmatch.Chunk{Conn: conn, PID: 9, Dir: dir, Time: now.Add(at), Seq: seq, HasSeq: true,
			OtherSeq: other, HasOtherSeq: true, Size: uint32(len(data)), Data: data}
	}
	src := &fakeHTTP{fakeBase: fakeBase{name: ProbeHTTP, j: &journal{}}, fed: make(chan struct{}), script: func(h httpHandler) {
		h.Open(&observed.HTTPConn{Cookie: httpConn, PID: 9, Comm: "curl", CgroupID: 42,
			Local: netip.MustParseAddrPort("10.201.0.1:40000"), Remote: netip.MustParseAddrPort("10.201.0.2:8080")})
		h.Chunk(chunk(httpConn, httpmatch.Sent, 0, 100, 500, req))
		h.Chunk(chunk(httpConn, httpmatch.Received, time.Millisecond, 500, 100+uint32(len(req)), resp))
		// A second exchange on the connection: beyond MaxBuffered, dropped and counted.
		h.Chunk(chunk(httpConn, httpmatch.Sent, 2*time.Millisecond, 100+uint32(len(req)), 500+uint32(len(resp)), req))
		h.Chunk(chunk(httpConn, httpmatch.Received, 3*time.Millisecond, 500+uint32(len(resp)), 100+2*uint32(len(req)), resp))
		// A TLS ClientHello: not HTTP, ignored in the kernel once.
		hello := []byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03}
		h.Open(&observed.HTTPConn{Cookie: tlsConn, PID: 9})
		h.Chunk(chunk(tlsConn, httpmatch.Sent, 0, 1, 1, hello))
		h.Chunk(chunk(tlsConn, httpmatch.Sent, time.Millisecond, 1+uint32(len(hello)), 1, hello))
		h.Close(httpConn, now.Add(4*time.Millisecond))
		h.Tick(now.Add(5 * time.Millisecond))
	}}
	h, err := newHTTPPath(src, cfg.HTTP, e.log)
	if err != nil {
		t.Fatal(err)
	}
	e.http = h
	e.slots = append(e.slots, &slot{name: ProbeHTTP, p: src})
	e.identity = func(cg uint64, pid uint32, comm string, a netip.Addr) observed.Workload {
		return observed.Workload{CgroupID: cg, PID: pid, Executable: comm, PodIP: a}
	}
	e.run()
	<-src.fed
	e.flushSpans(now.Add(time.Second))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 1 || !reports[0].Partial || len(reports[0].HTTP) != 1 {
		t.Fatalf("reports %+v", reports)
	}
	x := reports[0].HTTP[0]
	if x.Method != "GET" || x.Path != "/x" || x.StatusCode != 200 || x.Role != httpmatch.RoleClient ||
		x.ServerAddress != "svc" || x.ServerPort != 8080 || x.End.Sub(x.Start) != time.Millisecond {
		t.Errorf("exchange %+v", x.Exchange)
	}
	if x.LocalAddr.Port() != 40000 || x.RemoteAddr.Port() != 8080 || x.Local.CgroupID != 42 || x.Local.Executable != "curl" || x.Local.PodIP.String() != "10.201.0.1" {
		t.Errorf("connection and workload %+v", x)
	}
	st := e.Stats().HTTP
	if st.Dropped != 1 || st.Ignored != 1 || st.Outcomes[httpmatch.OutcomeOK] != 2 {
		t.Errorf("stats %+v", st)
	}
	if len(src.ignored) != 1 || src.ignored[0] != tlsConn {
		t.Errorf("ignored %v, want [%d]", src.ignored, tlsConn)
	}

	// The flow of the HTTP connection: tagged at this flush and the next
	// (its final record may come then), forgotten after.
	for i, want := range []string{semconv.ProtocolHTTP, semconv.ProtocolHTTP, ""} {
		flows := []observed.Flow{{Cookie: httpConn}, {Cookie: tlsConn}}
		h.tagFlows(flows)
		if flows[0].Protocol != want || flows[1].Protocol != "" {
			t.Errorf("flush %d: protocols %q %q, want %q and none", i, flows[0].Protocol, flows[1].Protocol, want)
		}
	}
}

// TestHTTPSkipBody: the kernel is told once about a body long enough to
// be worth it, in its direction, from the byte after those seen; not
// about short ones.
func TestHTTPSkipBody(t *testing.T) {
	src := &fakeHTTP{}
	h, err := newHTTPPath(src, HTTPConfig{Enabled: true, CaptureBytes: 4096, MaxConns: 16, RequestTimeout: time.Minute, MaxBuffered: 16}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var seq [3]uint32 // by Dir
	seq[httpmatch.Sent], seq[httpmatch.Received] = 100, 500
	call := func(dir httpmatch.Dir, size int, data string) {
		h.Chunk(&httpmatch.Chunk{Conn: 5, PID: 9, Dir: dir, Time: now, Seq: seq[dir], HasSeq: true,
			Size: uint32(size), Data: []byte(data)})
		seq[dir] += uint32(size)
	}
	h.Open(&observed.HTTPConn{Cookie: 5, PID: 9})
	req := "GET /big HTTP/1.1\r\nHost: a\r\n\r\n"
	call(httpmatch.Sent, len(req), req)
	head := "HTTP/1.1 200 OK\r\nContent-Length: 8000000\r\n\r\n"
	call(httpmatch.Received, len(head)+100, head+strings.Repeat("x", 100))
	want := []skip{{5, false, seq[httpmatch.Received], seq[httpmatch.Received] + 8000000 - 100}}
	call(httpmatch.Received, 8192, strings.Repeat("x", 4096)) // copied before the kernel knew
	call(httpmatch.Received, 8192, "")                        // skipped
	call(httpmatch.Received, 8000000-100-2*8192, "")
	call(httpmatch.Sent, len(req), req)
	small := "HTTP/1.1 200 OK\r\nContent-Length: 4000000\r\n\r\n"
	call(httpmatch.Received, len(small), small)
	if !slices.Equal(src.skips, want) {
		t.Errorf("SkipBody calls %+v, want %+v", src.skips, want)
	}
	if st := h.m.Stats(); st.Requests != 2 || st.Outcomes[httpmatch.OutcomeOK] != 1 {
		t.Errorf("matcher stats %+v", st)
	}
}

// BenchmarkHTTPPath is the engine's share of an HTTP request seen at both
// ends on the node (wrk and nginx on 4 keep-alive connections): the
// reader's four calls through the matcher, the exchanges buffered, taken
// with their workloads resolved, and the buffer recycled, a report per
// reportBatch exchanges. One op is one request (two exchanges).
func BenchmarkHTTPPath(b *testing.B) {
	const conns = 4
	req := []byte("GET /index.html HTTP/1.1\r\nHost: 10.213.0.10:8080\r\n\r\n")
	resp := append([]byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 22 Nov 2026 10:00:00 GMT\r\n"+
		"Content-Type: text/html\r\nContent-Length: 615\r\nLast-Modified: Sat, 22 Nov 2026 09:00:00 GMT\r\n"+
		"Connection: keep-alive\r\nETag: \"6740-267\"\r\nAccept-Ranges: bytes\r\n\r\n"), make([]byte, 615)...)
	cfg := HTTPConfig{Enabled: true, CaptureBytes: 4096, MaxConns: 1024, RequestTimeout: time.Minute, MaxBuffered: 65536}
	e := New(Config{FlushInterval: 10 * time.Second, HTTP: cfg}, nil, func(observed.Report) {})
	src := &fakeHTTP{fakeBase: fakeBase{name: ProbeHTTP, j: &journal{}}}
	h, err := newHTTPPath(src, cfg, e.log)
	if err != nil {
		b.Fatal(err)
	}
	e.http = h
	e.identity = func(cg uint64, pid uint32, comm string, a netip.Addr) observed.Workload {
		return observed.Workload{CgroupID: cg, PID: pid, Executable: comm, PodIP: a, Service: comm}
	}
	srv := netip.MustParseAddrPort("10.213.0.10:8080")
	var cseq, sseq [conns]uint32
	for c := range conns {
		cli := netip.AddrPortFrom(netip.MustParseAddr("10.213.0.11"), uint16(40000+c))
		h.Open(&observed.HTTPConn{Cookie: uint64(100 + c), PID: 7, Comm: "wrk", CgroupID: 7, Local: cli, Remote: srv})
		h.Open(&observed.HTTPConn{Cookie: uint64(200 + c), PID: 8, Comm: "nginx", CgroupID: 8, Local: srv, Remote: cli})
		cseq[c], sseq[c] = uint32(c)<<20, uint32(c)<<24
	}
	now := time.Now()
	var ch httpmatch.Chunk
	call := func(conn uint64, pid uint32, dir httpmatch.Dir, seq, other uint32, data []byte) {
		ch = httpmatch.Chunk{Conn: conn, PID: pid, Dir: dir, Time: now, Seq: seq, HasSeq: true,
			OtherSeq: other, HasOtherSeq: true, Size: uint32(len(data)), Data: data}
		h.Chunk(&ch)
	}
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		c := n % conns
		now = now.Add(time.Microsecond)
		call(uint64(100+c), 7, httpmatch.Sent, cseq[c], sseq[c], req)
		call(uint64(200+c), 8, httpmatch.Received, cseq[c], sseq[c], req)
		cseq[c] += uint32(len(req))
		call(uint64(200+c), 8, httpmatch.Sent, sseq[c], cseq[c], resp)
		call(uint64(100+c), 7, httpmatch.Received, sseq[c], cseq[c], resp)
		sseq[c] += uint32(len(resp))
		if n++; n%(reportBatch/2) == 0 {
			xs := e.takeHTTP()
			if len(xs) != reportBatch {
				b.Fatalf("%d exchanges taken, want %d", len(xs), reportBatch)
			}
			h.recycle(xs)
		}
	}
}
