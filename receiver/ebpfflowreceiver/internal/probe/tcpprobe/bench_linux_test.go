package tcpprobe

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// runStats sums the kernel's run-time statistics of programs.
func runStats(b *testing.B, progs []*ebpf.Program) (time.Duration, uint64) {
	b.Helper()
	var rt time.Duration
	var n uint64
	for _, p := range progs {
		s, err := p.Stats()
		if err != nil {
			b.Fatal(err)
		}
		rt += s.Runtime
		n += s.RunCount
	}
	return rt, n
}

// BenchmarkTCPProbeKernel reports the in-kernel cost per tracepoint event
// (kernel.bpf_stats_enabled run time / run count) while each op opens,
// uses and closes one loopback TCP connection (~10 state changes).
func BenchmarkTCPProbeKernel(b *testing.B) {
	testkit.RequireRoot(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer stats.Close()
	p := attached(b) // 4096 sockets: flushed below

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	msg := []byte("ping")

	// Like the engine, forget closed sockets every so often, so the LRU
	// recycles entries instead of evicting live ones.
	boot := testkit.BootTime(b)
	flush := func() {
		samples, err := p.Snapshot(boot)
		if err != nil {
			b.Fatal(err)
		}
		var done []uint64
		for _, s := range samples {
			if !s.ClosedAt.IsZero() {
				done = append(done, s.Cookie)
			}
		}
		if err := p.Delete(done); err != nil {
			b.Fatal(err)
		}
	}
	rt0, n0 := runStats(b, p.programs())
	i := 0
	for b.Loop() {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c.Write(msg)
		c.Close()
		if i++; i%1000 == 0 {
			flush()
		}
	}
	rt1, n1 := runStats(b, p.programs())
	if n1 == n0 {
		b.Fatal("programs never ran")
	}
	b.ReportMetric(float64(rt1-rt0)/float64(n1-n0), "ns/event")
	b.ReportMetric(float64(n1-n0)/float64(b.N), "events/op")
}

// BenchmarkSnapshot reads a map of 10k sockets: user-space decode rate.
func BenchmarkSnapshot(b *testing.B) {
	testkit.RequireRoot(b)
	p, err := Load(Config{MaxSockets: 16384})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const n = 10000
	v := valid()
	for i := range uint64(n) {
		v.Sport = uint16(i)
		if err := p.objs.Socks.Put(i+1, &v); err != nil {
			b.Fatal(err)
		}
	}
	boot := testkit.BootTime(b)
	for b.Loop() {
		s, err := p.Snapshot(boot)
		if err != nil || len(s) != n {
			b.Fatalf("%d samples, %v", len(s), err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}
