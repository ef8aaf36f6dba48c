package flowtable

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

var (
	t0      = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	podA    = netip.MustParseAddr("10.201.0.1")
	podB    = netip.MustParseAddr("10.201.0.2")
	hostIP  = netip.MustParseAddr("192.168.1.10")
	extIP   = netip.MustParseAddr("93.184.216.34")
	svcIP   = netip.MustParseAddr("10.96.0.10")
	cluster = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
)

var (
	testSymbols = map[uint64]string{0xffffffff81000010: "nf_hook_slow"}
	testReasons = map[uint32]string{5: "NETFILTER_DROP", 2: "NO_SOCKET"}
)

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// testConfig resolves cgroup 100+n to pod n: a pod IP for every address that
// is not the host's.
func testConfig() Config {
	return Config{
		IdleIntervals: 2, // the receiver's defaults: 20 s idle timeout, 10 s flushes
		Identity: func(cg uint64, pid uint32, comm string, local netip.Addr) observed.Workload {
			w := observed.Workload{CgroupID: cg}
			if cg >= 100 {
				w.PodUID = "pod-" + string(rune('a'+cg-100))
				w.ContainerID = "ctr-" + string(rune('a'+cg-100))
				if local.IsValid() && local != hostIP && !local.IsLoopback() {
					w.PodIP = local
				}
			} else {
				w.PID, w.Executable = pid, comm
			}
			return w
		},
		Symbol:       func(a uint64) string { return testSymbols[a] },
		ReasonName:   func(r uint32) string { return testReasons[r] },
		IsNodeAddr:   func(a netip.Addr) bool { return a == hostIP },
		ClusterCIDRs: cluster,
	}
}

func tcpFlow(cookie uint64, local, remote netip.AddrPort, tx, rx uint64) observed.FlowSample {
	return observed.FlowSample{
		Cookie: cookie, Transport: observed.TransportTCP, Local: local, Remote: remote,
		CgroupID: 100, TxBytes: tx, TxPackets: tx / 100, RxBytes: rx, RxPackets: rx / 100,
		FirstSeen: t0, LastSeen: t0.Add(time.Second), Initiator: observed.InitiatorLocal,
	}
}

func udpFlow(cookie uint64, local, remote netip.AddrPort, tx, rx uint64) observed.FlowSample {
	s := tcpFlow(cookie, local, remote, tx, rx)
	s.Transport = observed.TransportUDP
	return s
}

func tcpSock(cookie uint64, local, remote netip.AddrPort, state observed.TCPState, cause observed.CloseCause) observed.TCPSample {
	return observed.TCPSample{
		Cookie: cookie, Local: local, Remote: remote, CgroupID: 100, State: state,
		Initiator: observed.InitiatorLocal, CloseCause: cause, OpenedAt: t0,
	}
}

func only(t *testing.T, r Result) observed.Flow {
	t.Helper()
	if len(r.Report.Flows) != 1 {
		t.Fatalf("want 1 flow record, got %d: %+v", len(r.Report.Flows), r.Report.Flows)
	}
	return r.Report.Flows[0]
}

func TestDeltas(t *testing.T) {
	tb := New(testConfig())
	a, b := ap(podA, 40000), ap(podB, 80)
	r := tb.Update(t0, []observed.FlowSample{tcpFlow(1, a, b, 1000, 5000)}, nil, nil)
	f := only(t, r)
	if f.SourceBytes != 1000 || f.DestBytes != 5000 || f.SourcePackets != 10 || f.DestPackets != 50 {
		t.Fatalf("first interval counts the whole sample: %+v", f)
	}
	r = tb.Update(t0, []observed.FlowSample{tcpFlow(1, a, b, 1500, 9000)}, nil, nil)
	f = only(t, r)
	if f.SourceBytes != 500 || f.DestBytes != 4000 || f.SourcePackets != 5 || f.DestPackets != 40 {
		t.Fatalf("second interval is the delta: %+v", f)
	}
	r = tb.Update(t0, []observed.FlowSample{tcpFlow(1, a, b, 1500, 9000)}, nil, nil)
	if len(r.Report.Flows) != 0 {
		t.Fatalf("no activity, no record: %+v", r.Report.Flows)
	}
	if r.Evicted != 0 || tb.Active() != 1 {
		t.Fatalf("evicted %d active %d", r.Evicted, tb.Active())
	}
}

