package flowprobe

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// attached loads the probe and attaches it to the cgroup v2 root.
func attached(t *testing.T) (*Probe, string, time.Time) {
	t.Helper()
	testkit.RequireRoot(t)
	root := testkit.CgroupV2Mount(t)
	p, err := Load(Config{MaxFlows: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Attach(root); err != nil {
		t.Fatal(err)
	}
	return p, root, testkit.BootTime(t)
}

// find returns the sample of the flow local -> remote.
func find(t *testing.T, p *Probe, boot time.Time, local, remote netip.AddrPort) observed.FlowSample {
	t.Helper()
	samples, err := p.Snapshot(boot)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if s.Local == local && s.Remote == remote {
			return s
		}
	}
	t.Fatalf("no flow %s -> %s among %d samples", local, remote, len(samples))
	return observed.FlowSample{}
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	}
	panic(fmt.Sprintf("unexpected %T", a))
}

// TestUDPExact sends k datagrams of n bytes and expects exactly k packets
// and k*(n + IP header + 8) bytes on the sender's and the receiver's flows,
// with the sender as initiator, this process as owner and stamps within the
// exchange (at tick resolution).
func TestUDPExact(t *testing.T) {
	p, _, boot := attached(t)
	var res unix.Timespec
	unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &res)
	tick := time.Duration(res.Nano())
	cg := testkit.CgroupID(t, testkit.OwnCgroup(t))
	pid, comm := uint32(os.Getpid()), testkit.OwnComm(t)
	lo4, lo6 := netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()
	for _, tc := range []struct {
		name           string
		srvNet, cliNet string
		srvAddr        netip.Addr
		cliBind        string
		iphdr          uint64
	}{
		{"udp4", "udp4", "udp4", lo4, "127.0.0.1:0", 20},
		{"udp6", "udp6", "udp6", lo6, "[::1]:0", 40},
		// A dual-stack IPv6 socket sending to ::ffff:127.0.0.1 puts IPv4 on
		// the wire: the flow is IPv4 (the probe keys on packets, not sockets).
		{"v4-mapped", "udp4", "udp", lo4, "[::]:0", 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := net.ListenUDP(tc.srvNet, net.UDPAddrFromAddrPort(netip.AddrPortFrom(tc.srvAddr, 0)))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			cli, err := net.ListenPacket(tc.cliNet, tc.cliBind)
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			to := srv.LocalAddr().(*net.UDPAddr)
			if tc.name == "v4-mapped" {
				to = &net.UDPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: to.Port}
			}
			const k, n = 10, 1000
			buf := make([]byte, n)
			start := time.Now()
			var from netip.AddrPort
			for range k {
				if _, err := cli.WriteTo(buf, to); err != nil {
					t.Fatal(err)
				}
				_, a, err := srv.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatal(err)
				}
				from = a
			}
			end := time.Now()
			local := netip.AddrPortFrom(tc.srvAddr, from.Port()) // the sender as the wire shows it
			want := uint64(k * (n + 8 + tc.iphdr))
			c := find(t, p, boot, local, addrPort(srv.LocalAddr()))
			if c.TxBytes != want || c.TxPackets != k || c.RxPackets != 0 {
				t.Errorf("client flow tx=%d/%d rx=%d, want tx=%d/%d rx=0", c.TxBytes, c.TxPackets, c.RxPackets, want, k)
			}
			if c.Initiator != observed.InitiatorLocal || c.Transport != observed.TransportUDP {
				t.Errorf("client flow initiator=%d transport=%s", c.Initiator, c.Transport)
			}
			if c.PID != pid || c.Comm != comm || c.CgroupID != cg {
				t.Errorf("client flow pid=%d comm=%q cgroup=%d, want %d %q %d", c.PID, c.Comm, c.CgroupID, pid, comm, cg)
			}
			if want := testkit.CookieOf(t, cli.(*net.UDPConn)); c.Cookie != want {
				t.Errorf("client flow cookie %d, SO_COOKIE %d", c.Cookie, want)
			}
			s := find(t, p, boot, addrPort(srv.LocalAddr()), local)
			if s.RxBytes != want || s.RxPackets != k || s.TxPackets != 0 || s.Initiator != observed.InitiatorRemote {
				t.Errorf("server flow rx=%d/%d tx=%d initiator=%d, want rx=%d/%d remote", s.RxBytes, s.RxPackets, s.TxPackets, s.Initiator, want, k)
			}
			// Stamps are the last tick's time (at most one tick late, and
			// one more from pinning jiffies to the clock) and never ahead.
			for _, f := range []observed.FlowSample{c, s} {
				if f.FirstSeen.Before(start.Add(-2*tick-time.Millisecond)) || f.LastSeen.After(end.Add(time.Millisecond)) || f.LastSeen.Before(f.FirstSeen) {
					t.Errorf("flow times first=%s last=%s outside the exchange %s .. %s (tick %s)",
						f.FirstSeen.Format(time.StampMicro), f.LastSeen.Format(time.StampMicro), start.Format(time.StampMicro), end.Format(time.StampMicro), tick)
				}
			}
		})
	}
}

