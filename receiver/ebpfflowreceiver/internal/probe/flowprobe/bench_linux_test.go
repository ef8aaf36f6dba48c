package flowprobe

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// BenchmarkFlowProbeKernel reports the in-kernel cost of flow accounting
// per packet from BPF run-time statistics (run_time_ns / run_cnt of the
// egress and ingress programs) while real packets cross loopback, for a UDP
// and a TCP flow. kernel-ns/packet is what the statistics say. They include
// their own overhead (two clock reads around every run), so an empty
// cgroup_skb program rides along on the same packets: floor-ns is its
// figure and net-ns the probe's cost above it.
func BenchmarkFlowProbeKernel(b *testing.B) {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time stats: %v", err)
	}
	defer stats.Close()
	root := testkit.CgroupV2Mount(b)
	p, err := Load(Config{MaxFlows: 65536})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.Attach(root); err != nil {
		b.Fatal(err)
	}
	floor := testkit.NoopCgroupSKB(b, root)

	b.Run("udp", func(b *testing.B) {
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
		measure(b, p.Programs(), floor, func() {
			cli.Write(buf)
			srv.ReadFrom(buf)
		})
	})
	b.Run("tcp", func(b *testing.B) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			io.Copy(c, c) // echo
		}()
		cli, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer cli.Close()
		buf := make([]byte, 64)
		measure(b, p.Programs(), floor, func() {
			cli.Write(buf)
			io.ReadFull(cli, buf)
		})
	})
}

// measure runs round b.N times and reports the programs' run-time
// statistics over those rounds, per run (= per skb).
func measure(b *testing.B, progs []*ebpf.Program, floor []*ebpf.Program, round func()) {
	round() // first packets insert the flows: measure the steady state
	perRun := func(ps []*ebpf.Program, base []ebpf.ProgramStats) float64 {
		var ns, runs uint64
		for i, prog := range ps {
			st, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			ns += uint64(st.Runtime - base[i].Runtime)
			runs += st.RunCount - base[i].RunCount
		}
		if runs == 0 {
			b.Fatal("programs did not run")
		}
		return float64(ns) / float64(runs)
	}
	snap := func(ps []*ebpf.Program) []ebpf.ProgramStats {
		out := make([]ebpf.ProgramStats, len(ps))
		for i, prog := range ps {
			st, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			out[i] = *st
		}
		return out
	}
	base, floorBase := snap(progs), snap(floor)
	b.ResetTimer()
	for range b.N {
		round()
	}
	b.StopTimer()
	k, f := perRun(progs, base), perRun(floor, floorBase)
	b.ReportMetric(k, "kernel-ns/packet")
	b.ReportMetric(f, "floor-ns")
	b.ReportMetric(k-f, "net-ns")
}

// BenchmarkFlowProbeKernelManyFlows is the live case: 5k connected UDP
// socket pairs (10k flows, more than the caches hold) each send one datagram
// per round, so most packets miss the CPU caches on their flow entry.
func BenchmarkFlowProbeKernelManyFlows(b *testing.B) {
	raiseNoFile()
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
	p, floor := attachedWithStats(b)
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
	measurePerProgram(b, p, floor, round)
}

// BenchmarkFlowProbeKernelManyTCPFlows is the live case for ESTABLISHED
// TCP sockets: 5k loopback connections (10k flows, one per end) each carry
// one 64-byte write and its echo per round, so every socket's packets are
// far apart and miss the CPU caches, as with many idle-ish keep-alive
// connections.
func BenchmarkFlowProbeKernelManyTCPFlows(b *testing.B) {
	raiseNoFile()
	const conns = 5000
	type conn struct{ cli, srv int }
	cs := make([]conn, 0, conns)
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, c := range cs {
			unix.Close(c.cli)
			unix.Close(c.srv)
		}
		unix.Close(ln)
	}()
	lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(ln, lo); err != nil {
		b.Fatal(err)
	}
	if err := unix.Listen(ln, 1024); err != nil {
		b.Fatal(err)
	}
	sa, _ := unix.Getsockname(ln)
	p, floor := attachedWithStats(b)
	for range conns {
		cli, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Connect(cli, sa); err != nil {
			unix.Close(cli)
			b.Fatal(err)
		}
		srv, _, err := unix.Accept(ln)
		if err != nil {
			unix.Close(cli)
			b.Fatal(err)
		}
		unix.SetsockoptInt(cli, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.SetsockoptInt(srv, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		cs = append(cs, conn{cli, srv})
	}
	buf := make([]byte, 64)
	round := func() {
		for _, c := range cs {
			unix.Write(c.cli, buf)
		}
		for _, c := range cs {
			unix.Read(c.srv, buf)
			unix.Write(c.srv, buf)
		}
		for _, c := range cs {
			unix.Read(c.cli, buf)
		}
	}
	round() // the first packets after the handshake create the entries
	measurePerProgram(b, p, floor, round)
}

// attachedWithStats enables BPF run-time statistics, then loads and
// attaches the probe and an empty cgroup_skb program (the floor), all until
// b ends.
func attachedWithStats(b *testing.B) (*Probe, []*ebpf.Program) {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time stats: %v", err)
	}
	b.Cleanup(func() { stats.Close() })
	p, err := Load(Config{MaxFlows: 65536})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	root := testkit.CgroupV2Mount(b)
	if err := p.Attach(root); err != nil {
		b.Fatal(err)
	}
	return p, testkit.NoopCgroupSKB(b, root)
}

