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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// capture is a running probe and what it has delivered (payloads copied).
type capture struct {
	mu   sync.Mutex
	pkts []observed.DNSPacket
	p    *Probe
}

func (c *capture) all() []observed.DNSPacket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pkts)
}

func startCapture(t *testing.T) *capture {
	t.Helper()
	testkit.RequireRoot(t)
	p, err := Load(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Attach(testkit.CgroupV2Mount(t)); err != nil {
		p.Close()
		t.Fatal(err)
	}
	c := &capture{p: p}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	boot := testkit.BootTime(t)
	go func() {
		done <- p.Run(ctx, boot, func(pkt *observed.DNSPacket) {
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
func (c *capture) waitFor(t *testing.T, what string, ok func([]observed.DNSPacket) bool) []observed.DNSPacket {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Run sleeps until the ring is a quarter full or drained.
		if !c.p.Drain(time.Second) {
			t.Fatal("Drain: Run did not read the ring within 1s")
		}
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

// web is the record the test server holds: two A and one AAAA.
var web = testkit.DNSRecord{Name: "web.probe.test", Addrs: []netip.Addr{
	netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("10.1.1.2"), netip.MustParseAddr("fd00:1::1")}}

// noServerSide fails t for any captured packet of the server's sockets: the
// probe captures the asking side only.
func noServerSide(t *testing.T, c *capture, srv *testkit.DNSServer) {
	t.Helper()
	for _, p := range c.all() {
		if slices.Contains(srv.Addrs, p.Local.Addr()) || p.Local.Port() == 53 {
			t.Errorf("a resolver-side packet was captured: %v %v → %v", p.Transport, p.Local, p.Remote)
		}
	}
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
	client, srv := testkit.DNSPods(t, web)
	cgroup := testkit.InChildCgroup(t)
	for _, tc := range []struct {
		name, network string
		server        netip.Addr
		typ           dnsmessage.Type
	}{
		{"udp4", "udp", testkit.DNSServerV4, dnsmessage.TypeA},
		{"udp6", "udp", testkit.DNSServerV6, dnsmessage.TypeAAAA},
		{"tcp4", "tcp", testkit.DNSServerV4, dnsmessage.TypeA},
		{"tcp6", "tcp", testkit.DNSServerV6, dnsmessage.TypeAAAA},
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
			cookie := testkit.CookieOf(t, conn.(syscall.Conn))
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
			mine := func(pkts []observed.DNSPacket) (out []observed.DNSPacket) {
				for _, p := range pkts {
					if p.Cookie == cookie {
						out = append(out, p)
					}
				}
				return out
			}
			pkts := mine(c.waitFor(t, "query and answer", func(all []observed.DNSPacket) bool {
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
			var lastQuery, firstAnswer time.Time
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
					outSeq = append(outSeq, p.Seq, p.Seq+p.Len)
					lastQuery = p.Time
				} else {
					in = append(in, p.Payload...)
					inSeq = append(inSeq, p.Seq, p.Seq+p.Len)
					if firstAnswer.IsZero() {
						firstAnswer = p.Time
					}
				}
			}
			if !bytes.Equal(out, sent) {
				t.Errorf("captured query\n%x\nsocket sent\n%x", out, sent)
			}
			if !bytes.Equal(in, answer) {
				t.Errorf("captured answer\n%x\nsocket received\n%x", in, answer)
			}
			if firstAnswer.Before(lastQuery) {
				t.Errorf("answer at %v before the query at %v", firstAnswer, lastQuery)
			}
			if tc.network == "udp" && (len(outSeq) != 2 || outSeq[0] != 0) {
				t.Errorf("UDP packets carry no sequence number: %v", outSeq)
			}
			if tc.network == "tcp" {
				// Each segment starts where the previous one ended.
				for _, seqs := range [][]uint32{outSeq, inSeq} {
					for i := 2; i < len(seqs); i += 2 {
						if seqs[i] != seqs[i-1] {
							t.Errorf("segment at seq %d after one ending at %d", seqs[i], seqs[i-1])
						}
					}
				}
			}
		})
	}
	noServerSide(t, c, srv)
}

// dig is what dig printed about one exchange.
type dig struct {
	id                    uint16
	querySize, answerSize int
	answers               []netip.Addr
}

// runDig asks the server from the client namespace, printing the query too
// (+qr): its id and size, the answer's size and addresses.
func runDig(t *testing.T, client testkit.Netns, args ...string) dig {
	t.Helper()
	args = append([]string{"netns", "exec", string(client), "dig", "+qr", "+tries=1", "+time=3"}, args...)
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	var d dig
	for line := range strings.SplitSeq(string(out), "\n") {
		if i := strings.Index(line, ", id: "); i >= 0 && d.id == 0 {
			fmt.Sscan(line[i+len(", id: "):], &d.id)
		}
		if v, ok := strings.CutPrefix(line, ";; QUERY SIZE: "); ok {
			fmt.Sscan(v, &d.querySize)
		}
		if v, ok := strings.CutPrefix(line, ";; MSG SIZE  rcvd: "); ok {
			fmt.Sscan(v, &d.answerSize)
		}
		if f := strings.Fields(line); len(f) == 5 && f[0] == web.Name+"." && (f[3] == "A" || f[3] == "AAAA") {
			d.answers = append(d.answers, netip.MustParseAddr(f[4]))
		}
	}
	if d.id == 0 || d.querySize == 0 || d.answerSize == 0 || len(d.answers) == 0 {
		t.Fatalf("dig printed no id, sizes or answers:\n%s", out)
	}
	return d
}

// exchange is one socket's captured query and answer.
type exchange struct {
	pkts          []observed.DNSPacket
	query, answer []byte // DNS messages, TCP framing checked and removed
	qLen, aLen    uint32 // L4 payload bytes on the wire
}

// findExchange looks in pkts for the socket that sent a query with id to
// server over transport, and returns its packets once query and answer are
// complete.
func findExchange(pkts []observed.DNSPacket, transport observed.Transport, server netip.AddrPort, id uint16) (exchange, bool) {
	byCookie := map[uint64][]observed.DNSPacket{}
	for _, p := range pkts {
		if p.Transport == transport && p.Remote == server {
			byCookie[p.Cookie] = append(byCookie[p.Cookie], p)
		}
	}
	for _, ps := range byCookie {
		x := exchange{pkts: ps}
		var ok [2]bool
		for i, egress := range []bool{true, false} {
			var msg []byte
			var n uint32
			var dir []observed.DNSPacket
			for _, p := range ps {
				if p.Egress == egress {
					dir = append(dir, p)
					n += p.Len
				}
			}
			slices.SortFunc(dir, func(a, b observed.DNSPacket) int { return int(int32(a.Seq - b.Seq)) })
			for _, p := range dir {
				msg = append(msg, p.Payload...)
			}
			if transport == observed.TransportTCP {
				if len(msg) < 2 || int(binary.BigEndian.Uint16(msg))+2 != len(msg) {
					continue
				}
				msg = msg[2:]
			} else if len(dir) != 1 {
				continue
			}
			ok[i] = true
			if egress {
				x.query, x.qLen = msg, n
			} else {
				x.answer, x.aLen = msg, n
			}
		}
		var q dnsmessage.Header
		var parser dnsmessage.Parser
		if ok[0] && ok[1] {
			if q, _ = parser.Start(x.query); q.ID == id {
				return x, true
			}
		}
	}
	return exchange{}, false
}

// TestDig lets dig ask the server over UDP and TCP, IPv4 and IPv6, for A and
// AAAA, from a client pod in a fresh cgroup, and checks what the probe
// captured field by field against the client and against what dig printed:
// the query with dig's id and size, then the answer with dig's addresses
// and size, all from one socket of the client's cgroup.
func TestDig(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Fatalf("dig not installed (run `make deps`): %v", err)
	}
	c := startCapture(t)
	client, srv := testkit.DNSPods(t, web)
	cgroup := testkit.InChildCgroup(t) // dig inherits it
	for _, transport := range []observed.Transport{observed.TransportUDP, observed.TransportTCP} {
		for _, server := range []netip.Addr{testkit.DNSServerV4, testkit.DNSServerV6} {
			for _, typ := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
				local := testkit.DNSClientV4
				if server.Is6() {
					local = testkit.DNSClientV6
				}
				qtype := strings.TrimPrefix(typ.String(), "Type")
				t.Run(fmt.Sprintf("%v/%v/%s", transport, server, qtype), func(t *testing.T) {
					args := []string{"@" + server.String(), web.Name, qtype}
					if transport == observed.TransportTCP {
						args = append(args, "+tcp")
					}
					d := runDig(t, client, args...)
					var want []netip.Addr
					for _, a := range web.Addrs {
						if a.Is4() == (typ == dnsmessage.TypeA) {
							want = append(want, a)
						}
					}
					slices.SortFunc(d.answers, netip.Addr.Compare)
					if !slices.Equal(d.answers, want) {
						t.Fatalf("dig answered %v, the server holds %v", d.answers, want)
					}

					remote := netip.AddrPortFrom(server, 53)
					var x exchange
					c.waitFor(t, "dig's query and answer", func(all []observed.DNSPacket) (ok bool) {
						x, ok = findExchange(all, transport, remote, d.id)
						return ok
					})
					var lastQuery, firstAnswer time.Time
					for _, p := range x.pkts {
						if p.Cookie == 0 || p.Cookie != x.pkts[0].Cookie {
							t.Errorf("cookie %d, the exchange's %d", p.Cookie, x.pkts[0].Cookie)
						}
						if p.CgroupID != cgroup {
							t.Errorf("cgroup id %d, dig's is %d", p.CgroupID, cgroup)
						}
						if p.Local.Addr() != local || p.Local.Port() == 0 || p.Local != x.pkts[0].Local {
							t.Errorf("local %v, dig asks from %v", p.Local, local)
						}
						if p.Remote != remote {
							t.Errorf("remote %v, dig asked %v", p.Remote, remote)
						}
						if int(p.Len) != len(p.Payload) {
							t.Errorf("wire length %d, captured %d (small messages are captured whole)", p.Len, len(p.Payload))
						}
						if p.Egress {
							lastQuery = p.Time
						} else if firstAnswer.IsZero() {
							firstAnswer = p.Time
						}
					}
					if firstAnswer.Before(lastQuery) {
						t.Errorf("answer at %v before the query at %v", firstAnswer, lastQuery)
					}
					framing := uint32(0)
					if transport == observed.TransportTCP {
						framing = 2 // the length prefix
					}
					if x.qLen != uint32(d.querySize)+framing || x.aLen != uint32(d.answerSize)+framing {
						t.Errorf("wire lengths query %d answer %d, dig sent %d received %d (+%d framing)",
							x.qLen, x.aLen, d.querySize, d.answerSize, framing)
					}

					var q, a dnsmessage.Message
					if err := q.Unpack(x.query); err != nil {
						t.Fatalf("captured query: %v", err)
					}
					if q.ID != d.id || q.Response || len(q.Questions) != 1 ||
						q.Questions[0].Name.String() != web.Name+"." || q.Questions[0].Type != typ {
						t.Errorf("captured query %+v, dig asked id %d %s %s", q, d.id, web.Name, qtype)
					}
					if err := a.Unpack(x.answer); err != nil {
						t.Fatalf("captured answer: %v", err)
					}
					var got []netip.Addr
					for _, rr := range a.Answers {
						switch b := rr.Body.(type) {
						case *dnsmessage.AResource:
							got = append(got, netip.AddrFrom4(b.A))
						case *dnsmessage.AAAAResource:
							got = append(got, netip.AddrFrom16(b.AAAA))
						}
					}
					slices.SortFunc(got, netip.Addr.Compare)
					if a.ID != d.id || !a.Response || a.RCode != dnsmessage.RCodeSuccess || !slices.Equal(got, d.answers) {
						t.Errorf("captured answer id %d rcode %v addresses %v, dig got id %d addresses %v",
							a.ID, a.RCode, got, d.id, d.answers)
					}
				})
			}
		}
	}
	noServerSide(t, c, srv)
	cnt, err := c.p.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if cnt.Events == 0 || cnt.RingbufFull != 0 || cnt.ParseErrors != 0 || cnt.DecodeErrors != 0 {
		t.Errorf("counters %+v", cnt)
	}
	if t.Failed() {
		t.Logf("dnsmasq:\n%s", srv.Log())
	}
}

// TestNotCaptured checks what must not be captured: UDP and TCP to other
// ports, and a socket on port 53 receiving a query and sending the answer
// (a resolver), while its asker's query and answer are.
func TestNotCaptured(t *testing.T) {
	c := startCapture(t)
	ns := testkit.NewNetns(t, "ebpfflow-dns-other")
	var (
		udpSrv, resolver, asker net.PacketConn
		udpCli, tcpCli          net.Conn
		tcpLn                   net.Listener
	)
	ns.Do(t, func() {
		open := func(c io.Closer, err error) {
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
		}
		var err error
		udpSrv, err = net.ListenPacket("udp4", "127.0.0.1:5353")
		open(udpSrv, err)
		udpCli, err = net.Dial("udp4", "127.0.0.1:5353")
		open(udpCli, err)
		tcpLn, err = net.Listen("tcp4", "127.0.0.1:8053")
		open(tcpLn, err)
		tcpCli, err = net.Dial("tcp4", "127.0.0.1:8053")
		open(tcpCli, err)
		resolver, err = net.ListenPacket("udp6", "[::1]:53")
		open(resolver, err)
		asker, err = net.ListenPacket("udp6", "[::1]:0")
		open(asker, err)
	})
	tcpSrv, err := tcpLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer tcpSrv.Close()
	q := query(t, 7, "x.probe.test.", dnsmessage.TypeA)
	buf := make([]byte, 512)
	exchange := func(send func() error, recv func() error) {
		t.Helper()
		if err := send(); err != nil {
			t.Fatal(err)
		}
		if err := recv(); err != nil {
			t.Fatal(err)
		}
	}
	// Other ports, both ways.
	exchange(func() error { _, err := udpCli.Write(q); return err },
		func() error { _, _, err := udpSrv.ReadFrom(buf); return err })
	exchange(func() error { _, err := udpSrv.WriteTo(q, udpCli.LocalAddr()); return err },
		func() error { _, err := udpCli.Read(buf); return err })
	exchange(func() error { _, err := tcpCli.Write(q); return err },
		func() error { _, err := io.ReadFull(tcpSrv, buf[:len(q)]); return err })
	exchange(func() error { _, err := tcpSrv.Write(q); return err },
		func() error { _, err := io.ReadFull(tcpCli, buf[:len(q)]); return err })
	// A lookup on port 53: only the asker's side is DNS to capture.
	var from net.Addr
	exchange(func() error { _, err := asker.WriteTo(q, resolver.LocalAddr()); return err },
		func() (err error) { _, from, err = resolver.ReadFrom(buf); return err })
	exchange(func() error { _, err := resolver.WriteTo(q, from); return err },
		func() error { _, _, err := asker.ReadFrom(buf); return err })

	// The ring delivers in order: once the asker's answer is in, so is
	// anything captured before it.
	askerCookie := testkit.CookieOf(t, asker.(syscall.Conn))
	c.waitFor(t, "the asker's query and answer", func(all []observed.DNSPacket) bool {
		var q, a bool
		for _, p := range all {
			if p.Cookie == askerCookie {
				q, a = q || p.Egress, a || !p.Egress
			}
		}
		return q && a
	})
	not := map[uint64]string{}
	for name, conn := range map[string]any{"udp client to 5353": udpCli, "udp server on 5353": udpSrv,
		"tcp client to 8053": tcpCli, "tcp server on 8053": tcpSrv, "resolver on 53": resolver} {
		not[testkit.CookieOf(t, conn.(syscall.Conn))] = name
	}
	for _, p := range c.all() {
		if name, ok := not[p.Cookie]; ok {
			t.Errorf("captured a packet of the %s: %v %v → %v egress=%v", name, p.Transport, p.Local, p.Remote, p.Egress)
		}
	}
}

// TestLargeAnswer asks for a name with 200 addresses: over UDP with EDNS
// the answer fills the server's 1232-byte limit and is captured whole; over
// TCP it spans segments longer than the capture, each captured as the
// prefix of its bytes at its sequence number, with its whole wire length.
func TestLargeAnswer(t *testing.T) {
	c := startCapture(t)
	big := testkit.DNSRecord{Name: "big.probe.test"}
	for i := range 200 {
		big.Addrs = append(big.Addrs, netip.AddrFrom4([4]byte{10, 2, byte(i / 100), byte(i%100 + 1)}))
	}
	client, _ := testkit.DNSPods(t, big)
	server := netip.AddrPortFrom(testkit.DNSServerV4, 53)
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 0x0b16, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(big.Name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(4096, dnsmessage.RCodeSuccess, false); err != nil {
		t.Fatal(err)
	}
	q.Additionals = []dnsmessage.Resource{{Header: opt, Body: &dnsmessage.OPTResource{}}}
	query, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			var conn net.Conn
			client.Do(t, func() { conn, err = net.Dial(network, server.String()) })
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			cookie := testkit.CookieOf(t, conn.(syscall.Conn))
			var answer []byte
			if network == "udp" {
				conn.Write(query)
				buf := make([]byte, 65536)
				n, err := conn.Read(buf)
				if err != nil {
					t.Fatal(err)
				}
				answer = buf[:n]
				if n < 1000 || n > captureSize {
					t.Fatalf("UDP answer of %d bytes, want the server's 1232-byte limit", n)
				}
			} else {
				conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(query))), query...))
				var l [2]byte
				if _, err := io.ReadFull(conn, l[:]); err != nil {
					t.Fatal(err)
				}
				answer = make([]byte, 2+int(binary.BigEndian.Uint16(l[:])))
				copy(answer, l[:])
				if _, err := io.ReadFull(conn, answer[2:]); err != nil {
					t.Fatal(err)
				}
				if len(answer) < 2*captureSize {
					t.Fatalf("TCP answer of %d bytes, want several segments", len(answer))
				}
			}
			var in []observed.DNSPacket
			c.waitFor(t, "the whole answer", func(all []observed.DNSPacket) bool {
				in = nil
				n := 0
				for _, p := range all {
					if p.Cookie == cookie && !p.Egress {
						in = append(in, p)
						n += int(p.Len)
					}
				}
				return n >= len(answer)
			})
			truncated := false
			for _, p := range in {
				off := int(p.Seq - in[0].Seq)
				if network == "udp" {
					off = 0
				}
				if want := min(int(p.Len), captureSize); len(p.Payload) != want {
					t.Errorf("captured %d bytes of a %d-byte segment, want %d", len(p.Payload), p.Len, want)
				}
				if off+int(p.Len) > len(answer) || !bytes.Equal(p.Payload, answer[off:off+len(p.Payload)]) {
					t.Errorf("segment at offset %d (%d bytes) is not the answer's bytes there", off, p.Len)
				}
				truncated = truncated || int(p.Len) > len(p.Payload)
			}
			if network == "tcp" && !truncated {
				t.Errorf("no segment longer than the %d-byte capture: %d segments for %d bytes", captureSize, len(in), len(answer))
			}
		})
	}
}