func TestCounterBackwardsIsNewEntry(t *testing.T) {
	tb := New(testConfig())
	a, b := ap(podA, 40000), ap(podB, 80)
	tb.Update(t0, []observed.FlowSample{tcpFlow(1, a, b, 1000, 5000)}, nil, nil)
	s := tcpFlow(1, a, b, 300, 200)
	s.FirstSeen = t0.Add(5 * time.Second)
	s.Initiator = observed.InitiatorUnknown // recreated mid-connection: initiator not seen
	r := tb.Update(t0, []observed.FlowSample{s}, nil, nil)
	f := only(t, r)
	if f.SourceBytes != 300 || f.DestBytes != 200 {
		t.Fatalf("recreated entry counts from zero: %+v", f)
	}
	if f.LocalRole != observed.RoleClient {
		t.Fatalf("initiator is sticky across recreation: %v", f.LocalRole)
	}
	if r.Evicted != 1 || tb.Evicted() != 1 {
		t.Fatalf("recreation means the old entry was evicted: %d", r.Evicted)
	}
}

func TestRoles(t *testing.T) {
	local, remote := ap(podA, 5000), ap(extIP, 443)
	tests := []struct {
		name       string
		local      netip.AddrPort
		remote     netip.AddrPort
		flowInit   observed.Initiator
		tcpInit    observed.Initiator // 0: no tcp sample
		wantRole   observed.Role
		wantSource netip.AddrPort
	}{
		{"local initiator", local, remote, observed.InitiatorLocal, 0, observed.RoleClient, local},
		{"remote initiator", local, remote, observed.InitiatorRemote, 0, observed.RoleServer, remote},
		{"unknown, remote port lower", local, remote, observed.InitiatorUnknown, 0, observed.RoleClient, local},
		{"unknown, local port lower", ap(podA, 80), ap(extIP, 51000), observed.InitiatorUnknown, 0, observed.RoleServer, ap(extIP, 51000)},
		{"unknown, tie: remote is destination", ap(podA, 53), ap(extIP, 53), observed.InitiatorUnknown, 0, observed.RoleClient, ap(podA, 53)},
		{"tcp beats flow", local, remote, observed.InitiatorRemote, observed.InitiatorLocal, observed.RoleClient, local},
		{"tcp unknown keeps flow", local, remote, observed.InitiatorRemote, observed.InitiatorUnknown, observed.RoleServer, remote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(testConfig())
			s := tcpFlow(7, tt.local, tt.remote, 100, 300)
			s.Initiator = tt.flowInit
			var socks []observed.TCPSample
			if tt.tcpInit != 0 || strings.Contains(tt.name, "tcp") {
				k := tcpSock(7, tt.local, tt.remote, observed.TCPEstablished, observed.CloseNone)
				k.Initiator = tt.tcpInit
				socks = append(socks, k)
			}
			f := only(t, tb.Update(t0, []observed.FlowSample{s}, socks, nil))
			if f.LocalRole != tt.wantRole || f.Source != tt.wantSource {
				t.Fatalf("role %v source %v, want %v %v", f.LocalRole, f.Source, tt.wantRole, tt.wantSource)
			}
			wantSrcBytes := uint64(100)
			if tt.wantRole == observed.RoleServer {
				wantSrcBytes = 300 // what the remote source sent = received locally
			}
			if f.SourceBytes != wantSrcBytes {
				t.Fatalf("source bytes %d want %d", f.SourceBytes, wantSrcBytes)
			}
		})
	}
}

func TestTCPJoinAndClose(t *testing.T) {
	tb := New(testConfig())
	a, b := ap(podA, 40000), ap(podB, 80)
	k := tcpSock(9, a, b, observed.TCPEstablished, observed.CloseNone)
	k.SRTT, k.Retransmits, k.ResetsSent = 250*time.Microsecond, 2, 0
	s := tcpFlow(9, a, b, 1000, 2000)
	s.SRTT = time.Millisecond // the flow probe's value (read at every packet sent) wins
	f := only(t, tb.Update(t0, []observed.FlowSample{s}, []observed.TCPSample{k}, nil))
	if f.State != observed.TCPEstablished || f.SRTT != time.Millisecond || f.Retransmits != 2 || f.Closed || f.CloseCause != observed.CloseNone {
		t.Fatalf("joined fields: %+v", f)
	}

	// Retransmits alone are activity: a record with the delta.
	k.Retransmits = 5
	f = only(t, tb.Update(t0, []observed.FlowSample{s}, []observed.TCPSample{k}, nil))
	if f.Retransmits != 3 || f.SourceBytes != 0 {
		t.Fatalf("retransmit delta: %+v", f)
	}

	// Idle open TCP: no record, never expired while the socket is open.
	for range 5 {
		if r := tb.Update(t0, []observed.FlowSample{s}, []observed.TCPSample{k}, nil); len(r.Report.Flows) != 0 || len(r.DeleteFlows) != 0 {
			t.Fatalf("idle open socket: %+v", r)
		}
	}

	// Close with a last burst of bytes and a reset: exactly one final record.
	s = tcpFlow(9, a, b, 1100, 2500)
	k.State, k.CloseCause, k.ResetsReceived, k.ClosedAt = observed.TCPClose, observed.CloseRSTReceived, 1, t0.Add(time.Minute)
	r := tb.Update(t0, []observed.FlowSample{s}, []observed.TCPSample{k}, nil)
	f = only(t, r)
	if !f.Closed || f.CloseCause != observed.CloseRSTReceived || f.State != observed.TCPClose || f.SourceBytes != 100 || f.DestBytes != 500 || f.Resets != 1 || !f.End.Equal(t0.Add(time.Minute)) {
		t.Fatalf("final record: %+v", f)
	}
	if len(r.DeleteFlows) != 1 || r.DeleteFlows[0].Cookie != 9 || len(r.DeleteTCP) != 1 || r.DeleteTCP[0] != 9 {
		t.Fatalf("close deletes flow and socket: flows %v tcp %v", r.DeleteFlows, r.DeleteTCP)
	}
	if tb.Active() != 0 {
		t.Fatalf("closed flow forgotten, active %d", tb.Active())
	}

	// Late entries (a packet after close, a failed delete): deleted again, never re-reported.
	s = tcpFlow(9, a, b, 40, 0)
	r = tb.Update(t0, []observed.FlowSample{s}, []observed.TCPSample{k}, nil)
	if len(r.Report.Flows) != 0 || len(r.DeleteFlows) != 1 || len(r.DeleteTCP) != 1 || r.Evicted != 0 {
		t.Fatalf("late entries: %+v", r)
	}
}