// TestFlowClock: a flow's first and last stamps are as far apart as its
// first and last packets, within two ticks of the packet clock.
func TestFlowClock(t *testing.T) {
	p, _, boot := attached(t)
	var res unix.Timespec
	unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &res)
	tick := time.Duration(res.Nano())
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cli.Write([]byte("first"))
	t0 := time.Now()
	time.Sleep(200 * time.Millisecond)
	t1 := time.Now()
	cli.Write([]byte("last"))
	f := find(t, p, boot, addrPort(cli.LocalAddr()), addrPort(srv.LocalAddr()))
	got, lo, hi := f.LastSeen.Sub(f.FirstSeen), t1.Sub(t0)-2*tick, time.Since(t0)+2*tick
	if got < lo || got > hi {
		t.Errorf("last - first = %s, want within [%s, %s]", got, lo, hi)
	}
}

// TestUDPUnconnectedPeers: one unconnected socket talking to two peers is
// two flows with the same cookie.
func TestUDPUnconnectedPeers(t *testing.T) {
	p, _, boot := attached(t)
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var peers []*net.UDPConn
	for i := range 2 {
		peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		peers = append(peers, peer)
		for range i + 1 {
			if _, err := sock.WriteTo([]byte("x"), peer.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			peer.ReadFrom(make([]byte, 8))
		}
	}
	cookie := testkit.CookieOf(t, sock)
	for i, peer := range peers {
		f := find(t, p, boot, addrPort(sock.LocalAddr()), addrPort(peer.LocalAddr()))
		if f.Cookie != cookie || f.TxPackets != uint64(i+1) || f.TxBytes != uint64((i+1)*29) {
			t.Errorf("flow to peer %d: cookie %d (socket %d) tx %d/%d, want %d/%d", i, f.Cookie, cookie, f.TxPackets, f.TxBytes, i+1, (i+1)*29)
		}
	}
}

// tcpRun is one TCP connection that carried size bytes client -> server,
// captured on the wire and seen by the probe.
type tcpRun struct {
	client, server netip.AddrPort
	clientInfo     *unix.TCPInfo // TCP_INFO of both sockets after the transfer
	serverInfo     *unix.TCPInfo
	frames         []frame
}

// transferTCP listens with listen, connects with dial, sends size bytes
// and half-closes both ways while capturing the connection on iface (in
// netns, "" = this one). It returns once the last ACK has crossed.
func transferTCP(t *testing.T, listen func() net.Listener, dial func(addr string) net.Conn, poke func(netip.AddrPort) func(), netns, iface string, size int) tcpRun {
	t.Helper()
	ln := listen()
	defer ln.Close()
	stop := capture(t, netns, iface, addrPort(ln.Addr()).Port(), poke(addrPort(ln.Addr())))
	type served struct {
		n    int64
		info *unix.TCPInfo
		err  error
	}
	done := make(chan served, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- served{err: err}
			return
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		done <- served{n: n, info: tcpInfo(t, c.(*net.TCPConn)), err: err}
	}()
	cli := dial(ln.Addr().String())
	defer cli.Close()
	if _, err := cli.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	cli.(*net.TCPConn).CloseWrite()
	s := <-done
	if s.err != nil || s.n != int64(size) {
		t.Fatalf("server read %d bytes: %v", s.n, s.err)
	}
	time.Sleep(100 * time.Millisecond) // the server's FIN and its ACK
	run := tcpRun{
		client:     addrPort(cli.LocalAddr()),
		server:     addrPort(cli.RemoteAddr()),
		clientInfo: tcpInfo(t, cli.(*net.TCPConn)),
		serverInfo: s.info,
	}
	run.frames = stop()
	return run
}

// check compares the probe's flows of run with an oracle built from the
// capture and the sockets' TCP_INFO, and returns the client's flow.
//
// The oracle: a capture sees each skb once, GSO super-packets included, so
// captured frames undercount the wire. TCP_INFO segs_out counts every
// segment the socket put on the wire (tcp_skb_pcount, the same gso_segs the
// probe reads), so it gives the packets, and the bytes are the captured IP
// bytes plus one IP + TCP header for each segment a super-frame adds. The
// MSS cannot be taken from the capture instead: on loopback the kernel
// starts below the final MSS (bounded by half the peer's window), so frames
// of the same size split differently over time.
func (run tcpRun) check(t *testing.T, p *Probe, boot time.Time, size int, gso bool) observed.FlowSample {
	t.Helper()
	upCap, downCap := sent(run.frames, run.client.Port()), sent(run.frames, run.server.Port())
	upPkts, upBytes := upCap.wire(uint64(run.clientInfo.Segs_out))
	downPkts, downBytes := downCap.frames, downCap.bytes // ACKs and FIN: one frame, one segment each
	t.Logf("capture: client->server %d frames (largest %d B payload) = %d segments (segs_out), %d bytes; server->client %d frames, %d bytes",
		upCap.frames, upCap.maxPayload, upPkts, upBytes, downCap.frames, downCap.bytes)
	if upPkts < upCap.frames || downCap.maxPayload != 0 {
		t.Fatalf("segs_out %d below %d captured frames, or server sent payload", upPkts, upCap.frames)
	}
	if gso {
		if upPkts <= upCap.frames {
			t.Fatalf("no GSO super-frame on the wire (%d frames, %d segments): the test proves nothing", upCap.frames, upPkts)
		}
		// With a 1500 B MTU the MSS is fixed from the handshake on, so
		// splitting the captured frames at it is a second, capture-only oracle.
		if n := splitAt(run.frames, run.client.Port(), uint64(run.clientInfo.Snd_mss)); n != upPkts {
			t.Errorf("captured frames split at MSS %d make %d segments, segs_out says %d", run.clientInfo.Snd_mss, n, upPkts)
		}
	}

	samples, err := p.Snapshot(boot)
	if err != nil {
		t.Fatal(err)
	}
	var cli observed.FlowSample
	var srv []observed.FlowSample // the listener's handshake entry and the accepted socket's
	for _, s := range samples {
		switch {
		case s.Local == run.client && s.Remote == run.server:
			cli = s
		case s.Local == run.server && s.Remote == run.client:
			srv = append(srv, s)
		}
	}
	if cli.Cookie == 0 || len(srv) == 0 {
		t.Fatalf("client flow %+v, %d server flows", cli, len(srv))
	}

	// Exact: every wire packet and byte, both ends, both directions.
	if cli.TxPackets != upPkts || cli.TxBytes != upBytes || cli.RxPackets != downPkts || cli.RxBytes != downBytes {
		t.Errorf("client flow tx %d pkts/%d B rx %d/%d, oracle says tx %d/%d rx %d/%d",
			cli.TxPackets, cli.TxBytes, cli.RxPackets, cli.RxBytes, upPkts, upBytes, downPkts, downBytes)
	}
	var sum observed.FlowSample
	for _, s := range srv {
		sum.TxPackets += s.TxPackets
		sum.TxBytes += s.TxBytes
		sum.RxPackets += s.RxPackets
		sum.RxBytes += s.RxBytes
	}
	if sum.RxPackets != upPkts || sum.RxBytes != upBytes || sum.TxPackets != downPkts || sum.TxBytes != downBytes {
		t.Errorf("server flows rx %d pkts/%d B tx %d/%d, oracle says rx %d/%d tx %d/%d",
			sum.RxPackets, sum.RxBytes, sum.TxPackets, sum.TxBytes, upPkts, upBytes, downPkts, downBytes)
	}
	if cli.RxPackets != uint64(run.clientInfo.Segs_in) {
		t.Errorf("client rx packets %d, TCP_INFO segs_in %d", cli.RxPackets, run.clientInfo.Segs_in)
	}
	// Payload (bytes_sent: with retransmissions, without SYN/FIN) plus an
	// IP + TCP header of 20 + 20..60 (40 + 20..60 for IPv6) per packet.
	hdrMin, hdrMax := uint64(20+20), uint64(20+60)
	if run.client.Addr().Is6() {
		hdrMin, hdrMax = 40+20, 40+60
	}
	payload := run.clientInfo.Bytes_sent
	if payload < uint64(size) || cli.TxBytes < payload+cli.TxPackets*hdrMin || cli.TxBytes > payload+cli.TxPackets*hdrMax {
		t.Errorf("client tx bytes %d outside [%d, %d] (payload %d of which retransmitted %d)",
			cli.TxBytes, payload+cli.TxPackets*hdrMin, payload+cli.TxPackets*hdrMax, payload, run.clientInfo.Bytes_retrans)
	}
	if cli.Retransmits != run.clientInfo.Total_retrans {
		t.Errorf("client flow retransmits %d, TCP_INFO total_retrans %d", cli.Retransmits, run.clientInfo.Total_retrans)
	}

	// Who opened it, and whose sockets these are.
	if cli.Initiator != observed.InitiatorLocal || cli.TCPFlags&0x13 != 0x13 || cli.SRTT <= 0 {
		t.Errorf("client flow initiator=%d flags=%#x srtt=%s", cli.Initiator, cli.TCPFlags, cli.SRTT)
	}
	cg := testkit.CgroupID(t, testkit.OwnCgroup(t))
	pid, comm := uint32(os.Getpid()), testkit.OwnComm(t)
	if cli.CgroupID != cg || cli.PID != pid || cli.Comm != comm {
		t.Errorf("client flow cgroup=%d pid=%d comm=%q, want %d %d %q", cli.CgroupID, cli.PID, cli.Comm, cg, pid, comm)
	}
	var listener, accepted int
	for _, s := range srv {
		if s.CgroupID != cg {
			t.Errorf("server flow cookie %d cgroup=%d, want %d", s.Cookie, s.CgroupID, cg)
		}
		if s.Initiator == observed.InitiatorRemote && s.TCPFlags&0x02 != 0 {
			listener++ // SYN and handshake ACK, accounted to the listening socket
			continue
		}
		accepted++
		// The accepted socket has the listener's owner (BPF_F_CLONE storage).
		if s.PID != pid || s.Comm != comm || s.SRTT <= 0 {
			t.Errorf("accepted socket's flow pid=%d comm=%q srtt=%s, want %d %q", s.PID, s.Comm, s.SRTT, pid, comm)
		}
	}
	if listener != 1 || accepted != 1 {
		t.Errorf("server flows: %d listener and %d accepted entries, want 1 and 1: %+v", listener, accepted, srv)
	}
	return cli
}

// TestTCPLoopbackMatchesCapture transfers 1 MiB over loopback and checks the
// flows against a capture of the same connection. The server listens with
// plain TCP, and with MPTCP (Go's default for listeners since 1.24: its TCP
// subflows are kernel sockets, which the owner lookup must see through).
func TestTCPLoopbackMatchesCapture(t *testing.T) {
	p, _, boot := attached(t)
	for _, tc := range []struct {
		net, addr string
		mptcp     bool
	}{
		{"tcp4", "127.0.0.1:0", false},
		{"tcp6", "[::1]:0", false},
		{"tcp4", "127.0.0.1:0", true},
		{"tcp6", "[::1]:0", true},
	} {
		t.Run(fmt.Sprintf("%s/mptcp=%t", tc.net, tc.mptcp), func(t *testing.T) {
			const size = 1 << 20
			listen := func() net.Listener {
				var lc net.ListenConfig
				lc.SetMultipathTCP(tc.mptcp)
				ln, err := lc.Listen(context.Background(), tc.net, tc.addr)
				if err != nil {
					t.Fatal(err)
				}
				if got := sockProtocol(t, ln.(*net.TCPListener)) == unix.IPPROTO_MPTCP; got != tc.mptcp {
					testkit.Unsupported(t, "MPTCP (net.mptcp.enabled=1)")
				}
				return ln
			}
			dial := func(addr string) net.Conn {
				c, err := net.Dial(tc.net, addr)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			poke := func(a netip.AddrPort) func() { return pokeUDP(t, a) }
			run := transferTCP(t, listen, dial, poke, "", "lo", size)
			run.check(t, p, boot, size, false)
		})
	}
}

// TestTCPGSOOverVeth sends 4 MiB between two network namespaces over a veth
// pair (MTU 1500, TSO on): the sender's stack hands 64 KiB super-packets to
// the device, the probe sees them as one skb of gso_segs segments on both
// ends, and must count the wire packets they stand for. The capture sees the
// same super-frames; split at the sender's MSS they are the oracle.
func TestTCPGSOOverVeth(t *testing.T) {
	p, _, boot := attached(t)
	a, b := testkit.VethPair(t)
	const size = 4 << 20
	listen := func() (ln net.Listener) {
		b.Do(t, func() {
			var err error
			if ln, err = net.Listen("tcp4", "10.200.7.2:0"); err != nil {
				t.Fatal(err)
			}
		})
		return ln
	}
	dial := func(addr string) (c net.Conn) {
		a.Do(t, func() {
			var err error
			if c, err = net.Dial("tcp4", addr); err != nil {
				t.Fatal(err)
			}
		})
		return c
	}
	poke := func(to netip.AddrPort) func() {
		return func() { a.Do(t, pokeUDP(t, to)) }
	}
	run := transferTCP(t, listen, dial, poke, string(a), "veth-a", size)
	f := run.check(t, p, boot, size, true)
	t.Logf("client flow: %d packets, %d bytes for %d payload bytes", f.TxPackets, f.TxBytes, size)
}

// sockProtocol is the socket's SO_PROTOCOL (IPPROTO_MPTCP for an MPTCP socket).
func sockProtocol(t *testing.T, c syscall.Conn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var proto int
	raw.Control(func(fd uintptr) { proto, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL) })
	if err != nil {
		t.Fatal(err)
	}
	return proto
}

func tcpInfo(t *testing.T, c *net.TCPConn) *unix.TCPInfo {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var serr error
	raw.Control(func(fd uintptr) { info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if serr != nil {
		t.Fatal(serr)
	}
	return info
}

// TestChildCgroupProcess runs socat in a cgroup of its own: its flow carries
// that cgroup's id and socat's pid and command name.
func TestChildCgroupProcess(t *testing.T) {
	p, root, boot := attached(t)
	if _, err := exec.LookPath("socat"); err != nil {
		testkit.Unsupported(t, "socat (apt-get install socat)")
	}
	dir := filepath.Join(root, fmt.Sprintf("ebpfflow-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })

	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cmd := exec.Command("sh", "-c", `echo $$ > "$1/cgroup.procs" && exec socat -u - "UDP4-SENDTO:$2"`, "sh", dir, srv.LocalAddr().String())
	cmd.Stdin = strings.NewReader("hello from a pod\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("socat: %v: %s", err, out)
	}
	buf := make([]byte, 64)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, from, err := srv.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	f := find(t, p, boot, addrPort(from), addrPort(srv.LocalAddr()))
	if want := testkit.CgroupID(t, dir); f.CgroupID != want {
		t.Errorf("cgroup id %d, want %d (%s)", f.CgroupID, want, dir)
	}
	if f.PID != uint32(cmd.Process.Pid) || f.Comm != "socat" {
		t.Errorf("pid=%d comm=%q, want %d socat", f.PID, f.Comm, cmd.Process.Pid)
	}
	if f.TxBytes != 17+8+20 || f.TxPackets != 1 {
		t.Errorf("tx %d bytes / %d packets, want 45 / 1", f.TxBytes, f.TxPackets)
	}
}

var _ syscall.Conn = (*net.TCPConn)(nil)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzDecode/kernel-* from live kernel entries")

// TestDecodeKernelBytes decodes raw `flows` entries as the kernel wrote them
// and checks Decode agrees with Snapshot. With -update-corpus it stores
// them as FuzzDecode seeds.
func TestDecodeKernelBytes(t *testing.T) {
	p, _, boot := attached(t)
	srv, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.DialUDP("udp6", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cli.Write([]byte("to decode"))
	srv.ReadFrom(make([]byte, 16))

	samples, err := p.Snapshot(boot)
	if err != nil {
		t.Fatal(err)
	}
	bySample := map[netip.AddrPort]observed.FlowSample{}
	for _, s := range samples {
		bySample[s.Local] = s
	}
	// Only this test's two sockets are compared: other tests' traffic keeps
	// changing their own entries between the snapshot and this walk.
	mine := map[netip.AddrPort]bool{addrPort(cli.LocalAddr()): true, addrPort(srv.LocalAddr()): true}
	key, value := make([]byte, keySize), make([]byte, valueSize)
	it := p.objs.Flows.Iterate()
	n, compared := 0, 0
	for it.Next(&key, &value) {
		got, err := decodeRaw(key, value, boot.Add(p.suspended))
		if err != nil {
			t.Fatalf("decodeRaw(kernel entry): %v", err)
		}
		if want, ok := bySample[got.Local]; ok && mine[got.Local] && want.Remote == got.Remote {
			compared++
			if got != want {
				t.Errorf("Decode = %+v\nSnapshot = %+v", got, want)
			}
		}
		if got.Local == addrPort(cli.LocalAddr()) && *updateCorpus {
			corpus := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", key, value)
			if err := os.WriteFile("testdata/fuzz/FuzzDecode/kernel-udp6", []byte(corpus), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no entries")
	}
	if compared != 2 {
		t.Errorf("compared %d of this test's 2 flow entries", compared)
	}
}

// TestWithoutOwnerProgram: a kernel that refuses cgroup/sock_create still
// gets flows, with pid 0, and says why.
func TestWithoutOwnerProgram(t *testing.T) {
	testkit.RequireRoot(t)
	p, err := load(Config{MaxFlows: 1024}, func(spec *ebpf.CollectionSpec) {
		// Reads R0 before writing it: refused by every verifier.
		spec.Programs["flow_sock_create"].Instructions = asm.Instructions{asm.Return()}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.OwnerError() == nil {
		t.Fatal("OwnerError() = nil for a refused sock_create program")
	}
	t.Logf("OwnerError: %.120s...", p.OwnerError())
	if err := p.Attach(testkit.CgroupV2Mount(t)); err != nil {
		t.Fatal(err)
	}
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.DialUDP("udp4", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cli.Write([]byte("no owner"))
	f := find(t, p, testkit.BootTime(t), addrPort(cli.LocalAddr()), addrPort(srv.LocalAddr()))
	if f.TxPackets != 1 || f.PID != 0 || f.Comm != "" {
		t.Errorf("flow tx %d pid %d comm %q, want 1 packet and no owner", f.TxPackets, f.PID, f.Comm)
	}
}

// TestConnectionOlderThanProbe: a connection ESTABLISHED before the probe
// loads (no SYN seen, no storage yet) is reported from its first packet
// after, with no initiator, and exactly: the sockets' own segment counters
// (TCP_INFO segs_out / segs_in) before the load and after the close are the
// oracle, on both ends.
func TestConnectionOlderThanProbe(t *testing.T) {
	testkit.RequireRoot(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	cli, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer srv.Close()
	c, s := cli.(*net.TCPConn), srv.(*net.TCPConn)
	cliBefore, srvBefore := tcpInfo(t, c), tcpInfo(t, s)

	p, err := Load(Config{MaxFlows: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Attach(testkit.CgroupV2Mount(t)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for range 20 { // request, response
		if _, err := c.Write(buf[:1000]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf[:1000]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(buf[:3000]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf[:3000]); err != nil {
			t.Fatal(err)
		}
	}
	c.CloseWrite()
	if _, err := io.Copy(io.Discard, s); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the last ACK
	cliAfter, srvAfter := tcpInfo(t, c), tcpInfo(t, s)

	boot := testkit.BootTime(t)
	for _, end := range []struct {
		name          string
		local, remote netip.AddrPort
		before, after *unix.TCPInfo
		payload       uint64
	}{
		{"client", addrPort(c.LocalAddr()), addrPort(c.RemoteAddr()), cliBefore, cliAfter, 20 * 1000},
		{"server", addrPort(s.LocalAddr()), addrPort(s.RemoteAddr()), srvBefore, srvAfter, 20 * 3000},
	} {
		f := find(t, p, boot, end.local, end.remote)
		tx, rx := uint64(end.after.Segs_out-end.before.Segs_out), uint64(end.after.Segs_in-end.before.Segs_in)
		if f.TxPackets != tx || f.RxPackets != rx || f.Initiator != observed.InitiatorUnknown {
			t.Errorf("%s flow tx %d rx %d packets initiator %d, TCP_INFO says tx %d rx %d (no initiator)",
				end.name, f.TxPackets, f.RxPackets, f.Initiator, tx, rx)
		}
		// Payload plus an IPv4 + TCP header of 40..80 bytes per packet.
		if f.TxBytes < end.payload+40*tx || f.TxBytes > end.payload+80*tx || f.SRTT <= 0 {
			t.Errorf("%s flow tx %d bytes (payload %d in %d packets) srtt %s", end.name, f.TxBytes, end.payload, tx, f.SRTT)
		}
	}
}