// raiseNoFile lifts the open-file limit for thousands of sockets.
func raiseNoFile() {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < 20000 {
		rl.Cur = max(rl.Max, 20000)
		rl.Max = rl.Cur
		unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	}
}

// measurePerProgram runs round b.N times and reports the run-time
// statistics of the egress and the ingress program, per run, and floor-ns:
// the empty programs' figure on the same packets (the statistics' own
// overhead, and what many cold sockets cost any program).
func measurePerProgram(b *testing.B, p *Probe, floor []*ebpf.Program, round func()) {
	progs := append(p.Programs(), floor...)
	base := make([]ebpf.ProgramStats, len(progs))
	for i, prog := range progs {
		st, _ := prog.Stats()
		base[i] = *st
	}
	b.ResetTimer()
	for range b.N {
		round()
	}
	b.StopTimer()
	var floorNs time.Duration
	var floorRuns uint64
	for i, prog := range progs {
		st, err := prog.Stats()
		if err != nil {
			b.Fatal(err)
		}
		runs := st.RunCount - base[i].RunCount
		if i >= 2 {
			floorNs += st.Runtime - base[i].Runtime
			floorRuns += runs
		} else if runs > 0 {
			b.ReportMetric(float64(st.Runtime-base[i].Runtime)/float64(runs), []string{"egress", "ingress"}[i]+"-ns/packet")
		}
	}
	if floorRuns > 0 {
		b.ReportMetric(float64(floorNs)/float64(floorRuns), "floor-ns")
	}
}

// BenchmarkSnapshot10kFlows is the user-space side of one flush's flow
// read: 10k entries of a few processes read from the kernel map in
// batches and decoded (the map filled from user space: no traffic needed).
func BenchmarkSnapshot10kFlows(b *testing.B) {
	testkit.RequireRoot(b)
	const n = 10000
	p, err := Load(Config{MaxFlows: 65536})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	comms := []string{"nginx", "wrk", "curl", "coredns"}
	for i := range n {
		k := flowSockFlowKey{Cookie: uint64(i + 1), LocalPort: uint16(30000 + i%20000), RemotePort: 80, Proto: 6}
		k.Family = probe.PutAddr(&k.LocalAddr, netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)}))
		probe.PutAddr(&k.RemoteAddr, netip.AddrFrom4([4]byte{10, 96, 0, byte(i % 7)}))
		v := flowSockFlowStats{TxBytes: 1500, TxPackets: 10, RxBytes: 5000, RxPackets: 8, FirstNs: 1e9, TxLastNs: 2e9, RxLastNs: 2e9,
			CgroupId: uint64(1000 + i%100), Pid: uint32(100 + i%4), SrttUs: 100, Initiator: 1}
		for j, c := range comms[i%len(comms)] {
			v.Comm[j] = int8(c)
		}
		if err := p.objs.Flows.Put(&k, &v); err != nil {
			b.Fatal(err)
		}
		// Each connection holds its lines, as on a node.
		c := connOf(&k)
		ln := flowFlowLine{Cookie: c.cookie, Peer: c.peer, Bytes: 3000, Packets: 20, LastNs: 3e9, Flags: 0x10}
		for _, m := range []*ebpf.Map{p.objs.TxLines, p.objs.RxLines} {
			if err := m.Put(uint32(c.cookie)&(p.lines.slots-1), &ln); err != nil {
				b.Fatal(err)
			}
		}
	}
	boot := time.Now().Add(-time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		flows, err := p.Snapshot(boot)
		if err != nil || len(flows) != n || flows[0].TxPackets != 30 {
			b.Fatalf("snapshot: %d flows (the first with %d tx packets), %v", len(flows), flows[0].TxPackets, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/flow")
}