func TestCloseWithoutCauseIsFIN(t *testing.T) {
	tb := New(testConfig())
	a, b := ap(podA, 40000), ap(podB, 80)
	k := tcpSock(9, a, b, observed.TCPClose, observed.CloseNone)
	f := only(t, tb.Update(t0, []observed.FlowSample{tcpFlow(9, a, b, 10, 10)}, []observed.TCPSample{k}, nil))
	if !f.Closed || f.CloseCause != observed.CloseFIN {
		t.Fatalf("%+v", f)
	}
}

func TestTCPOnlyRecords(t *testing.T) {
	a, b := ap(podA, 40000), ap(podB, 81)
	tests := []struct {
		name  string
		sock  observed.TCPSample
		want  bool
		cause observed.CloseCause
	}{
		{"refused connect", tcpSock(3, a, b, observed.TCPClose, observed.CloseRefused), true, observed.CloseRefused},
		{"timed-out connect", tcpSock(3, a, b, observed.TCPClose, observed.CloseTimeout), true, observed.CloseTimeout},
		{"listener close", tcpSock(3, ap(podB, 81), netip.AddrPortFrom(netip.IPv4Unspecified(), 0), observed.TCPClose, observed.CloseFIN), false, 0},
		{"open, no flow yet", tcpSock(3, a, b, observed.TCPSynSent, observed.CloseNone), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(testConfig())
			r := tb.Update(t0, nil, []observed.TCPSample{tt.sock}, nil)
			if !tt.want {
				if len(r.Report.Flows) != 0 {
					t.Fatalf("unexpected record %+v", r.Report.Flows)
				}
				return
			}
			f := only(t, r)
			if !f.Closed || f.CloseCause != tt.cause || f.Source != a || f.Dest != b || f.LocalRole != observed.RoleClient ||
				f.Local.PodUID != "pod-a" || f.Scope != observed.ScopeCluster || f.Transport != observed.TransportTCP {
				t.Fatalf("record from the socket: %+v", f)
			}
			if len(r.DeleteTCP) != 1 {
				t.Fatalf("socket deleted: %v", r.DeleteTCP)
			}
			if r := tb.Update(t0, nil, []observed.TCPSample{tt.sock}, nil); len(r.Report.Flows) != 0 {
				t.Fatalf("exactly one final record: %+v", r.Report.Flows)
			}
		})
	}
}

func TestUDPExpiry(t *testing.T) {
	tb := New(testConfig()) // IdleIntervals 2
	a, b := ap(podA, 53000), ap(podB, 53)
	s := udpFlow(4, a, b, 60, 120)
	f := only(t, tb.Update(t0, []observed.FlowSample{s}, nil, nil))
	if f.Closed || f.State != 0 || f.Transport != observed.TransportUDP {
		t.Fatalf("%+v", f)
	}
	if r := tb.Update(t0, []observed.FlowSample{s}, nil, nil); len(r.Report.Flows) != 0 || len(r.DeleteFlows) != 0 {
		t.Fatalf("one idle flush keeps it: %+v", r)
	}
	r := tb.Update(t0, []observed.FlowSample{s}, nil, nil)
	f = only(t, r)
	if !f.Closed || f.CloseCause != observed.CloseNone || f.SourceBytes != 0 {
		t.Fatalf("expiry record: %+v", f)
	}
	if len(r.DeleteFlows) != 1 || r.DeleteFlows[0].Local != a || tb.Active() != 0 || r.Evicted != 0 {
		t.Fatalf("expiry deletes: %+v", r)
	}
	// A new datagram recreates the kernel entry: a new flow, counted from zero.
	f = only(t, tb.Update(t0, []observed.FlowSample{udpFlow(4, a, b, 30, 0)}, nil, nil))
	if f.SourceBytes != 30 || f.Closed {
		t.Fatalf("%+v", f)
	}
}

