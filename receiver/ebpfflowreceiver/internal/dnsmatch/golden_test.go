package dnsmatch

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// goldenRecords are dnsmasq options and the questions that read them back.
var goldenRecords = []string{
	"--address=/a.test/10.1.2.3",
	"--address=/a.test/fd00::3",
	"--host-record=multi.test,10.0.0.1",
	"--host-record=multi.test,10.0.0.2",
	"--cname=alias.test,multi.test",
	"--srv-host=_http._tcp.svc.test,web.test,8080,10,5",
	"--srv-host=_http._tcp.svc.test,web2.test,8081,20,0",
	`--txt-record=t.test,hello world,q"b,semi;colon`,
	// TXT with a backslash, a control byte, UTF-8 and an empty string.
	"--dns-rr=bytes.test,16,035c01410307c3a900",
	"--ptr-record=4.3.2.1.in-addr.arpa,host.test",
	`--ptr-record=odd.test,we\ird$(x).test`,
	"--mx-host=mx.test,mail.test,10",
	"--dns-rr=u.test,65280,0aff",
	"--dns-rr=long.test,65281," + strings.Repeat("00112233445566778899aabbccddeeff", 4),
	"--dns-rr=caa.test,257,000569737375656c657473656e63727970742e6f7267",
	"--dns-rr=caa.test,257,8009697373756577696c64223b3b",
	// HTTPS: 1 . mandatory=alpn,port alpn="h2,h3" no-default-alpn port=443
	// ipv4hint=1.2.3.4,5.6.7.8 ech=qrvM ipv6hint=2001:db8::1 key65280="hi"
	"--dns-rr=h.test,65,000100000000040001000300010006026832026833000200000003000201bb0004000801020304050607080005" +
		"0003aabbcc0006001020010db8000000000000000000000001ff0000026869",
	// alpn="h2,h3\\,x\\\\y" (a comma and a backslash inside an id)
	"--dns-rr=h2.test,65,0001000001000a0268320668332c785c79",
	"--dns-rr=s.test,64,0002037376630000010003026869",
	"--dns-rr=s.test,64,00000376697000",
	"--auth-zone=zone.test",
	"--auth-server=ns.zone.test",
	"--auth-soa=2024010101,admin.zone.test,1200,180,1209600",
	"--address=/nx.test/",
}

var goldenQuestions = []struct {
	name  string
	qtype dnsmessage.Type
	rcode string
}{
	{"a.test", dnsmessage.TypeA, "NOERROR"},
	{"a.test", dnsmessage.TypeAAAA, "NOERROR"},
	{"multi.test", dnsmessage.TypeA, "NOERROR"},
	{"alias.test", dnsmessage.TypeA, "NOERROR"},
	{"_http._tcp.svc.test", dnsmessage.TypeSRV, "NOERROR"},
	{"t.test", dnsmessage.TypeTXT, "NOERROR"},
	{"bytes.test", dnsmessage.TypeTXT, "NOERROR"},
	{"4.3.2.1.in-addr.arpa", dnsmessage.TypePTR, "NOERROR"},
	{"odd.test", dnsmessage.TypePTR, "NOERROR"},
	{"mx.test", dnsmessage.TypeMX, "NOERROR"},
	{"u.test", 65280, "NOERROR"},
	{"long.test", 65281, "NOERROR"},
	{"caa.test", typeCAA, "NOERROR"},
	{"h.test", dnsmessage.TypeHTTPS, "NOERROR"},
	{"h2.test", dnsmessage.TypeHTTPS, "NOERROR"},
	{"s.test", dnsmessage.TypeSVCB, "NOERROR"},
	{"zone.test", dnsmessage.TypeSOA, "NOERROR"},
	{"nx.test", dnsmessage.TypeA, "NXDOMAIN"},
}

