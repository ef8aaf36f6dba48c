package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// natNetns is a namespace that DNATs connections to a "Service" address
// to a local "backend", as kube-proxy does in a node's namespace (here in
// OUTPUT, since the client is local to the namespace).
func natNetns(t testing.TB) testkit.Netns {
	t.Helper()
	testkit.RequireRoot(t)
	testkit.RequireTools(t, "ip", "iptables", "ip6tables", "conntrack")
	ns := testkit.NewNetns(t, "ebpfflow-ct")
	ns.Run(t, "ip", "addr", "add", "10.250.0.1/32", "dev", "lo")
	ns.Run(t, "ip", "-6", "addr", "add", "fd00:250::1/128", "dev", "lo", "nodad")
	ns.Run(t, "ip", "route", "add", "10.96.250.0/24", "dev", "lo")
	ns.Run(t, "ip", "-6", "route", "add", "fd00:96::/64", "dev", "lo")
	for _, p := range []string{"tcp", "udp"} {
		ns.Run(t, "iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-d", "10.96.250.1", "-p", p, "--dport", "80", "-j", "DNAT", "--to-destination", "10.250.0.1:8080")
		ns.Run(t, "ip6tables", "-w", "-t", "nat", "-A", "OUTPUT", "-d", "fd00:96::1", "-p", p, "--dport", "80", "-j", "DNAT", "--to-destination", "[fd00:250::1]:8080")
	}
	return ns
}

// oracle asks the conntrack tool for the reply source of the entry whose
// original source port is sport.
func oracle(t testing.TB, ns testkit.Netns, proto string, family string, sport uint16) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", string(ns), "conntrack", "-L", "-f", family, "-p", proto, "--orig-port-src", fmt.Sprint(sport)).Output()
	if err != nil {
		t.Fatalf("conntrack -L: %v", err)
	}
	// "tcp 6 119 TIME_WAIT src=A dst=B sport=P dport=Q src=C dst=D sport=R dport=S ..."
	f := strings.Fields(string(out))
	var srcs, sports []string
	for _, x := range f {
		if v, ok := strings.CutPrefix(x, "src="); ok {
			srcs = append(srcs, v)
		}
		if v, ok := strings.CutPrefix(x, "sport="); ok {
			sports = append(sports, v)
		}
	}
	if len(srcs) < 2 || len(sports) < 2 {
		t.Fatalf("conntrack -L output: %q", out)
	}
	return net.JoinHostPort(srcs[1], sports[1])
}

func TestReplySourceAgainstConntrackTool(t *testing.T) {
	ns := natNetns(t)
	var c *Client
	type conn struct {
		name, proto, family string
		src, dst            netip.AddrPort
		want                string
	}
	var conns []conn
	ns.Do(t, func() {
		var err error
		if c, err = Open(); err != nil {
			t.Fatal(err)
		}
		for _, x := range []struct{ name, network, family, listen, svc, want string }{
			{"tcp4 via dnat", "tcp4", "ipv4", "10.250.0.1:8080", "10.96.250.1:80", "10.250.0.1:8080"},
			{"tcp6 via dnat", "tcp6", "ipv6", "[fd00:250::1]:8080", "[fd00:96::1]:80", "[fd00:250::1]:8080"},
			{"tcp4 direct", "tcp4", "ipv4", "10.250.0.1:9090", "10.250.0.1:9090", "10.250.0.1:9090"},
		} {
			l, err := net.Listen(x.network, x.listen)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				if s, err := l.Accept(); err == nil {
					s.Close()
				}
			}()
			d, err := net.Dial(x.network, x.svc)
			if err != nil {
				t.Fatalf("%s: %v", x.name, err)
			}
			defer d.Close()
			conns = append(conns, conn{x.name, "tcp", x.family,
				d.LocalAddr().(*net.TCPAddr).AddrPort(), netip.MustParseAddrPort(x.svc), x.want})
		}
		for _, x := range []struct{ name, network, family, listen, svc, want string }{
			{"udp4 via dnat", "udp4", "ipv4", "10.250.0.1:8080", "10.96.250.1:80", "10.250.0.1:8080"},
			{"udp6 via dnat", "udp6", "ipv6", "[fd00:250::1]:8080", "[fd00:96::1]:80", "[fd00:250::1]:8080"},
		} {
			l, err := net.ListenPacket(x.network, x.listen)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			d, err := net.Dial(x.network, x.svc)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := d.Write([]byte("query")); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, conn{x.name, "udp", x.family,
				d.LocalAddr().(*net.UDPAddr).AddrPort(), netip.MustParseAddrPort(x.svc), x.want})
		}
	})
	defer c.Close()
	for _, x := range conns {
		t.Run(x.name, func(t *testing.T) {
			proto := uint8(6)
			if x.proto == "udp" {
				proto = 17
			}
			got, err := c.ReplySource(proto, x.src, x.dst)
			if err != nil {
				t.Fatalf("ReplySource(%v → %v): %v", x.src, x.dst, err)
			}
			if got.String() != x.want {
				t.Errorf("ReplySource(%v → %v) = %v, want %v", x.src, x.dst, got, x.want)
			}
			if o := oracle(t, ns, x.proto, x.family, x.src.Port()); o != got.String() {
				t.Errorf("conntrack tool says %s, client %v", o, got)
			}
		})
	}
	t.Run("not found", func(t *testing.T) {
		_, err := c.ReplySource(6, netip.MustParseAddrPort("10.9.9.9:1111"), netip.MustParseAddrPort("10.96.250.1:80"))
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown tuple: %v, want ErrNotFound", err)
		}
	})
	t.Run("mixed families", func(t *testing.T) {
		if _, err := c.ReplySource(6, netip.MustParseAddrPort("10.9.9.9:1111"), netip.MustParseAddrPort("[fd00::1]:80")); err == nil {
			t.Error("no error for mixed families")
		}
	})
}

// BenchmarkReplySource is the cost of one lookup (one per new connection
// to a Service address) in a table of about b.N entries.
func BenchmarkReplySource(b *testing.B) {
	ns := natNetns(b)
	var (
		c   *Client
		src netip.AddrPort
	)
	ns.Do(b, func() {
		var err error
		if c, err = Open(); err != nil {
			b.Fatal(err)
		}
		l, err := net.Listen("tcp4", "10.250.0.1:8080")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		d, err := net.Dial("tcp4", "10.96.250.1:80")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close() })
		src = d.LocalAddr().(*net.TCPAddr).AddrPort()
	})
	defer c.Close()
	dst := netip.MustParseAddrPort("10.96.250.1:80")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ReplySource(6, src, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParse: whatever the socket returns, parse neither panics nor reads
// out of bounds.
func FuzzParse(f *testing.F) {
	// A reply-shaped entry: the request's tuple, typed as an entry's reply.
	entry := appendRequest(nil, 7, 6, netip.MustParseAddrPort("10.1.0.1:8080"), netip.MustParseAddrPort("10.1.0.2:40000"))
	binary.NativeEndian.PutUint16(entry[4:], unix.NFNL_SUBSYS_CTNETLINK<<8|ipctnlMsgCtNew)
	binary.NativeEndian.PutUint16(entry[unix.NLMSG_HDRLEN+4+2:], ctaTupleReply|unix.NLA_F_NESTED)
	if got, done, err := parse(entry, 7); !done || err != nil || got.String() != "10.1.0.1:8080" {
		f.Fatalf("seed entry: %v %v %v", got, done, err)
	}
	f.Add(entry, uint32(7))
	f.Add([]byte{}, uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, seq uint32) {
		_, _, _ = parse(b, seq)
	})
}