func TestUntrackedTCPExpires(t *testing.T) {
	tb := New(Config{IdleIntervals: 1})
	s := tcpFlow(4, ap(podA, 40000), ap(podB, 80), 60, 120)
	tb.Update(t0, []observed.FlowSample{s}, nil, nil)
	r := tb.Update(t0, []observed.FlowSample{s}, nil, nil)
	f := only(t, r)
	if !f.Closed || f.CloseCause != observed.CloseNone || len(r.DeleteFlows) != 1 {
		t.Fatalf("TCP without a tracked socket expires like UDP: %+v", r)
	}
}

func TestEviction(t *testing.T) {
	tb := New(testConfig())
	a, b := ap(podA, 40000), ap(podB, 80)
	tb.Update(t0, []observed.FlowSample{tcpFlow(1, a, b, 10, 10), udpFlow(2, a, b, 10, 10)}, nil, nil)
	r := tb.Update(t0, []observed.FlowSample{udpFlow(2, a, b, 20, 10)}, nil, nil)
	if r.Evicted != 1 || tb.Evicted() != 1 || tb.Active() != 1 {
		t.Fatalf("evicted %d total %d active %d", r.Evicted, tb.Evicted(), tb.Active())
	}
	// The socket then closes: its close still reaches the user, built from the socket.
	k := tcpSock(1, a, b, observed.TCPClose, observed.CloseFIN)
	r = tb.Update(t0, []observed.FlowSample{udpFlow(2, a, b, 20, 10)}, []observed.TCPSample{k}, nil)
	f := only(t, r)
	if !f.Closed || f.CloseCause != observed.CloseFIN || f.SourceBytes != 0 {
		t.Fatalf("%+v", f)
	}
}

func TestDrops(t *testing.T) {
	a, b := ap(podA, 40000), ap(podB, 80)
	tb := New(testConfig())
	s := tcpFlow(1, a, b, 100, 0) // the SYN
	tb.Update(t0, []observed.FlowSample{s}, nil, nil)

	d := observed.DropSample{Reason: 5, Location: 0xffffffff81000010, Transport: observed.TransportTCP, Source: a, Dest: b, Ifindex: 3, Ifname: "veth-b", Count: 2, Bytes: 120, LastSeen: t0}
	r := tb.Update(t0, []observed.FlowSample{s}, nil, []observed.DropSample{d})
	f := only(t, r) // no traffic, but the verdict changed
	if !f.Dropped || f.SourceBytes != 0 {
		t.Fatalf("dropped flow: %+v", f)
	}
	if len(r.Report.Drops) != 1 {
		t.Fatalf("drops %+v", r.Report.Drops)
	}
	got := r.Report.Drops[0]
	if got.Reason != "NETFILTER_DROP" || got.Location != "nf_hook_slow" || got.Count != 2 || got.Bytes != 120 ||
		got.Local.PodUID != "pod-a" || got.Interface != "veth-b" || got.Source != a || got.Dest != b {
		t.Fatalf("drop record: %+v", got)
	}

	// Delta per interval; the flow is not dropped in an interval without drops.
	d.Count, d.Bytes = 5, 300
	r = tb.Update(t0, []observed.FlowSample{s}, nil, []observed.DropSample{d})
	if len(r.Report.Drops) != 1 || r.Report.Drops[0].Count != 3 || r.Report.Drops[0].Bytes != 180 {
		t.Fatalf("drop delta: %+v", r.Report.Drops)
	}
	r = tb.Update(t0, []observed.FlowSample{s}, nil, []observed.DropSample{d})
	if len(r.Report.Drops) != 0 || len(r.Report.Flows) != 0 {
		t.Fatalf("no new drops: %+v", r.Report)
	}
	r = tb.Update(t0, []observed.FlowSample{s}, nil, []observed.DropSample{d})
	if len(r.DeleteDrops) != 1 {
		t.Fatalf("idle drop key deleted: %+v", r.DeleteDrops)
	}
}

