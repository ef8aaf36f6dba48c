package dnsprobe

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/privileged"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/probetest"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/record"
)

// capture is a running probe and what it has delivered (payloads copied).
type capture struct {
	mu   sync.Mutex
	pkts []record.DNSPacket
	p    *Probe
}

func (c *capture) all() []record.DNSPacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pkts)
}

func startCapture(t *testing.T) *capture {
	t.Helper()
	privileged.Require(t)
	p, err := Load(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Attach(probetest.CgroupV2Mount(t)); err != nil {
		p.Close()
		t.Fatal(err)
	}
	c := &capture{p: p}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	boot := probetest.BootTime(t)
	go func() {
		done <- p.Run(ctx, boot, func(pkt *record.DNSPacket) {
			cp := *pkt
			cp.Payload = bytes.Clone(pkt.Payload)
			c.mu.Lock()
			c.pkts = append(c.pkts, cp)
			c.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		p.Close()
	})
	return c
}

// waitFor polls until ok holds for the delivered packets.
func (c *capture) waitFor(t *testing.T, what string, ok func([]record.DNSPacket) bool) []record.DNSPacket {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pkts := c.all()
		if ok(pkts) {
			return pkts
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not captured in 5s; %d packets captured", what, len(pkts))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// resolverPair is a client namespace and a namespace running dnsmasq on
// 10.200.7.2 and fd00:207::2 with one record.
func resolverPair(t *testing.T) (client probetest.Netns, v4, v6 netip.Addr) {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Fatalf("dnsmasq not installed (run `make deps`): %v", err)
	}
	a, b := probetest.VethPair(t)
	a.Run(t, "ip", "-6", "addr", "add", "fd00:207::1/64", "dev", "veth-a", "nodad")
	b.Run(t, "ip", "-6", "addr", "add", "fd00:207::2/64", "dev", "veth-b", "nodad")
	dir := t.TempDir()
	cmd := exec.Command("ip", "netns", "exec", string(b), "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
		"--bind-interfaces", "--listen-address=10.200.7.2,fd00:207::2", "--user=root", "--pid-file="+filepath.Join(dir, "pid"),
		"--host-record=web.probe.test,10.1.1.1,fd00:1::1", "--local=/probe.test/")
	log, err := os.Create(filepath.Join(dir, "dnsmasq.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); log.Close() })
	for i := 0; ; i++ {
		out, _ := exec.Command("ip", "netns", "exec", string(b), "ss", "-Htln", "sport = :53").Output()
		if len(bytes.TrimSpace(out)) > 0 {
			break
		}
		if i > 200 {
			b, _ := os.ReadFile(filepath.Join(dir, "dnsmasq.log"))
			t.Fatalf("dnsmasq did not start:\n%s", b)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return a, netip.MustParseAddr("10.200.7.2"), netip.MustParseAddr("fd00:207::2")
}

func query(t *testing.T, id uint16, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	b, err := (&dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}},
	}).Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUDPAndTCPExact asks dnsmasq from a Go socket in a fresh cgroup, over
// UDP and TCP, IPv4 and IPv6, and checks every field of what the probe
// captured against what the socket itself sent and received: the socket's
// cookie, its cgroup, its addresses, and the DNS bytes exactly.
func TestUDPAndTCPExact(t *testing.T) {
	c := startCapture(t)
	client, v4, v6 := resolverPair(t)
	cgroup := probetest.InChildCgroup(t)
	for _, tc := range []struct {
		name, network string
		server        netip.Addr
		typ           dnsmessage.Type
	}{
		{"udp4", "udp", v4, dnsmessage.TypeA},
		{"udp6", "udp", v6, dnsmessage.TypeAAAA},
		{"tcp4", "tcp", v4, dnsmessage.TypeA},
		{"tcp6", "tcp", v6, dnsmessage.TypeAAAA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				conn   net.Conn
				err    error
				sent   = query(t, 0x5150, "web.probe.test.", tc.typ)
				answer []byte
			)
			server := netip.AddrPortFrom(tc.server, 53)
			client.Do(t, func() { conn, err = net.Dial(tc.network, server.String()) })
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cookie := probetest.CookieOf(t, conn.(syscall.Conn))
			local := netip.MustParseAddrPort(conn.LocalAddr().String())
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			if tc.network == "udp" {
				if _, err := conn.Write(sent); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 4096)
				n, err := conn.Read(buf)
				if err != nil {
					t.Fatal(err)
				}
				answer = buf[:n]
			} else {
				// One write of the length and the message: one segment.
				framed := binary.BigEndian.AppendUint16(nil, uint16(len(sent)))
				if _, err := conn.Write(append(framed, sent...)); err != nil {
					t.Fatal(err)
				}
				var l [2]byte
				if _, err := io.ReadFull(conn, l[:]); err != nil {
					t.Fatal(err)
				}
				answer = make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(conn, answer); err != nil {
					t.Fatal(err)
				}
				sent = binary.BigEndian.AppendUint16(nil, uint16(len(sent)))
				sent = append(sent, query(t, 0x5150, "web.probe.test.", tc.typ)...)
				answer = append(l[:], answer...)
			}
			mine := func(pkts []record.DNSPacket) (out []record.DNSPacket) {
				for _, p := range pkts {
					if p.Cookie == cookie {
						out = append(out, p)
					}
				}
				return out
			}
			pkts := mine(c.waitFor(t, "query and answer", func(all []record.DNSPacket) bool {
				var in, out []byte
				for _, p := range mine(all) {
					if p.Egress {
						out = append(out, p.Payload...)
					} else {
						in = append(in, p.Payload...)
					}
				}
				return len(out) >= len(sent) && len(in) >= len(answer)
			}))
			var in, out []byte
			var inSeq, outSeq []uint32
			for _, p := range pkts {
				if p.CgroupID != cgroup {
					t.Errorf("cgroup id %d, the socket's is %d", p.CgroupID, cgroup)
				}
				if p.Local != local || p.Remote != server {
					t.Errorf("local %v remote %v, socket %v → %v", p.Local, p.Remote, local, server)
				}
				if p.Transport.String() != tc.network {
					t.Errorf("transport %v", p.Transport)
				}
				if int(p.Len) != len(p.Payload) {
					t.Errorf("wire length %d, captured %d (small messages are captured whole)", p.Len, len(p.Payload))
				}
				if time.Since(p.Time) > time.Minute || time.Until(p.Time) > time.Second {
					t.Errorf("packet time %v is not now", p.Time)
				}
				if p.Egress {
					out = append(out, p.Payload...)
					outSeq = append(outSeq, p.Seq)
				} else {
					in = append(in, p.Payload...)
					inSeq = append(inSeq, p.Seq)
				}
			}
			if !bytes.Equal(out, sent) {
				t.Errorf("captured query\n%x\nsocket sent\n%x", out, sent)
			}
			if !bytes.Equal(in, answer) {
				t.Errorf("captured answer\n%x\nsocket received\n%x", in, answer)
			}
			if tc.network == "udp" && (len(outSeq) != 1 || outSeq[0] != 0) {
				t.Errorf("UDP packets carry no sequence number: %v", outSeq)
			}
		})
	}
	for _, p := range c.all() {
		if p.Local.Port() == 53 {
			t.Errorf("a resolver-side packet was captured: %+v", p)
		}
	}
}

// TestDigOracle lets dig ask over UDP and TCP and checks the probe saw the
// query id dig printed and an answer with the addresses dig printed.
func TestDigOracle(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatalf("dig not installed (run `make deps`): %v", err)
	}
	c := startCapture(t)
	client, v4, v6 := resolverPair(t)
	for _, tc := range []struct {
		args      []string
		transport record.Transport
	}{
		{[]string{"@" + v4.String(), "web.probe.test", "A"}, record.TransportUDP},
		{[]string{"+tcp", "@" + v4.String(), "web.probe.test", "A"}, record.TransportTCP},
		{[]string{"@" + v6.String(), "web.probe.test", "AAAA"}, record.TransportUDP},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := exec.Command("ip", append([]string{"netns", "exec", string(client), "dig"}, tc.args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("dig: %v\n%s", err, out)
			}
			var id uint16
			var addr string
			for _, line := range strings.Split(string(out), "\n") {
				if i := strings.Index(line, ", id: "); i >= 0 {
					fmt.Sscan(line[i+len(", id: "):], &id)
				}
				if f := strings.Fields(line); len(f) == 5 && f[0] == "web.probe.test." {
					addr = f[4]
				}
			}
			if id == 0 || addr == "" {
				t.Fatalf("dig output without id or answer:\n%s", out)
			}
			c.waitFor(t, "dig's query and answer", func(all []record.DNSPacket) bool {
				var q, a bool
				for _, p := range all {
					if p.Transport != tc.transport {
						continue
					}
					msg := p.Payload
					if p.Transport == record.TransportTCP && len(msg) > 2 {
						msg = msg[2:]
					}
					var m dnsmessage.Message
					if m.Unpack(msg) != nil || m.ID != id {
						continue
					}
					q = q || (p.Egress && !m.Response)
					for _, rr := range m.Answers {
						switch b := rr.Body.(type) {
						case *dnsmessage.AResource:
							a = a || (!p.Egress && netip.AddrFrom4(b.A).String() == addr)
						case *dnsmessage.AAAAResource:
							a = a || (!p.Egress && netip.AddrFrom16(b.AAAA).String() == addr)
						}
					}
				}
				return q && a
			})
		})
	}
}

// TestOnlyPort53 sends UDP and TCP to another port: nothing is captured.
func TestOnlyPort53(t *testing.T) {
	c := startCapture(t)
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn, err := net.Dial("udp", l.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cookie := probetest.CookieOf(t, conn.(*net.UDPConn))
	for range 10 {
		conn.Write(query(t, 1, "x.test.", dnsmessage.TypeA))
	}
	time.Sleep(300 * time.Millisecond)
	for _, p := range c.all() {
		if p.Cookie == cookie {
			t.Fatalf("captured a packet to port %d", p.Remote.Port())
		}
	}
}
