package httpprobe

import (
	"context"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// tap drops what the probe reports but where each direction of each
// connection has got to, for SkipBody.
type tap struct {
	mu  sync.Mutex
	end map[[2]uint64]uint32 // by cookie and Dir: Seq after the last call
}

func (*tap) Open(*observed.HTTPConn) {}
func (t *tap) Chunk(ch *httpmatch.Chunk) {
	t.mu.Lock()
	t.end[[2]uint64{ch.Conn, uint64(ch.Dir)}] = ch.Seq + ch.Size
	t.mu.Unlock()
}
func (*tap) Close(uint64, time.Time) {}
func (*tap) Tick(time.Time)          {}

// skipAll tells the probe that everything fd's direction moves from now
// on is body.
func (t *tap) skipAll(b *testing.B, p *Probe, fd int, dir httpmatch.Dir) {
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		t.mu.Lock()
		end, ok := t.end[[2]uint64{cookie, uint64(dir)}]
		t.mu.Unlock()
		if ok {
			if err := p.SkipBody(cookie, dir == httpmatch.Sent, end, end+1<<30); err != nil {
				b.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("no call of the connection reported")
		}
	}
}

// BenchmarkHTTPProbeKernel reports the in-kernel cost from BPF run-time
// statistics (the enter and exit programs of each call, summed):
//
//   - socket: a request/response round on a loopback TCP connection (the
//     client writes 120 bytes, the server reads them and writes 600, the
//     client reads them): socket-ns/call per captured call, of which
//     socket-exit-ns/call in the exit program (the copy and the record);
//   - body, body-skipped: 16 KiB written and read in one call each, as a
//     long body moves; ns/call per captured call, without and with the
//     connection's bytes declared body (SkipBody);
//   - eagain: a non-blocking read of a connection with nothing to read
//     (what an event loop does after each batch): eagain-ns/call;
//   - file: 64-byte writes to /dev/null and reads from /dev/zero: file-ns/call per call, the
//     probe's programs finding no socket behind the fd; file-wall-ns/call is
//     the whole call as the process sees it, probe attached (compare with
//     the same figure of BenchmarkFileCallsBare).
//
// The statistics are the programs' over the whole machine: run it quiet.
func BenchmarkHTTPProbeKernel(b *testing.B) {
	testkit.RequireRoot(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer stats.Close()
	p, err := Load(Config{CaptureBytes: 4096, MaxConns: 16384})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.Attach(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t := &tap{end: map[[2]uint64]uint32{}}
	go p.Run(ctx, time.Now(), t)

	b.Run("socket", func(b *testing.B) {
		round := tcpRound(b)
		b.ResetTimer()
		s := sample(b, p, b.N, round)
		b.StopTimer()
		if s.captured < uint64(4*b.N) {
			b.Fatalf("%d calls captured for %d rounds of 4", s.captured, b.N)
		}
		b.ReportMetric(float64(s.ns)/float64(s.captured), "socket-ns/call")
		b.ReportMetric(float64(s.exitNs)/float64(s.captured), "socket-exit-ns/call")
	})
	for _, skip := range []bool{false, true} {
		name := "body"
		if skip {
			name = "body-skipped"
		}
		b.Run(name, func(b *testing.B) {
			round, cfd, sfd := bodyRound(b)
			round()
			if skip {
				t.skipAll(b, p, cfd, httpmatch.Sent)
				t.skipAll(b, p, sfd, httpmatch.Received)
			}
			b.ResetTimer()
			s := sample(b, p, b.N, round)
			b.StopTimer()
			b.ReportMetric(float64(s.ns)/float64(s.captured), "ns/call")
		})
	}
	b.Run("eagain", func(b *testing.B) {
		round := eagainRound(b)
		b.ResetTimer()
		s := sample(b, p, b.N, round)
		b.StopTimer()
		b.ReportMetric(float64(s.ns)/float64(s.runs/2), "eagain-ns/call")
	})
	b.Run("file", func(b *testing.B) {
		round := fileRound(b)
		b.ResetTimer()
		start := time.Now()
		s := sample(b, p, b.N, round)
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(s.ns)/float64(s.runs/2), "file-ns/call")
		b.ReportMetric(float64(elapsed.Nanoseconds())/float64(2*b.N), "file-wall-ns/call")
	})
}

// BenchmarkFileCallsBare is the file round of BenchmarkHTTPProbeKernel
// without the probe: the wall time of a call to compare with.
func BenchmarkFileCallsBare(b *testing.B) {
	round := fileRound(b)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		round()
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(2*b.N), "file-wall-ns/call")
}

// tcpRound is one request/response on a loopback connection, raw calls.
func tcpRound(b *testing.B) func() {
	c, s := loopbackPair(b)
	cfd, sfd := rawFD(b, c), rawFD(b, s)
	req, resp, buf := make([]byte, 120), make([]byte, 600), make([]byte, 1024)
	return func() {
		unix.Write(cfd, req)
		readN(b, sfd, buf, len(req))
		unix.Write(sfd, resp)
		readN(b, cfd, buf, len(resp))
	}
}

// bodyRound is a 16 KiB write and its read on a loopback connection: the
// calls of a body.
func bodyRound(b *testing.B) (round func(), cfd, sfd int) {
	c, s := loopbackPair(b)
	cfd, sfd = rawFD(b, c), rawFD(b, s)
	out, in := make([]byte, 16<<10), make([]byte, 16<<10)
	return func() {
		unix.Write(cfd, out)
		readN(b, sfd, in, len(out))
	}, cfd, sfd
}

// readN reads n bytes from fd into buf, as many calls as it takes.
func readN(b *testing.B, fd int, buf []byte, n int) {
	for got := 0; got < n; {
		k, err := unix.Read(fd, buf)
		if err != nil && err != unix.EAGAIN {
			b.Fatal(err)
		}
		got += max(k, 0)
	}
}

// eagainRound is a read of an idle connection that returns EAGAIN.
func eagainRound(b *testing.B) func() {
	c, s := loopbackPair(b)
	fd := rawFD(b, s)
	if err := unix.SetNonblock(fd, true); err != nil {
		b.Fatal(err)
	}
	// One call with data makes the connection known (OPEN).
	c.Write([]byte("x"))
	buf := make([]byte, 1024)
	for {
		if n, _ := unix.Read(fd, buf); n > 0 {
			break
		}
	}
	return func() {
		if _, err := unix.Read(fd, buf); err != unix.EAGAIN {
			b.Fatalf("read of an idle connection: %v, want EAGAIN", err)
		}
	}
}

// loopbackPair is a connected client and server on 127.0.0.1.
func loopbackPair(b *testing.B) (c, s *net.TCPConn) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	ss, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close(); ss.Close() })
	return cc.(*net.TCPConn), ss.(*net.TCPConn)
}