func TestDropAttribution(t *testing.T) {
	a, b := ap(podA, 40000), ap(podB, 80)
	tests := []struct {
		name    string
		flows   []observed.FlowSample
		drop    observed.DropSample
		wantPod string
		wantIP  netip.Addr
		dropped []uint64 // cookies marked dropped
	}{
		{
			name:    "reply direction matches the flow reversed",
			flows:   []observed.FlowSample{tcpFlow(1, a, b, 100, 0)},
			drop:    observed.DropSample{Reason: 2, Transport: observed.TransportTCP, Source: b, Dest: a, Count: 1},
			wantPod: "pod-a", wantIP: podA, dropped: []uint64{1},
		},
		{
			name: "both ends local: the receiver, both flows dropped",
			flows: func() []observed.FlowSample {
				srv := tcpFlow(2, b, a, 0, 100)
				srv.CgroupID, srv.Initiator = 101, observed.InitiatorRemote
				return []observed.FlowSample{tcpFlow(1, a, b, 100, 0), srv}
			}(),
			drop:    observed.DropSample{Reason: 5, Transport: observed.TransportTCP, Source: a, Dest: b, Count: 1},
			wantPod: "pod-b", wantIP: podB, dropped: []uint64{1, 2},
		},
		{
			name: "cgroup of the skb's socket decides",
			flows: func() []observed.FlowSample {
				srv := tcpFlow(2, b, a, 0, 100)
				srv.CgroupID, srv.Initiator = 101, observed.InitiatorRemote
				return []observed.FlowSample{tcpFlow(1, a, b, 100, 0), srv}
			}(),
			drop:    observed.DropSample{Reason: 5, Transport: observed.TransportTCP, Source: a, Dest: b, CgroupID: 100, Count: 1},
			wantPod: "pod-a", wantIP: podA, dropped: []uint64{1, 2},
		},
		{
			name:    "no flow: identity from the cgroup, remote address never taken as pod IP",
			flows:   []observed.FlowSample{udpFlow(1, ap(podA, 9), ap(podB, 9), 1, 1)},
			drop:    observed.DropSample{Reason: 5, Transport: observed.TransportUDP, Source: ap(extIP, 1), Dest: ap(podB, 7), CgroupID: 102, Count: 1},
			wantPod: "pod-c",
		},
		{
			name:  "no flow, no cgroup: no workload",
			flows: nil,
			drop:  observed.DropSample{Reason: 5, Transport: observed.TransportUDP, Source: ap(extIP, 1), Dest: ap(podB, 7), Count: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(testConfig())
			tb.Update(t0, tt.flows, nil, nil)
			r := tb.Update(t0, tt.flows, nil, []observed.DropSample{tt.drop})
			if len(r.Report.Drops) != 1 {
				t.Fatalf("drops: %+v", r.Report.Drops)
			}
			got := r.Report.Drops[0]
			if got.Local.PodUID != tt.wantPod || got.Local.PodIP != tt.wantIP {
				t.Fatalf("local %+v, want pod %q ip %v", got.Local, tt.wantPod, tt.wantIP)
			}
			var dropped []uint64
			for _, f := range r.Report.Flows {
				if f.Dropped {
					dropped = append(dropped, f.Local.CgroupID-99)
				}
			}
			if len(dropped) != len(tt.dropped) {
				t.Fatalf("dropped flows %v, want cookies %v", dropped, tt.dropped)
			}
		})
	}
}

func TestScope(t *testing.T) {
	tests := []struct {
		name string
		dest netip.Addr
		want observed.Scope
	}{
		{"host address", hostIP, observed.ScopeNode},
		{"loopback", netip.MustParseAddr("127.0.0.1"), observed.ScopeNode},
		{"loopback v6", netip.IPv6Loopback(), observed.ScopeNode},
		{"local pod", podB, observed.ScopeNode},
		{"service in cluster CIDR", svcIP, observed.ScopeCluster},
		{"outside", extIP, observed.ScopeExternal},
		{"outside v6", netip.MustParseAddr("2001:db8::1"), observed.ScopeExternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := New(testConfig())
			other := udpFlow(50, ap(podB, 5353), ap(extIP, 5353), 1, 0) // podB is a local flow address
			s := tcpFlow(1, ap(podA, 40000), ap(tt.dest, 443), 10, 10)
			r := tb.Update(t0, []observed.FlowSample{other, s}, nil, nil)
			for _, f := range r.Report.Flows {
				if f.Local.PodIP == podA && f.Scope != tt.want {
					t.Fatalf("scope %v want %v", f.Scope, tt.want)
				}
			}
		})
	}
	// A server-side flow's destination is the local address: node.
	tb := New(testConfig())
	s := tcpFlow(1, ap(podA, 80), ap(extIP, 50000), 10, 10)
	s.Initiator = observed.InitiatorRemote
	if f := only(t, tb.Update(t0, []observed.FlowSample{s}, nil, nil)); f.Scope != observed.ScopeNode {
		t.Fatalf("server flow scope %v", f.Scope)
	}
}

