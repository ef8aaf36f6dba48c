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
