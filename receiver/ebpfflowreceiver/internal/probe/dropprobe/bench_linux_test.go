package dropprobe

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// BenchmarkDropProbeKernel reports the in-kernel cost per kfree_skb event
// (kernel.bpf_stats_enabled run time / run count) while each op makes the
// kernel drop one real packet:
//   - existing-key: UDP to a closed port, same tuple (lookup + atomic adds)
//   - 60k-keys: the destination port cycles over 60000 values: inserts
//     first, then lookups of keys too many to stay in cache
//   - ignored: a NOT_SPECIFIED free, filtered by the ignore array
func BenchmarkDropProbeKernel(b *testing.B) {
	testkit.RequireRoot(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer stats.Close()

	udp := func(b *testing.B, port func(i int) uint16) {
		p := attached(b, Config{MaxEntries: 65536, IgnoreReasons: normalFrees})
		ns := testkit.NewNetns(b, "ebpfflow-dropbench")
		var c *net.UDPConn
		ns.Do(b, func() {
			pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			c = pc.(*net.UDPConn)
		})
		defer c.Close()
		measure(b, p, func(i int) {
			dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port(i))
			if _, err := c.WriteToUDPAddrPort([]byte("x"), dst); err != nil {
				b.Fatal(err)
			}
		})
	}
	b.Run("existing-key", func(b *testing.B) { udp(b, func(int) uint16 { return 9 }) })
	b.Run("60k-keys", func(b *testing.B) { udp(b, func(i int) uint16 { return uint16(1024 + i%60000) }) })
	b.Run("ignored", func(b *testing.B) {
		p := attached(b, Config{IgnoreReasons: normalFrees})
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_USERSOCK)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: 0x7ffffff0}
		measure(b, p, func(int) { unix.Sendto(fd, []byte("x"), 0, to) })
	})
}

func measure(b *testing.B, p *Probe, op func(i int)) {
	b.Helper()
	s0, err := p.objs.DropKfreeSkb.Stats()
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		op(i)
		i++
	}
	s1, err := p.objs.DropKfreeSkb.Stats()
	if err != nil {
		b.Fatal(err)
	}
	runs := s1.RunCount - s0.RunCount
	if runs == 0 {
		b.Fatal("program never ran")
	}
	b.ReportMetric(float64(s1.Runtime-s0.Runtime)/float64(runs), "ns/event")
	b.ReportMetric(float64(runs)/float64(b.N), "events/op")
}

// BenchmarkSnapshot reads a map of 10k drop keys: user-space decode rate.
func BenchmarkSnapshot(b *testing.B) {
	testkit.RequireRoot(b)
	p, err := Load(Config{MaxEntries: 16384, IgnoreReasons: normalFrees})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	const n = 10000
	k, v := validKey(), validValue()
	for i := range uint16(n) {
		k.Sport = i
		if err := p.objs.Drops.Put(&k, &v); err != nil {
			b.Fatal(err)
		}
	}
	boot := time.Now()
	for b.Loop() {
		s, err := p.Snapshot(boot)
		if err != nil || len(s) != n {
			b.Fatalf("%d samples, %v", len(s), err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
}
