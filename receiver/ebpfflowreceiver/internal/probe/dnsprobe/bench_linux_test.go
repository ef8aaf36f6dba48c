package dnsprobe

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/dnsmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// loopResolver is a UDP "resolver" on 127.0.0.1:53 in a fresh namespace
// that answers every query with one A record, and a connected client.
func loopResolver(b *testing.B) (cli net.Conn, q []byte) {
	ns := testkit.NewNetns(b, "ebpfflow-dnsbench")
	var srv net.PacketConn
	var err error
	ns.Do(b, func() {
		if srv, err = net.ListenPacket("udp4", "127.0.0.1:53"); err != nil {
			return
		}
		cli, err = net.Dial("udp4", "127.0.0.1:53")
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close(); cli.Close() })
	qm := dnsmessage.Message{Header: dnsmessage.Header{ID: 1, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("svc.default.svc.cluster.local."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	q, _ = qm.Pack()
	am := qm
	am.Response = true
	am.Answers = []dnsmessage.Resource{{Header: dnsmessage.ResourceHeader{Name: qm.Questions[0].Name, Class: dnsmessage.ClassINET, TTL: 5},
		Body: &dnsmessage.AResource{A: [4]byte{10, 96, 0, 1}}}}
	a, _ := am.Pack()
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			a[0], a[1] = buf[0], buf[1] // the query's id
			srv.WriteTo(a, from)
		}
	}()
	return cli, q
}

// BenchmarkDNSProbeKernel reports the in-kernel cost per packet from BPF
// run-time statistics while a client asks a resolver on loopback:
// dns-ns/packet is the programs' time per captured DNS packet (the query
// out, the answer in, each copied to the ring buffer; the resolver side's
// uncaptured runs are taken out at the other-packet cost), other-ns/packet
// per packet that is not DNS (ports checked, nothing copied), floor-ns the
// statistics' own overhead (an empty program on the same packets).
func BenchmarkDNSProbeKernel(b *testing.B) {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer stats.Close()
	root := testkit.CgroupV2Mount(b)
	p, err := Load(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.Attach(root); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, time.Now(), func(*observed.DNSPacket) {}) // drain
	floor := testkit.NoopCgroupSKB(b, root)

	b.Run("dns", func(b *testing.B) {
		other := sample(b, p, floor, 20000, otherTraffic(b))
		cli, q := loopResolver(b)
		buf := make([]byte, 512)
		b.ResetTimer()
		s := sample(b, p, floor, b.N, func() {
			cli.Write(q)
			cli.Read(buf)
		})
		b.StopTimer()
		uncaptured := float64(s.runs - s.captured)
		b.ReportMetric((float64(s.ns)-uncaptured*other.perRun())/float64(s.captured), "dns-ns/packet")
		b.ReportMetric(s.floorPerRun(), "floor-ns")
	})
	b.Run("other", func(b *testing.B) {
		round := otherTraffic(b)
		b.ResetTimer()
		s := sample(b, p, floor, b.N, round)
		b.StopTimer()
		if s.captured != 0 {
			b.Errorf("%d packets not to or from port 53 captured", s.captured)
		}
		b.ReportMetric(s.perRun(), "other-ns/packet")
		b.ReportMetric(s.floorPerRun(), "floor-ns")
	})
}

// otherTraffic is a UDP exchange on loopback between ports other than 53.
func otherTraffic(b *testing.B) func() {
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	cli, err := net.Dial("udp4", srv.LocalAddr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	buf := make([]byte, 64)
	return func() {
		cli.Write(buf)
		srv.ReadFrom(buf)
	}
}

// runStats are the programs' run-time statistics over some rounds.
type runStats struct {
	ns, runs, captured uint64 // the probe's programs
	floorNs, floorRuns uint64 // the empty programs
}

func (s runStats) perRun() float64      { return float64(s.ns) / float64(s.runs) }
func (s runStats) floorPerRun() float64 { return float64(s.floorNs) / float64(s.floorRuns) }

// sample runs round n times and returns the statistics' increase.
func sample(b *testing.B, p *Probe, floor []*ebpf.Program, n int, round func()) runStats {
	round()
	snap := func() (s runStats) {
		for _, prog := range p.programs() {
			st, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			s.ns += uint64(st.Runtime)
			s.runs += st.RunCount
		}
		for _, prog := range floor {
			st, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			s.floorNs += uint64(st.Runtime)
			s.floorRuns += st.RunCount
		}
		c, err := p.Counters()
		if err != nil {
			b.Fatal(err)
		}
		if c.RingbufFull > 0 {
			b.Fatalf("%d records lost to a full ring buffer", c.RingbufFull)
		}
		s.captured = c.Events
		return s
	}
	s0 := snap()
	for range n {
		round()
	}
	s1 := snap()
	d := runStats{s1.ns - s0.ns, s1.runs - s0.runs, s1.captured - s0.captured, s1.floorNs - s0.floorNs, s1.floorRuns - s0.floorRuns}
	if d.runs == 0 || d.floorRuns == 0 {
		b.Fatal("programs did not run")
	}
	return d
}

// BenchmarkDNSUserSpace is the user-space pipeline's capacity on one core:
// real query/answer records already in the ring buffer are read, decoded
// and matched (dnsmatch), as the engine does. One op = one lookup (two
// records); queries/s is the rate the pipeline keeps up with.
func BenchmarkDNSUserSpace(b *testing.B) {
	m, err := dnsmatch.New(dnsmatch.Config{Timeout: 5 * time.Second, MaxPending: 65536})
	if err != nil {
		b.Fatal(err)
	}
	elapsed := readRecords(b, m.Add, func() { m.Flush(time.Now()) })
	if s := m.Stats(); s.Answers != uint64(b.N) {
		b.Fatalf("%d of %d lookups matched: %+v", s.Answers, b.N, s)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "queries/s")
}

// BenchmarkDNSRead is Run alone: real records read from the ring buffer and
// decoded, handed to a callback that does nothing. One op = one record.
func BenchmarkDNSRead(b *testing.B) {
	b.ReportAllocs()
	n := 0
	elapsed := readRecords(b, func(*observed.DNSPacket) { n++ }, func() {})
	if n != b.N {
		b.Fatalf("%d of %d records read", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
}

// readRecords fills the ring with real lookups while the timer is stopped,
// then times Run handing their b.N records (lookups for
// BenchmarkDNSUserSpace, which counts two per op) to handle.
func readRecords(b *testing.B, handle func(*observed.DNSPacket), flush func()) time.Duration {
	p, err := Load(Config{RingBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.Attach(testkit.CgroupV2Mount(b)); err != nil {
		b.Fatal(err)
	}
	cli, q := loopResolver(b)
	buf := make([]byte, 512)
	perOp := 2 // records per op: a query and its answer
	if strings.HasSuffix(b.Name(), "Read") {
		perOp = 1
	}
	const batch = 100000 // records per fill: ~30 MB of ring
	boot := testkit.BootTime(b)
	b.ResetTimer()
	var elapsed time.Duration
	for done := 0; done < b.N*perOp; done += batch {
		b.StopTimer()
		n := min(batch, b.N*perOp-done)
		for i := 0; i < (n+1)/2; i++ {
			q[0], q[1] = byte(i>>8), byte(i) // a new id per query
			cli.Write(q)
			cli.Read(buf)
		}
		b.StartTimer()
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		seen := 0
		p.Run(ctx, boot, func(pkt *observed.DNSPacket) {
			if seen++; seen <= n {
				handle(pkt)
			}
			if seen == n {
				cancel()
			}
		})
		flush()
		elapsed += time.Since(start)
		if seen < n {
			b.Fatalf("read %d of %d records", seen, n)
		}
	}
	b.StopTimer()
	c, _ := p.Counters()
	if c.RingbufFull > 0 || c.DecodeErrors > 0 {
		b.Fatalf("lost records: %+v", c)
	}
	return elapsed
}