func rawFD(b *testing.B, c *net.TCPConn) int {
	f, err := c.File() // a blocking duplicate
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	fd := int(f.Fd())
	if err := unix.SetNonblock(fd, false); err != nil {
		b.Fatal(err)
	}
	return fd
}

// fileRound writes 64 bytes to /dev/null and reads 64 from /dev/zero:
// hooked calls on fds that are not sockets.
func fileRound(b *testing.B) func() {
	null, err := os.OpenFile("/dev/null", os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	zero, err := os.Open("/dev/zero")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { null.Close(); zero.Close() })
	wfd, rfd := int(null.Fd()), int(zero.Fd())
	buf := make([]byte, 64)
	return func() {
		unix.Write(wfd, buf)
		unix.Read(rfd, buf)
	}
}

type runStats struct{ ns, exitNs, runs, captured uint64 }

// sample runs round n times and returns the increase of the programs'
// run-time statistics and of the captured calls.
func sample(b *testing.B, p *Probe, n int, round func()) runStats {
	round()
	snap := func() (s runStats) {
		for name, prog := range p.programs() {
			st, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			s.ns += uint64(st.Runtime)
			s.runs += st.RunCount
			if name == "exit" {
				s.exitNs += uint64(st.Runtime)
			}
		}
		c, err := p.Counters()
		if err != nil {
			b.Fatal(err)
		}
		s.captured = c.Events
		return s
	}
	s0 := snap()
	for range n {
		round()
	}
	s1 := snap()
	return runStats{s1.ns - s0.ns, s1.exitNs - s0.exitNs, s1.runs - s0.runs, s1.captured - s0.captured}
}