func TestRemoteWorkload(t *testing.T) {
	a, b := ap(podA, 40000), ap(podB, 80)
	cli := tcpFlow(1, a, b, 100, 200)
	srv := tcpFlow(2, b, a, 200, 100)
	srv.CgroupID, srv.Initiator = 101, observed.InitiatorRemote
	host := tcpFlow(3, ap(hostIP, 41000), ap(podB, 80), 5, 5)
	host.CgroupID, host.PID, host.Comm = 1, 42, "curl"
	ext := tcpFlow(4, ap(podA, 41001), ap(extIP, 443), 5, 5)
	tb := New(testConfig())
	r := tb.Update(t0, []observed.FlowSample{cli, srv, host, ext}, nil, nil)
	byCookie := map[uint64]observed.Flow{}
	for _, f := range r.Report.Flows {
		switch {
		case f.Local.PID == 42:
			byCookie[3] = f
		case f.Source.Port() == 41001:
			byCookie[4] = f
		case f.LocalRole == observed.RoleServer:
			byCookie[2] = f
		default:
			byCookie[1] = f
		}
	}
	if w := byCookie[1].Remote; w == nil || w.PodUID != "pod-b" || w.PodIP != podB {
		t.Fatalf("client's peer is pod b: %+v", w)
	}
	if w := byCookie[2].Remote; w == nil || w.PodUID != "pod-a" {
		t.Fatalf("server's peer is pod a: %+v", w)
	}
	if w := byCookie[3].Remote; w == nil || w.PodUID != "pod-b" {
		t.Fatalf("host client's peer is pod b: %+v", w)
	}
	if w := byCookie[4].Remote; w != nil {
		t.Fatalf("external peer has no workload: %+v", w)
	}
	if byCookie[2].Local.PodIP != podB || byCookie[3].Local.PodIP.IsValid() || byCookie[3].Local.Executable != "curl" {
		t.Fatalf("local workloads: %+v / %+v", byCookie[2].Local, byCookie[3].Local)
	}
	// Pod b's flows go: its address still names it for a while (a peer's
	// record often comes a flush later), then no more.
	r = tb.Update(t0, []observed.FlowSample{cli}, nil, nil)
	if a := tb.addrs[podB]; a == nil || a.pod == nil || a.pod.PodUID != "pod-b" {
		t.Fatalf("address forgotten at once: %+v", a)
	}
	for range 3 {
		tb.Update(t0, []observed.FlowSample{cli}, nil, nil)
	}
	if a := tb.addrs[podB]; a != nil {
		t.Fatalf("address of gone flows kept: %+v", a)
	}
}

func TestIdentityOncePerFlow(t *testing.T) {
	cfg := testConfig()
	calls := 0
	id := cfg.Identity
	cfg.Identity = func(cg uint64, pid uint32, comm string, local netip.Addr) observed.Workload {
		calls++
		return id(cg, pid, comm, local)
	}
	tb := New(cfg)
	s := tcpFlow(1, ap(podA, 40000), ap(podB, 80), 1, 1)
	for i := range 5 {
		s.TxBytes += uint64(i)
		tb.Update(t0, []observed.FlowSample{s}, nil, nil)
	}
	if calls != 1 {
		t.Fatalf("identity resolved %d times", calls)
	}
}

func TestTCPSampleFillsIdentity(t *testing.T) {
	tb := New(testConfig())
	a, b := ap(hostIP, 40000), ap(extIP, 443)
	s := tcpFlow(1, a, b, 1, 1)
	s.CgroupID, s.PID, s.Comm = 0, 0, ""
	k := tcpSock(1, a, b, observed.TCPEstablished, observed.CloseNone)
	k.CgroupID, k.PID, k.Comm = 1, 77, "wget"
	f := only(t, tb.Update(t0, []observed.FlowSample{s}, []observed.TCPSample{k}, nil))
	if f.Local.CgroupID != 1 || f.Local.PID != 77 || f.Local.Executable != "wget" || f.Scope != observed.ScopeExternal {
		t.Fatalf("%+v", f)
	}
}

func TestDefaultsWithZeroConfig(t *testing.T) {
	tb := New(Config{IdleIntervals: 2})
	d := observed.DropSample{Reason: 77, Location: 0xffffffffa0001234, Source: ap(extIP, 1), Dest: ap(hostIP, 2), CgroupID: 5, Count: 1}
	r := tb.Update(t0, nil, nil, []observed.DropSample{d})
	if got := r.Report.Drops[0]; got.Reason != "77" || got.Location != "0xffffffffa0001234" || got.Local.CgroupID != 5 || !got.Time.Equal(t0) {
		t.Fatalf("%+v", got)
	}
}