// TestRunReturnsOnClose checks that Close ends a blocked Run with nil.
func TestRunReturnsOnClose(t *testing.T) {
	testkit.RequireRoot(t)
	p, err := Load(Config{RingBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background(), time.Now(), func(*observed.DNSPacket) {}) }()
	time.Sleep(50 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still blocked 5s after Close")
	}
}

// TestDrainAndCancel checks that a query the kernel did not wake the reader
// for (far below a quarter of the ring) is handed over by Drain alone, and
// that cancelling ctx ends a blocked Run with nil.
func TestDrainAndCancel(t *testing.T) {
	testkit.RequireRoot(t)
	p, err := Load(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Attach(testkit.CgroupV2Mount(t)); err != nil {
		t.Fatal(err)
	}
	client, _ := testkit.DNSPods(t, web)
	var got atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- p.Run(ctx, testkit.BootTime(t), func(pkt *observed.DNSPacket) {
			if pkt.Egress && pkt.Remote.Port() == 53 {
				got.Add(1)
			}
		})
	}()
	for !p.running.Load() {
		time.Sleep(time.Millisecond)
	}
	if !p.Drain(time.Second) {
		t.Fatal("Drain of an empty ring timed out")
	}
	client.Run(t, "dig", "+short", "+tries=1", "+time=2", "@"+testkit.DNSServerV4.String(), web.Name)
	time.Sleep(300 * time.Millisecond) // what the old reader's polling took
	if n := got.Load(); n != 0 {
		t.Fatalf("%d queries delivered before Drain: the reader was woken for a single record", n)
	}
	if !p.Drain(time.Second) {
		t.Fatal("Drain timed out")
	}
	if n := got.Load(); n != 1 {
		t.Fatalf("after Drain: %d queries delivered, want 1", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still blocked 5s after its context was cancelled")
	}
}

// TestAttachErrors checks that a directory outside cgroup v2 is refused
// with an error that says so.
func TestAttachErrors(t *testing.T) {
	testkit.RequireRoot(t)
	p, err := Load(Config{RingBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	err = p.Attach(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "cgroup2 mount point") {
		t.Fatalf("attach to a plain directory: %v", err)
	}
}

// TestLoadRejectsRingBytes needs no privileges: the size is checked first.
func TestLoadRejectsRingBytes(t *testing.T) {
	for _, n := range []int{-1, 1, 3 << 20, os.Getpagesize() / 2, 2 << 30} {
		if _, err := Load(Config{RingBytes: n}); err == nil || !strings.Contains(err.Error(), "RingBytes") {
			t.Errorf("RingBytes %d: %v", n, err)
		}
	}
}
