package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"context"
	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/preflight"
)

// envHelper makes the test binary act as a pod process (see TestMain).
const envHelper = "EBPFFLOW_ENGINE_HELPER"

// TestMain runs the tests, or, with envHelper set, the pod side of
// TestEngineEndToEnd: the test binary re-executed inside a pod runs
// "<mode> <args>" and prints its results on stdout.
func TestMain(m *testing.M) {
	if spec := os.Getenv(envHelper); spec != "" {
		f := strings.Fields(spec)
		if err := helperMain(f[0], f[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper is a pod process: the test binary in the pod's netns and cgroup.
type helper struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

// startHelper runs the test binary as a helper in the pod's cgroup and
// network namespace: every socket it opens belongs to the pod.
func startHelper(t *testing.T, p *testkit.Pod, args ...string) *helper {
	t.Helper()
	cmd := p.Command(context.Background(), os.Args[0])
	cmd.Env = append(os.Environ(), envHelper+"="+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return h
}

// line reads the helper's next output line.
func (h *helper) line(t *testing.T) string {
	t.Helper()
	s, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper %v: %v", h.cmd.Args, err)
	}
	return strings.TrimSpace(s)
}

func (h *helper) wait(t *testing.T) {
	t.Helper()
	_, _ = io.Copy(io.Discard, h.out)
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper %v: %v", h.cmd.Args, err)
	}
}

func helperMain(mode string, args []string) error {
	switch mode {
	case "serve-tcp": // addr conns: read each connection to EOF, then close it
		ln, err := net.Listen("tcp", args[0])
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(args[1])
		fmt.Println("ready")
		for range n {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			got, err := io.Copy(io.Discard, c)
			if err != nil {
				return err
			}
			c.Close()
			fmt.Println("read", got)
		}
		return ln.Close()
	case "send-tcp": // addr bytes: send, half-close, wait for the server's FIN
		c, err := net.Dial("tcp", args[0])
		if err != nil {
			return err
		}
		fmt.Println("local", c.LocalAddr())
		n, _ := strconv.Atoi(args[1])
		if _, err := c.Write(make([]byte, n)); err != nil {
			return err
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, c); err != nil {
			return err
		}
		return c.Close()
	case "recv-udp": // addr datagrams
		c, err := net.ListenPacket("udp", args[0])
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(args[1])
		fmt.Println("ready")
		buf := make([]byte, 65536)
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for range n {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return err
			}
		}
		fmt.Println("received", n)
		return c.Close()
	case "send-udp": // addr datagrams size
		c, err := net.Dial("udp", args[0])
		if err != nil {
			return err
		}
		fmt.Println("local", c.LocalAddr())
		n, _ := strconv.Atoi(args[1])
		size, _ := strconv.Atoi(args[2])
		for range n {
			if _, err := c.Write(make([]byte, size)); err != nil {
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
		return c.Close()
	case "connect": // addr timeout: report how the connect ended
		timeout, _ := time.ParseDuration(args[1])
		c, err := net.DialTimeout("tcp", args[0], timeout)
		switch {
		case err == nil:
			c.Close()
			fmt.Println("connected")
		case errors.Is(err, syscall.ECONNREFUSED):
			fmt.Println("refused")
		default:
			fmt.Println("failed", err)
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// reports collects what the engine emits.
type reports struct {
	mu    sync.Mutex
	flows []observed.Flow
	drops []observed.Drop
	n     int
}

func (r *reports) add(rep observed.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flows = append(r.flows, rep.Flows...)
	r.drops = append(r.drops, rep.Drops...)
	r.n++
}

func (r *reports) snapshot() ([]observed.Flow, []observed.Drop) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observed.Flow(nil), r.flows...), append([]observed.Drop(nil), r.drops...)
}

// conn sums one socket's records: the same tuple seen from one pod.
type conn struct {
	records                                 int
	finals                                  int
	srcBytes, srcPackets, dstBytes, dstPkts uint64
	last                                    observed.Flow
	dropped                                 bool
}

func sumConn(flows []observed.Flow, podUID string, transport observed.Transport, src, dst netip.AddrPort) conn {
	var c conn
	for _, f := range flows {
		if f.Local.PodUID != podUID || f.Transport != transport || f.Source != src || f.Dest != dst {
			continue
		}
		c.records++
		c.srcBytes += f.SourceBytes
		c.srcPackets += f.SourcePackets
		c.dstBytes += f.DestBytes
		c.dstPkts += f.DestPackets
		c.dropped = c.dropped || f.Dropped
		if f.Closed {
			c.finals++
		}
		c.last = f
	}
	return c
}

// TestEngineEndToEnd runs the real probes against two netns "pods" in
// kubelet-shaped cgroups and checks the report field by field.
func TestEngineEndToEnd(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.RequireTools(t, "ip", "iptables")
	if _, err := preflight.Check(preflight.Options{}); err != nil {
		t.Fatal(err)
	}
	a, b := testkit.NewPodPair(t, "enga", "engb", 201)
	// Pod b drops connections to port 8082.
	testkit.Run(t, "ip", "netns", "exec", b.Netns, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8082", "-j", "DROP")

	var got reports
	e := New(Config{
		FlushInterval: time.Second,
		Flows:         FlowsConfig{Enabled: true, MaxFlows: 65536, IdleTimeout: 2 * time.Second},
		Drops:         DropsConfig{Enabled: true, IgnoreReasons: []string{"NOT_SPECIFIED"}},
		ClusterCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}, zaptest.NewLogger(t), got.add)
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	for name, ps := range e.Stats().Probes {
		if ps.Err != nil {
			t.Errorf("probe %s failed: %v", name, ps.Err)
		}
	}

	const tcpBytes4, tcpBytes6, udpDatagrams, udpSize = 200000, 150000, 10, 200
	dst4 := netip.AddrPortFrom(b.IP4, 8080)
	dst6 := netip.AddrPortFrom(b.IP6, 8080)
	dstUDP := netip.AddrPortFrom(b.IP4, 9000)

	srv := startHelper(t, b, "serve-tcp", "[::]:8080", "2")
	if s := srv.line(t); s != "ready" {
		t.Fatalf("server: %q", s)
	}
	udpSrv := startHelper(t, b, "recv-udp", dstUDP.String(), strconv.Itoa(udpDatagrams))
	if s := udpSrv.line(t); s != "ready" {
		t.Fatalf("udp server: %q", s)
	}

	cli4 := startHelper(t, a, "send-tcp", dst4.String(), strconv.Itoa(tcpBytes4))
	src4 := netip.MustParseAddrPort(strings.TrimPrefix(cli4.line(t), "local "))
	cli4.wait(t)
	cli6 := startHelper(t, a, "send-tcp", dst6.String(), strconv.Itoa(tcpBytes6))
	src6 := netip.MustParseAddrPort(strings.TrimPrefix(cli6.line(t), "local "))
	cli6.wait(t)
	if s := srv.line(t); s != "read "+strconv.Itoa(tcpBytes4) {
		t.Fatalf("server: %q", s)
	}
	srv.wait(t)

	udpCli := startHelper(t, a, "send-udp", dstUDP.String(), strconv.Itoa(udpDatagrams), strconv.Itoa(udpSize))
	srcUDP := netip.MustParseAddrPort(strings.TrimPrefix(udpCli.line(t), "local "))
	udpCli.wait(t)
	udpSrv.wait(t)

	refused := startHelper(t, a, "connect", netip.AddrPortFrom(b.IP4, 8081).String(), "2s")
	if s := refused.line(t); s != "refused" {
		t.Fatalf("connect to a closed port: %q", s)
	}
	refused.wait(t)
	blocked := startHelper(t, a, "connect", netip.AddrPortFrom(b.IP4, 8082).String(), "1500ms")
	if s := blocked.line(t); !strings.HasPrefix(s, "failed") {
		t.Fatalf("connect through the DROP rule: %q", s)
	}
	blocked.wait(t)

	// Wait for the final records (UDP ends after two idle flushes).
	var (
		flows []observed.Flow
		drops []observed.Drop
		ok    bool
		why   string
	)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		flows, drops = got.snapshot()
		if ok, why = complete(flows, drops, a, b, src4, src6, srcUDP, dst4, dst6, dstUDP); ok {
			break
		}
	}
	if !ok {
		logOurs(t, flows, drops, a, b)
		t.Fatalf("incomplete report after 20s: %s", why)
	}

	// TCP over IPv4, from both ends.
	checkTCP(t, "v4", flows, a, b, src4, dst4, tcpBytes4)
	checkTCP(t, "v6", flows, a, b, src6, dst6, tcpBytes6)

	// UDP: exact IP-layer bytes, both ends.
	wantUDP := uint64(udpDatagrams * (udpSize + 8 + 20))
	for _, side := range []struct {
		p    *testkit.Pod
		role observed.Role
	}{{a, observed.RoleClient}, {b, observed.RoleServer}} {
		c := sumConn(flows, side.p.UID, observed.TransportUDP, srcUDP, dstUDP)
		if c.srcBytes != wantUDP || c.srcPackets != udpDatagrams || c.finals != 1 || c.last.LocalRole != side.role || c.last.CloseCause != observed.CloseNone {
			t.Errorf("udp seen from %s: %+v (want %d bytes %d packets, one final, role %v)", side.p.Netns, c, wantUDP, udpDatagrams, side.role)
		}
	}

	// The refused connect, built even if the flow probe saw only the SYN.
	for _, f := range flows {
		if f.Dest == netip.AddrPortFrom(b.IP4, 8081) && f.Local.PodUID == a.UID && f.Closed {
			if f.CloseCause != observed.CloseRefused || f.LocalRole != observed.RoleClient {
				t.Errorf("refused connect: %+v", f)
			}
		}
	}

	// The DROP rule: a NETFILTER_DROP drop, and the flow marked dropped.
	var nfDrops uint64
	for _, d := range drops {
		if d.Reason == "NETFILTER_DROP" && d.Dest == netip.AddrPortFrom(b.IP4, 8082) {
			nfDrops += d.Count
			if d.Local.PodUID != a.UID || d.Transport != observed.TransportTCP || d.Location == "" || strings.HasPrefix(d.Location, "0x") {
				t.Errorf("drop: %+v", d)
			}
		}
	}
	if nfDrops < 2 { // the SYN and at least one retransmission in 1.5 s
		t.Errorf("NETFILTER_DROP drops %d, want >= 2", nfDrops)
	}
	t.Logf("NETFILTER_DROP: %d packets", nfDrops)

	logOurs(t, flows, drops, a, b)
	st := e.Stats()
	if st.Evicted != 0 {
		t.Errorf("%d flows evicted from a nearly empty map", st.Evicted)
	}
	for name, ps := range st.Probes {
		if ps.Err != nil || ps.Counters.Events == 0 {
			t.Errorf("probe %s: %+v", name, ps)
		}
	}
	t.Logf("stats %+v", st)
}

// complete reports whether every final record the test waits for arrived.
func complete(flows []observed.Flow, drops []observed.Drop, a, b *testkit.Pod, src4, src6, srcUDP, dst4, dst6, dstUDP netip.AddrPort) (bool, string) {
	for _, w := range []struct {
		p         *testkit.Pod
		transport observed.Transport
		src, dst  netip.AddrPort
	}{
		{a, observed.TransportTCP, src4, dst4}, {b, observed.TransportTCP, src4, dst4},
		{a, observed.TransportTCP, src6, dst6}, {b, observed.TransportTCP, src6, dst6},
		{a, observed.TransportUDP, srcUDP, dstUDP}, {b, observed.TransportUDP, srcUDP, dstUDP},
	} {
		if c := sumConn(flows, w.p.UID, w.transport, w.src, w.dst); c.finals == 0 {
			return false, fmt.Sprintf("no final %v record %v -> %v from %s", w.transport, w.src, w.dst, w.p.Netns)
		}
	}
	var refused, dropped bool
	for _, f := range flows {
		if f.Local.PodUID == a.UID && f.Dest.Port() == 8081 && f.Closed {
			refused = true
		}
		if f.Local.PodUID == a.UID && f.Dest.Port() == 8082 && f.Dropped {
			dropped = true
		}
	}
	if !refused {
		return false, "no final record of the refused connect"
	}
	if !dropped {
		return false, "no dropped flow to :8082"
	}
	for _, d := range drops {
		if d.Reason == "NETFILTER_DROP" && d.Dest.Port() == 8082 {
			return true, ""
		}
	}
	return false, "no NETFILTER_DROP drop"
}

func checkTCP(t *testing.T, name string, flows []observed.Flow, a, b *testkit.Pod, src, dst netip.AddrPort, payload int) {
	t.Helper()
	ipHdr := 20
	if src.Addr().Is6() {
		ipHdr = 40
	}
	for _, side := range []struct {
		p    *testkit.Pod
		peer *testkit.Pod
		role observed.Role
	}{{a, b, observed.RoleClient}, {b, a, observed.RoleServer}} {
		c := sumConn(flows, side.p.UID, observed.TransportTCP, src, dst)
		f := c.last
		// IP layer: payload plus IP+TCP headers (with timestamps) per segment.
		maxBytes := uint64(payload) + c.srcPackets*uint64(ipHdr+32+12)
		if c.srcBytes < uint64(payload) || c.srcBytes > maxBytes || float64(c.srcBytes) > float64(payload)*1.06 {
			t.Errorf("%s tcp from %s: source bytes %d for %d payload bytes in %d packets", name, side.p.Netns, c.srcBytes, payload, c.srcPackets)
		}
		if c.finals != 1 || !f.Closed || f.CloseCause != observed.CloseFIN || f.LocalRole != side.role {
			t.Errorf("%s tcp from %s: %d finals, last %+v", name, side.p.Netns, c.finals, f)
		}
		if f.Local.ContainerID != side.p.ContainerID || f.Local.PodIP != src.Addr() && side.role == observed.RoleClient ||
			f.Local.PodIP != dst.Addr() && side.role == observed.RoleServer || f.Local.PID != 0 {
			t.Errorf("%s tcp from %s: local workload %+v", name, side.p.Netns, f.Local)
		}
		if f.Remote == nil || f.Remote.PodUID != side.peer.UID {
			t.Errorf("%s tcp from %s: remote workload %+v, want pod %s", name, side.p.Netns, f.Remote, side.peer.UID)
		}
		if f.Scope != observed.ScopeNode || f.SRTT <= 0 {
			t.Errorf("%s tcp from %s: scope %v srtt %v", name, side.p.Netns, f.Scope, f.SRTT)
		}
		t.Logf("%s tcp seen from %s: %d records, %d bytes / %d packets source->dest, %d / %d back, srtt %v",
			name, side.p.Netns, c.records, c.srcBytes, c.srcPackets, c.dstBytes, c.dstPkts, f.SRTT)
	}
}

// logOurs logs the records of the test pods (the node has other traffic).
func logOurs(t *testing.T, flows []observed.Flow, drops []observed.Drop, pods ...*testkit.Pod) {
	ours := func(addrs ...netip.Addr) bool {
		for _, p := range pods {
			for _, a := range addrs {
				if a == p.IP4 || a == p.IP6 {
					return true
				}
			}
		}
		return false
	}
	for _, f := range flows {
		if ours(f.Source.Addr(), f.Dest.Addr()) {
			t.Logf("flow %+v", f)
		}
	}
	for _, d := range drops {
		if ours(d.Source.Addr(), d.Dest.Addr()) {
			t.Logf("drop %+v", d)
		}
	}
}

// TestProbeFailureDegrades loads the real probes with a drop probe that
// cannot load (an ignore reason this kernel does not have): the engine runs
// on the others and says why; with nothing else enabled, Start fails.
func TestProbeFailureDegrades(t *testing.T) {
	testkit.RequireRoot(t)
	e := New(Config{
		FlushInterval: time.Hour,
		Flows:         FlowsConfig{Enabled: true, MaxFlows: 65536, IdleTimeout: 20 * time.Second},
		Drops:         DropsConfig{Enabled: true, IgnoreReasons: []string{"NO_SUCH_REASON"}},
	}, zaptest.NewLogger(t), nil)
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	if err := st.Probes[ProbeDrop].Err; err == nil || !strings.Contains(err.Error(), "NO_SUCH_REASON") {
		t.Fatalf("drop probe error %v", err)
	}
	if st.Probes[ProbeFlow].Err != nil || st.Probes[ProbeTCP].Err != nil {
		t.Fatalf("healthy probes: %+v", st.Probes)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = New(Config{FlushInterval: time.Hour, Drops: DropsConfig{Enabled: true, IgnoreReasons: []string{"NO_SUCH_REASON"}}}, zaptest.NewLogger(t), nil)
	err := e.Start()
	if err == nil || !strings.Contains(err.Error(), "every enabled probe failed") || !strings.Contains(err.Error(), "NO_SUCH_REASON") {
		t.Fatalf("all probes failed: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}