func TestListenerHandshakeFolded(t *testing.T) {
	srv, cli := ap(hostIP, 80), ap(extIP, 51000)
	listenerSock := observed.TCPSample{Cookie: 1, Local: ap(netip.IPv4Unspecified(), 80), State: observed.TCPListen, CgroupID: 1, PID: 42, Comm: "nginx"}
	// The kernel accounts SYN, SYN-ACK and ACK to the listener's cookie.
	hs := observed.FlowSample{Cookie: 1, Transport: observed.TransportTCP, Local: srv, Remote: cli, CgroupID: 1, PID: 42, Comm: "nginx",
		TxBytes: 60, TxPackets: 1, RxBytes: 112, RxPackets: 2, FirstSeen: t0, Initiator: observed.InitiatorRemote}
	child := observed.FlowSample{Cookie: 2, Transport: observed.TransportTCP, Local: srv, Remote: cli, CgroupID: 1,
		TxBytes: 5000, TxPackets: 5, RxBytes: 400, RxPackets: 4, FirstSeen: t0.Add(time.Millisecond)}
	childSock := observed.TCPSample{Cookie: 2, Local: srv, Remote: cli, State: observed.TCPEstablished, Initiator: observed.InitiatorRemote, CgroupID: 1}

	t.Run("with the tcp probe", func(t *testing.T) {
		tb := New(testConfig())
		r := tb.Update(t0, []observed.FlowSample{child, hs}, []observed.TCPSample{listenerSock, childSock}, nil)
		f := only(t, r)
		if f.LocalRole != observed.RoleServer || f.Source != cli || f.SourceBytes != 512 || f.SourcePackets != 6 || f.DestBytes != 5060 || f.DestPackets != 6 {
			t.Fatalf("folded record: %+v", f)
		}
		if f.Local.PID != 42 || f.Local.Executable != "nginx" || !f.Start.Equal(t0) {
			t.Fatalf("the listener's owner and start: %+v", f)
		}
		if len(r.DeleteFlows) != 1 || r.DeleteFlows[0].Cookie != 1 || tb.Active() != 1 {
			t.Fatalf("listener entry deleted: %+v active %d", r.DeleteFlows, tb.Active())
		}
	})
	t.Run("without the tcp probe", func(t *testing.T) {
		tb := New(testConfig())
		f := only(t, tb.Update(t0, []observed.FlowSample{hs, child}, nil, nil))
		if f.LocalRole != observed.RoleServer || f.SourceBytes != 512 || f.DestBytes != 5060 {
			t.Fatalf("folded record: %+v", f)
		}
	})
	t.Run("child appears later", func(t *testing.T) {
		tb := New(testConfig())
		for range 2 {
			if r := tb.Update(t0, []observed.FlowSample{hs}, []observed.TCPSample{listenerSock}, nil); len(r.Report.Flows) != 0 {
				t.Fatalf("pending handshake reported: %+v", r.Report.Flows)
			}
		}
		f := only(t, tb.Update(t0, []observed.FlowSample{hs, child}, []observed.TCPSample{listenerSock, childSock}, nil))
		if f.SourceBytes != 512 || f.DestBytes != 5060 {
			t.Fatalf("%+v", f)
		}
	})
	t.Run("no child ever", func(t *testing.T) {
		tb := New(testConfig())
		var got []observed.Flow
		for range 3 {
			r := tb.Update(t0, []observed.FlowSample{hs}, []observed.TCPSample{listenerSock}, nil)
			got = append(got, r.Report.Flows...)
		}
		if len(got) != 1 || !got[0].Closed || got[0].SourceBytes != 112 || got[0].LocalRole != observed.RoleServer || tb.Active() != 0 {
			t.Fatalf("half-open handshake reported once at expiry: %+v", got)
		}
	})
	t.Run("listener closes with a pending handshake", func(t *testing.T) {
		tb := New(testConfig())
		tb.Update(t0, []observed.FlowSample{hs}, []observed.TCPSample{listenerSock}, nil)
		closed := listenerSock
		closed.State, closed.CloseCause = observed.TCPClose, observed.CloseFIN
		if r := tb.Update(t0, []observed.FlowSample{hs}, []observed.TCPSample{closed}, nil); len(r.Report.Flows) != 0 || len(r.DeleteTCP) != 1 {
			t.Fatalf("listener close is not a connection: %+v", r)
		}
		r := tb.Update(t0, []observed.FlowSample{hs}, nil, nil)
		if r.Evicted != 0 || len(r.DeleteFlows) != 1 || tb.Active() != 0 || len(r.Report.Flows) != 0 {
			t.Fatalf("leftover handshake: %+v active %d", r, tb.Active())
		}
	})
}

