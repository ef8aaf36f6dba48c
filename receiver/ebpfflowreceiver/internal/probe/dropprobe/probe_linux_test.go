package dropprobe

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// normalFrees are the receiver's default drops.ignore_reasons.
var normalFrees = []string{"NOT_SPECIFIED", "QUEUE_PURGE"}

func attached(t testing.TB, cfg Config) *Probe {
	t.Helper()
	testkit.RequireRoot(t)
	p, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Attach(); err != nil {
		t.Fatal(err)
	}
	return p
}

// matching returns the samples satisfying ok (the map also holds whatever
// else the host dropped meanwhile).
func matching(t testing.TB, p *Probe, ok func(observed.DropSample) bool) []observed.DropSample {
	t.Helper()
	all, err := p.Snapshot(testkit.BootTime(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []observed.DropSample
	for _, s := range all {
		if ok(s) {
			out = append(out, s)
		}
	}
	return out
}

// sendUDP sends k datagrams of size bytes from an unconnected socket (so
// ICMP errors coming back do not fail later sends) and returns its address.
func sendUDP(t testing.TB, network string, from string, to netip.AddrPort, k, size int) netip.AddrPort {
	t.Helper()
	c, err := net.ListenPacket(network, from)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := bytes.Repeat([]byte("d"), size)
	for range k {
		if _, err := c.(*net.UDPConn).WriteToUDPAddrPort(payload, to); err != nil {
			t.Fatal(err)
		}
	}
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestUDPDrops(t *testing.T) {
	const k, size = 7, 100
	for _, tc := range []struct {
		name, network, loopback, iptables, reason string
		firewall                                  bool
		ipHeader                                  uint64
	}{
		{"netfilter ipv4", "udp4", "127.0.0.1", "iptables", "NETFILTER_DROP", true, 20},
		{"netfilter ipv6", "udp6", "::1", "ip6tables", "NETFILTER_DROP", true, 40},
		{"no socket ipv4", "udp4", "127.0.0.1", "", "NO_SOCKET", false, 20},
		{"no socket ipv6", "udp6", "::1", "", "NO_SOCKET", false, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := attached(t, Config{IgnoreReasons: normalFrees})
			ns := testkit.NewNetns(t, "ebpfflow-drop")
			dst := netip.AddrPortFrom(netip.MustParseAddr(tc.loopback), 5353)
			if tc.firewall {
				ns.Run(t, tc.iptables, "-A", "INPUT", "-p", "udp", "--dport", "5353", "-j", "DROP")
			}
			start := time.Now()
			var src netip.AddrPort
			ns.Do(t, func() { src = sendUDP(t, tc.network, net.JoinHostPort(tc.loopback, "0"), dst, k, size) })

			got := matching(t, p, func(s observed.DropSample) bool { return s.Dest == dst && s.Source == src })
			if len(got) != 1 {
				t.Fatalf("want one aggregate for %v -> %v, got %+v", src, dst, got)
			}
			s := got[0]
			t.Logf("%+v", s)
			if name := p.ReasonName(s.Reason); name != tc.reason {
				t.Errorf("reason %s, want %s", name, tc.reason)
			}
			if s.Count != k || s.Bytes != k*(tc.ipHeader+8+size) {
				t.Errorf("count %d bytes %d, want %d and %d (IP layer)", s.Count, s.Bytes, k, k*(tc.ipHeader+8+size))
			}
			if s.Transport != observed.TransportUDP || s.Location == 0 || s.Ifname != "lo" || s.Ifindex != 1 {
				t.Errorf("transport %v location %#x if %d/%q, want udp, a kernel address, 1/lo", s.Transport, s.Location, s.Ifindex, s.Ifname)
			}
			if s.LastSeen.Before(start.Add(-time.Second)) || s.LastSeen.After(time.Now().Add(time.Second)) {
				t.Errorf("last seen %v, test started %v", s.LastSeen, start)
			}

			// Delete forgets exactly that entry.
			if err := p.Delete(got); err != nil {
				t.Fatal(err)
			}
			if again := matching(t, p, func(x observed.DropSample) bool { return x.Dest == dst && x.Source == src }); len(again) != 0 {
				t.Errorf("still there after Delete: %+v", again)
			}
		})
	}
}

// netlinkDrops sends k messages to a netlink port nobody holds:
// netlink_unicast frees each with plain kfree_skb(), i.e. NOT_SPECIFIED.
func netlinkDrops(t testing.TB, k int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_USERSOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for range k {
		err := unix.Sendto(fd, []byte("ebpfflow"), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: 0x7ffffff0})
		if err != unix.ECONNREFUSED {
			t.Fatalf("netlink send: %v, want ECONNREFUSED", err)
		}
	}
}

func TestIgnoreReasons(t *testing.T) {
	notSpecified := func(p *Probe) func(observed.DropSample) bool {
		return func(s observed.DropSample) bool { return p.ReasonName(s.Reason) == "NOT_SPECIFIED" }
	}
	t.Run("NOT_SPECIFIED ignored", func(t *testing.T) {
		p := attached(t, Config{IgnoreReasons: []string{"NOT_SPECIFIED", "QUEUE_PURGE"}})
		netlinkDrops(t, 5)
		if got := matching(t, p, notSpecified(p)); len(got) != 0 {
			t.Errorf("NOT_SPECIFIED reported by default: %+v", got)
		}
	})
	t.Run("empty list counts NOT_SPECIFIED", func(t *testing.T) {
		p := attached(t, Config{IgnoreReasons: []string{}})
		netlinkDrops(t, 5)
		var n uint64
		for _, s := range matching(t, p, notSpecified(p)) {
			if s.Source.IsValid() {
				continue // some other NOT_SPECIFIED free on this host
			}
			n += s.Count
		}
		if n < 5 { // other netlink users may add to the same (site, zero tuple) key
			t.Errorf("NOT_SPECIFIED count %d, want >= 5", n)
		}
	})
	t.Run("configured reason is ignored", func(t *testing.T) {
		p := attached(t, Config{IgnoreReasons: []string{"NO_SOCKET", "NOT_SPECIFIED"}})
		ns := testkit.NewNetns(t, "ebpfflow-drop")
		dst := netip.MustParseAddrPort("127.0.0.1:5354")
		ns.Do(t, func() { sendUDP(t, "udp4", "127.0.0.1:0", dst, 3, 10) })
		if got := matching(t, p, func(s observed.DropSample) bool { return s.Dest == dst }); len(got) != 0 {
			t.Errorf("ignored NO_SOCKET reported: %+v", got)
		}
	})
}

func TestLoadRejectsUnknownReason(t *testing.T) {
	testkit.RequireRoot(t)
	_, err := Load(Config{IgnoreReasons: []string{"NOT_SPECIFIED", "NO_SUCH_REASON"}})
	if err == nil {
		t.Fatal("loaded with an unknown reason")
	}
	for _, want := range []string{`"NO_SUCH_REASON"`, "NETFILTER_DROP", "NO_SOCKET"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestCounters(t *testing.T) {
	p := attached(t, Config{IgnoreReasons: []string{}})
	netlinkDrops(t, 3)
	c, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Events < 3 || c.MapFull != 0 || c.DecodeErrors != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestMapFull(t *testing.T) {
	p := attached(t, Config{MaxEntries: 1, IgnoreReasons: normalFrees})
	ns := testkit.NewNetns(t, "ebpfflow-drop")
	// Three distinct destinations = three keys; the map holds one.
	ns.Do(t, func() {
		for port := uint16(6000); port < 6003; port++ {
			sendUDP(t, "udp4", "127.0.0.1:0", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), 1, 1)
		}
	})
	c, err := p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.MapFull < 2 {
		t.Errorf("map full %d, want >= 2 (%+v)", c.MapFull, c)
	}
}

// A full receive buffer drops at the socket: the kernel passes it as rx_sk,
// so the drop carries the receiving socket's cgroup.
func TestSocketReceiveBufferDrop(t *testing.T) {
	p := attached(t, Config{IgnoreReasons: normalFrees})
	cg := testkit.InChildCgroup(t)
	ns := testkit.NewNetns(t, "ebpfflow-drop")

	const k, size = 200, 1000
	var rcv *net.UDPConn
	var src netip.AddrPort
	ns.Do(t, func() {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rcv = c.(*net.UDPConn)
		if err := rcv.SetReadBuffer(1); err != nil { // clamped to the minimum
			t.Fatal(err)
		}
		src = sendUDP(t, "udp4", "127.0.0.1:0", rcv.LocalAddr().(*net.UDPAddr).AddrPort(), k, size)
	})
	defer rcv.Close()
	dst := rcv.LocalAddr().(*net.UDPAddr).AddrPort()
	received := 0
	buf := make([]byte, 2048)
	for {
		rcv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := rcv.Read(buf); err != nil {
			break
		}
		received++
	}

	got := matching(t, p, func(s observed.DropSample) bool { return s.Dest == dst && s.Source == src })
	if len(got) != 1 {
		t.Fatalf("want one aggregate, got %+v (received %d of %d)", got, received, k)
	}
	s := got[0]
	t.Logf("%+v (received %d)", s, received)
	if name := p.ReasonName(s.Reason); name != "SOCKET_RCVBUFF" {
		t.Errorf("reason %s, want SOCKET_RCVBUFF", name)
	}
	if s.Count != uint64(k-received) || s.Count == 0 {
		t.Errorf("count %d, want %d sent - %d received", s.Count, k, received)
	}
	if s.CgroupID != cg {
		t.Errorf("cgroup id %d, want the receiving socket's %d", s.CgroupID, cg)
	}
}

func TestTCPAndICMPDrops(t *testing.T) {
	p := attached(t, Config{IgnoreReasons: normalFrees})
	ns := testkit.NewNetns(t, "ebpfflow-drop")
	ns.Run(t, "iptables", "-A", "INPUT", "-p", "icmp", "--icmp-type", "echo-request", "-j", "DROP")

	tcpDst := netip.MustParseAddrPort("127.0.0.1:5355")
	ns.Do(t, func() {
		d := net.Dialer{Timeout: time.Second}
		if _, err := d.Dial("tcp4", tcpDst.String()); err == nil {
			t.Fatal("connect to a closed port succeeded")
		}
		c, err := net.ListenPacket("ip4:icmp", "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echo := []byte{8, 0, 0xf7, 0xfe, 0, 1, 0, 0} // type 8, checksum, id 1, seq 0
		for range 3 {
			if _, err := c.WriteTo(echo, &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
				t.Fatal(err)
			}
		}
	})

	syn := matching(t, p, func(s observed.DropSample) bool {
		return s.Dest == tcpDst && s.Transport == observed.TransportTCP && p.ReasonName(s.Reason) == "NO_SOCKET"
	})
	if len(syn) != 1 || syn[0].Count != 1 || syn[0].Bytes < 40 || syn[0].Source.Addr() != tcpDst.Addr() || syn[0].Source.Port() == 0 {
		t.Errorf("SYN to a closed port: %+v, want one NO_SOCKET packet with the client port", syn)
	}

	icmp := matching(t, p, func(s observed.DropSample) bool {
		return s.Transport == observed.TransportICMP && s.Ifname == "lo" && p.ReasonName(s.Reason) == "NETFILTER_DROP" &&
			s.Dest.Addr() == netip.MustParseAddr("127.0.0.1")
	})
	if len(icmp) != 1 || icmp[0].Count != 3 || icmp[0].Bytes != 3*28 || icmp[0].Source.Port() != 0 || icmp[0].Dest.Port() != 0 {
		t.Errorf("ICMP echo drops: %+v, want 3 packets of 28 bytes without ports", icmp)
	}
}
