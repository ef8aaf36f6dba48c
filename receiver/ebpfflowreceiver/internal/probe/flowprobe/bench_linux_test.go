package flowprobe

import (
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/probetest"
)

// BenchmarkFlowProbeKernel reports the in-kernel cost of flow accounting
// per packet (ns/packet, from BPF run-time statistics) while b.N UDP
// datagrams cross loopback: each is seen once on egress and once on ingress.
func BenchmarkFlowProbeKernel(b *testing.B) {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer stats.Close()
	p, err := Load(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.Attach(probetest.CgroupV2Mount(b)); err != nil {
		b.Fatal(err)
	}
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.Dial("udp4", srv.LocalAddr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	buf := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		cli.Write(buf)
		srv.ReadFrom(buf)
	}
	b.StopTimer()
	var runNs, runs uint64
	for _, prog := range p.programs() {
		st, err := prog.Stats()
		if err != nil {
			b.Fatal(err)
		}
		runNs += uint64(st.Runtime)
		runs += st.RunCount
	}
	if runs > 0 {
		b.ReportMetric(float64(runNs)/float64(runs), "kernel-ns/packet")
	}
}

// BenchmarkFlowProbeKernelManyFlows is the live case: 5k connected UDP
// socket pairs (10k flows, more than the caches hold) each send one datagram
// per round, so most packets miss the CPU caches on their flow entry.
func BenchmarkFlowProbeKernelManyFlows(b *testing.B) {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < 20000 {
		rl.Cur = max(rl.Max, 20000)
		rl.Max = rl.Cur
		unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	}
	const pairs = 5000
	type pair struct{ tx, rx int }
	ps := make([]pair, 0, pairs)
	defer func() {
		for _, p := range ps {
			unix.Close(p.tx)
			unix.Close(p.rx)
		}
	}()
	lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	for range pairs {
		rx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		tx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, pair{tx, rx})
		if err := unix.Bind(rx, lo); err != nil {
			b.Fatal(err)
		}
		sa, _ := unix.Getsockname(rx)
		if err := unix.Connect(tx, sa); err != nil {
			b.Fatal(err)
		}
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer stats.Close()
	p, err := Load(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.Attach(probetest.CgroupV2Mount(b)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64)
	round := func() {
		for _, pr := range ps {
			unix.Write(pr.tx, buf)
		}
		for _, pr := range ps {
			unix.Read(pr.rx, buf)
		}
	}
	round() // create the flows: the measured rounds hit existing entries
	var base [2]ebpf.ProgramStats
	for i, prog := range p.programs() {
		st, _ := prog.Stats()
		base[i] = *st
	}
	b.ResetTimer()
	for range b.N {
		round()
	}
	b.StopTimer()
	for i, prog := range p.programs() {
		st, err := prog.Stats()
		if err != nil {
			b.Fatal(err)
		}
		if runs := st.RunCount - base[i].RunCount; runs > 0 {
			b.ReportMetric(float64(st.Runtime-base[i].Runtime)/float64(runs), []string{"egress", "ingress"}[i]+"-ns/packet")
		}
	}
}