func TestClockJitterIsNotRecreation(t *testing.T) {
	tb := New(testConfig())
	a, b := ap(podA, 40000), ap(podB, 80)
	s := tcpFlow(1, a, b, 1000, 1000)
	s.LastSeen = s.FirstSeen // a single-packet flow: first == last
	tb.Update(t0, []observed.FlowSample{s}, nil, nil)
	s.FirstSeen = s.FirstSeen.Add(3 * time.Microsecond) // boot-time conversion moved a little
	s.LastSeen = s.FirstSeen
	s.TxBytes += 10
	r := tb.Update(t0, []observed.FlowSample{s}, nil, nil)
	if f := only(t, r); f.SourceBytes != 10 || r.Evicted != 0 {
		t.Fatalf("jitter taken for a recreated entry: %+v evicted %d", f, r.Evicted)
	}
	// A first packet clearly after the last one seen is a new entry.
	s.FirstSeen = s.LastSeen.Add(time.Second)
	s.LastSeen = s.FirstSeen
	s.TxBytes = 2000
	r = tb.Update(t0, []observed.FlowSample{s}, nil, nil)
	if f := only(t, r); f.SourceBytes != 2000 || r.Evicted != 1 {
		t.Fatalf("recreated entry: %+v evicted %d", f, r.Evicted)
	}
}

func TestPeersClosingTogetherKeepRemote(t *testing.T) {
	a, b := ap(podA, 40000), ap(podB, 80)
	cli := tcpFlow(1, a, b, 100, 200)
	srv := tcpFlow(2, b, a, 200, 100)
	srv.CgroupID, srv.Initiator = 101, observed.InitiatorRemote
	closed := func(cookie uint64, l, r netip.AddrPort) observed.TCPSample {
		k := tcpSock(cookie, l, r, observed.TCPClose, observed.CloseFIN)
		if cookie == 2 {
			k.Initiator, k.CgroupID = observed.InitiatorRemote, 101
		}
		return k
	}
	for _, order := range []string{"same flush", "server a flush later"} {
		t.Run(order, func(t *testing.T) {
			tb := New(testConfig())
			var finals []observed.Flow
			if order == "same flush" {
				r := tb.Update(t0, []observed.FlowSample{cli, srv}, []observed.TCPSample{closed(1, a, b), closed(2, b, a)}, nil)
				finals = r.Report.Flows
			} else {
				r := tb.Update(t0, []observed.FlowSample{cli, srv}, []observed.TCPSample{closed(1, a, b)}, nil)
				finals = r.Report.Flows
				srv.TxBytes++
				r = tb.Update(t0, []observed.FlowSample{srv}, []observed.TCPSample{closed(2, b, a)}, nil)
				finals = append(finals, r.Report.Flows...)
			}
			n := 0
			for _, f := range finals {
				if !f.Closed {
					continue
				}
				n++
				want := "pod-b"
				if f.LocalRole == observed.RoleServer {
					want = "pod-a"
				}
				if f.Remote == nil || f.Remote.PodUID != want || f.Scope != observed.ScopeNode {
					t.Errorf("%v final: remote %+v scope %v", f.LocalRole, f.Remote, f.Scope)
				}
			}
			if n != 2 {
				t.Fatalf("finals %d: %+v", n, finals)
			}
		})
	}
}

// A flow read that fails part way: what it folded stays, but the flush
// reports nothing and infers no eviction of the flows it did not reach; the
// next read catches up without counting anything twice.
func TestUpdateBatchesReadFails(t *testing.T) {
	tb := New(testConfig())
	a := udpFlow(1, ap(podA, 40000), ap(podB, 53), 100, 0)
	b := udpFlow(2, ap(podA, 40001), ap(podB, 53), 100, 0)
	if r := tb.Update(t0, []observed.FlowSample{a, b}, nil, nil); len(r.Report.Flows) != 2 {
		t.Fatalf("first flush: %+v", r.Report.Flows)
	}

	a.TxBytes, b.TxBytes = 300, 200
	readErr := errors.New("batch lookup: interrupted")
	for range 3 { // more flushes than the idle limit: nothing may age either
		r, err := tb.UpdateBatches(t0, func(each func([]observed.FlowSample)) error {
			each([]observed.FlowSample{a}) // b's batch never comes
			return readErr
		}, nil, nil)
		if !errors.Is(err, readErr) || len(r.Report.Flows) != 0 || len(r.DeleteFlows) != 0 || r.Evicted != 0 {
			t.Fatalf("failed read: err %v, result %+v", err, r)
		}
	}
	if tb.Evicted() != 0 || tb.Active() != 2 {
		t.Fatalf("after failed reads: evicted %d, active %d", tb.Evicted(), tb.Active())
	}

	a.TxBytes = 350
	r, err := tb.UpdateBatches(t0, func(each func([]observed.FlowSample)) error {
		each([]observed.FlowSample{a})
		each([]observed.FlowSample{b})
		return nil
	}, nil, nil)
	if err != nil || len(r.Report.Flows) != 2 {
		t.Fatalf("recovered: err %v, %+v", err, r.Report.Flows)
	}
	got := map[uint16]uint64{}
	for _, f := range r.Report.Flows {
		got[f.Source.Port()] = f.SourceBytes
	}
	if got[40000] != 250 || got[40001] != 100 {
		t.Fatalf("bytes since the first flush: %v, want 40000:250 40001:100", got)
	}
}