// TestAnswersMatchDig asks a local dnsmasq each golden question over UDP
// and TCP, feeds the wire messages to a Matcher and compares its Answers
// with what `dig +short` prints for the same question.
func TestAnswersMatchDig(t *testing.T) {
	testkit.RequireTools(t, "dnsmasq", "dig")
	dnsmasq, err := exec.LookPath("dnsmasq")
	require.NoError(t, err)
	dig, err := exec.LookPath("dig")
	require.NoError(t, err)
	server := startDNSMasq(t, dnsmasq)
	port := strconv.Itoa(int(server.Port()))

	for _, tcp := range []bool{false, true} {
		m := newMatcher(t, Config{})
		want := map[uint16][]string{}
		var qseq, aseq uint32 = 1000, 5000
		for i, g := range goldenQuestions {
			id := uint16(100 + i)
			args := []string{"+short", "@" + server.Addr().String(), "-p", port, g.name, typeString(g.qtype)}
			out, err := exec.Command(dig, args...).Output()
			require.NoError(t, err, "dig %v", args)
			if s := strings.TrimSpace(string(out)); s != "" {
				want[id] = strings.Split(s, "\n")
			}
			if g.rcode == "NOERROR" {
				require.NotEmpty(t, want[id], "dig %v", args)
			}
			q := queryMsg(t, id, question(g.name+".", g.qtype))
			a := exchange(t, server, q, tcp)
			if tcp {
				m.Add(tcpSeg(1, true, qseq, framed(q)))
				qseq += uint32(len(q) + 2)
				// Split inside the length prefix.
				f := framed(a)
				m.Add(tcpSeg(1, false, aseq, f[:1]))
				m.Add(tcpSeg(1, false, aseq+1, f[1:]))
				aseq += uint32(len(f))
				continue
			}
			m.Add(udp(1, true, 0, q))
			m.Add(udp(1, false, time.Millisecond, a))
		}
		got := m.Flush(t0.Add(time.Second))
		require.Len(t, got, len(goldenQuestions), "tcp=%v %+v", tcp, m.Stats())
		for i, l := range got {
			g := goldenQuestions[i]
			assert.Equal(t, g.name, l.Name)
			assert.Equal(t, g.rcode, l.RCode, g.name)
			// dnsmasq rotates records between answers, so order is not compared.
			// dig prints addresses and other records alike; dns.answers holds the addresses.
			var addrs, other []string
			for _, w := range want[l.ID] {
				if _, err := netip.ParseAddr(w); err == nil {
					addrs = append(addrs, w)
				} else {
					other = append(other, w)
				}
			}
			assert.ElementsMatch(t, addrs, l.Answers, "tcp=%v %s %s", tcp, g.name, l.Type)
			assert.ElementsMatch(t, other, l.Records, "tcp=%v %s %s", tcp, g.name, l.Type)
		}
		assert.Zero(t, m.Stats().Malformed)
	}
}

// startDNSMasq runs dnsmasq with the golden records on a free loopback port.
func startDNSMasq(t *testing.T, bin string) netip.AddrPort {
	t.Helper()
	l, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := netip.MustParseAddrPort(l.LocalAddr().String())
	require.NoError(t, l.Close())

	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{
		"--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=", "--no-resolv", "--no-hosts",
		"--log-facility=-", "--port=" + strconv.Itoa(int(addr.Port())),
		"--listen-address=127.0.0.1", "--bind-interfaces",
	}, goldenRecords...)
	cmd := exec.CommandContext(ctx, bin, args...)
	var log strings.Builder
	cmd.Stderr = &log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr.String())
		if err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq did not start: %v\n%s", err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exchange sends q to server and returns its answer as on the wire.
func exchange(t *testing.T, server netip.AddrPort, q []byte, tcp bool) []byte {
	t.Helper()
	network := "udp"
	if tcp {
		network = "tcp"
	}
	c, err := net.Dial(network, server.String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	if !tcp {
		_, err = c.Write(q)
		require.NoError(t, err)
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		require.NoError(t, err)
		return buf[:n]
	}
	_, err = c.Write(framed(q))
	require.NoError(t, err)
	var n [2]byte
	_, err = io.ReadFull(c, n[:])
	require.NoError(t, err)
	a := make([]byte, binary.BigEndian.Uint16(n[:]))
	_, err = io.ReadFull(c, a)
	require.NoError(t, err)
	return a
}
