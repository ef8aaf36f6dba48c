package dnsmatch

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

var (
	t0       = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	client   = netip.MustParseAddrPort("10.0.0.5:40000")
	resolver = netip.MustParseAddrPort("10.96.0.10:53")
)

func name(s string) dnsmessage.Name { return dnsmessage.MustNewName(s) }

func question(n string, t dnsmessage.Type) dnsmessage.Question {
	return dnsmessage.Question{Name: name(n), Type: t, Class: dnsmessage.ClassINET}
}

func pack(t testing.TB, m dnsmessage.Message) []byte {
	t.Helper()
	b, err := m.Pack()
	require.NoError(t, err)
	return b
}

func queryMsg(t testing.TB, id uint16, q dnsmessage.Question) []byte {
	return pack(t, dnsmessage.Message{Header: dnsmessage.Header{ID: id, RecursionDesired: true}, Questions: []dnsmessage.Question{q}})
}

func aRR(n string, a [4]byte) dnsmessage.Resource {
	return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: name(n), Class: dnsmessage.ClassINET, TTL: 30}, Body: &dnsmessage.AResource{A: a}}
}

func answerMsg(t testing.TB, id uint16, q dnsmessage.Question, rcode dnsmessage.RCode, rrs ...dnsmessage.Resource) []byte {
	return pack(t, dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, Response: true, RecursionAvailable: true, RCode: rcode},
		Questions: []dnsmessage.Question{q}, Answers: rrs,
	})
}

func udp(cookie uint64, egress bool, at time.Duration, msg []byte) *observed.DNSPacket {
	p := &observed.DNSPacket{
		Time: t0.Add(at), Cookie: cookie, CgroupID: 77, Egress: egress, Transport: observed.TransportUDP,
		Local: client, Remote: resolver, Len: uint32(len(msg)), Payload: msg,
	}
	return p
}

func newMatcher(t testing.TB, cfg Config) *Matcher {
	t.Helper()
	m, err := New(withTestDefaults(cfg))
	require.NoError(t, err)
	return m
}

// withTestDefaults fills the fields a test leaves zero with the receiver's
// defaults (dns.timeout 5s, dns.max_pending 65536).
func withTestDefaults(cfg Config) Config {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 65536
	}
	return cfg
}

func TestAnswered(t *testing.T) {
	m := newMatcher(t, Config{})
	q := question("Web.Example.org.", dnsmessage.TypeA)
	m.Add(udp(1, true, 0, queryMsg(t, 4242, q)))
	assert.Equal(t, 1, m.Pending())
	// The answer echoes the question in another case (0x20 randomisation).
	m.Add(udp(1, false, 1500*time.Microsecond, answerMsg(t, 4242, question("web.example.ORG.", dnsmessage.TypeA), dnsmessage.RCodeSuccess,
		aRR("web.example.org.", [4]byte{10, 1, 1, 1}), aRR("web.example.org.", [4]byte{10, 1, 1, 2}))))
	got := m.Flush(t0.Add(time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, observed.DNSLookup{
		Cookie: 1, CgroupID: 77, Transport: observed.TransportUDP, Client: client, Server: resolver,
		ID: 4242, Name: "Web.Example.org", Type: "A", RCode: "NOERROR", Answers: []string{"10.1.1.1", "10.1.1.2"},
		Start: t0, Duration: 1500 * time.Microsecond,
	}, got[0])
	assert.Equal(t, 0, m.Pending())
	assert.Equal(t, Stats{Queries: 1, Answers: 1}, m.Stats())
	assert.Empty(t, m.Flush(t0.Add(time.Minute)), "reported once")
}

func TestRetransmissionIsOneLookup(t *testing.T) {
	m := newMatcher(t, Config{Timeout: 5 * time.Second})
	q := question("a.test.", dnsmessage.TypeAAAA)
	m.Add(udp(1, true, 0, queryMsg(t, 7, q)))
	m.Add(udp(1, true, time.Second, queryMsg(t, 7, q)))
	m.Add(udp(1, true, 2*time.Second, queryMsg(t, 7, q)))
	m.Add(udp(1, false, 2100*time.Millisecond, answerMsg(t, 7, q, dnsmessage.RCodeNameError)))
	got := m.Flush(t0.Add(3 * time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, 2, got[0].Retransmits)
	assert.Equal(t, "NXDOMAIN", got[0].RCode)
	assert.Equal(t, 2100*time.Millisecond, got[0].Duration, "from the first transmission")
	assert.EqualValues(t, 2, m.Stats().Retransmits)
}

func TestSameIDDifferentSocketsOutOfOrder(t *testing.T) {
	m := newMatcher(t, Config{})
	q := question("svc.test.", dnsmessage.TypeA)
	for c := uint64(1); c <= 3; c++ {
		m.Add(udp(c, true, time.Duration(c)*time.Millisecond, queryMsg(t, 99, q)))
	}
	for _, c := range []uint64{3, 1, 2} { // answers in another order
		m.Add(udp(c, false, 10*time.Millisecond, answerMsg(t, 99, q, dnsmessage.RCodeSuccess, aRR("svc.test.", [4]byte{10, 0, 0, byte(c)}))))
	}
	got := m.Flush(t0.Add(time.Second))
	require.Len(t, got, 3)
	for _, l := range got {
		assert.Equal(t, []string{netip.AddrFrom4([4]byte{10, 0, 0, byte(l.Cookie)}).String()}, l.Answers, "socket %d got its own answer", l.Cookie)
		assert.Equal(t, 10*time.Millisecond-time.Duration(l.Cookie)*time.Millisecond, l.Duration)
	}
}

func TestTimeoutExactlyOnce(t *testing.T) {
	m := newMatcher(t, Config{Timeout: 2 * time.Second})
	q := question("slow.test.", dnsmessage.TypeA)
	m.Add(udp(1, true, 0, queryMsg(t, 1, q)))
	m.Add(udp(1, true, time.Second, queryMsg(t, 2, q))) // the client's retry: a new id, a new query
	assert.Empty(t, m.Flush(t0.Add(1999*time.Millisecond)))
	got := m.Flush(t0.Add(2 * time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, "TIMEOUT", got[0].RCode)
	assert.Equal(t, uint16(1), got[0].ID)
	assert.Equal(t, 2*time.Second, got[0].Duration)
	got = m.Flush(t0.Add(10 * time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, uint16(2), got[0].ID)
	// A late answer is not reported again.
	m.Add(udp(1, false, 11*time.Second, answerMsg(t, 1, q, dnsmessage.RCodeSuccess)))
	assert.Empty(t, m.Flush(t0.Add(20*time.Second)))
	assert.Equal(t, Stats{Queries: 2, Timeouts: 2, UnmatchedAnswers: 1}, m.Stats())
}

func TestOtherResponder(t *testing.T) {
	m := newMatcher(t, Config{})
	q := question("odd.test.", dnsmessage.TypeA)
	m.Add(udp(1, true, 0, queryMsg(t, 5, q)))
	a := udp(1, false, time.Millisecond, answerMsg(t, 5, q, dnsmessage.RCodeSuccess))
	a.Remote = netip.MustParseAddrPort("10.96.0.11:53")
	m.Add(a)
	got := m.Flush(t0.Add(time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, resolver, got[0].Server)
	assert.Equal(t, a.Remote, got[0].Responder)
}

func TestQuestionMustMatch(t *testing.T) {
	m := newMatcher(t, Config{})
	m.Add(udp(1, true, 0, queryMsg(t, 5, question("a.test.", dnsmessage.TypeA))))
	m.Add(udp(1, false, time.Millisecond, answerMsg(t, 5, question("a.test.", dnsmessage.TypeAAAA), dnsmessage.RCodeSuccess)))
	m.Add(udp(1, false, time.Millisecond, answerMsg(t, 5, question("b.test.", dnsmessage.TypeA), dnsmessage.RCodeSuccess)))
	assert.Empty(t, m.Flush(t0.Add(time.Second)))
	assert.EqualValues(t, 2, m.Stats().UnmatchedAnswers)
	assert.Equal(t, 1, m.Pending())
}

func TestServerSideIgnored(t *testing.T) {
	m := newMatcher(t, Config{})
	q := question("a.test.", dnsmessage.TypeA)
	m.Add(udp(1, false, 0, queryMsg(t, 5, q)))                          // a query received
	m.Add(udp(1, true, 0, answerMsg(t, 5, q, dnsmessage.RCodeSuccess))) // an answer sent
	assert.Equal(t, 0, m.Pending())
	assert.Empty(t, m.Flush(t0.Add(time.Minute)))
	assert.Equal(t, Stats{WrongDirection: 2}, m.Stats())
}

func TestEvictionCounted(t *testing.T) {
	m := newMatcher(t, Config{MaxPending: 3})
	for id := range uint16(5) {
		m.Add(udp(1, true, time.Duration(id), queryMsg(t, id, question("x.test.", dnsmessage.TypeA))))
	}
	assert.Equal(t, 3, m.Pending())
	assert.EqualValues(t, 2, m.Stats().Evicted)
	got := m.Flush(t0.Add(time.Hour))
	require.Len(t, got, 3)
	assert.Equal(t, uint16(2), got[0].ID, "the oldest went first")
}

func TestExtendedRCode(t *testing.T) {
	m := newMatcher(t, Config{})
	q := question("e.test.", dnsmessage.TypeA)
	m.Add(udp(1, true, 0, queryMsg(t, 5, q)))
	var opt dnsmessage.ResourceHeader
	require.NoError(t, opt.SetEDNS0(1232, dnsmessage.RCode(16), false)) // BADVERS: upper bits 1, lower 0
	msg := pack(t, dnsmessage.Message{
		Header:      dnsmessage.Header{ID: 5, Response: true, RCode: dnsmessage.RCode(16 & 0xf)},
		Questions:   []dnsmessage.Question{q},
		Additionals: []dnsmessage.Resource{{Header: opt, Body: &dnsmessage.OPTResource{}}},
	})
	m.Add(udp(1, false, time.Millisecond, msg))
	got := m.Flush(t0.Add(time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, "BADVERS", got[0].RCode)
}

func TestTruncatedCaptureKeepsWhatParsed(t *testing.T) {
	m := newMatcher(t, Config{})
	q := question("many.test.", dnsmessage.TypeA)
	m.Add(udp(1, true, 0, queryMsg(t, 5, q)))
	var rrs []dnsmessage.Resource
	for i := range 100 {
		rrs = append(rrs, aRR("many.test.", [4]byte{10, 0, 0, byte(i)}))
	}
	full := answerMsg(t, 5, q, dnsmessage.RCodeSuccess, rrs...)
	p := udp(1, false, time.Millisecond, full[:300])
	p.Len = uint32(len(full))
	m.Add(p)
	got := m.Flush(t0.Add(time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, "NOERROR", got[0].RCode)
	assert.NotEmpty(t, got[0].Answers)
	assert.Less(t, len(got[0].Answers), 100)
	assert.Equal(t, "10.0.0.0", got[0].Answers[0])
	assert.Zero(t, m.Stats().Malformed)
}

func TestMalformed(t *testing.T) {
	m := newMatcher(t, Config{})
	loop := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1} // a name pointing at itself
	for _, b := range [][]byte{nil, {1, 2, 3}, loop, make([]byte, 12)} {
		m.Add(udp(1, true, 0, b))
	}
	assert.EqualValues(t, 4, m.Stats().Malformed)
	assert.Equal(t, 0, m.Pending())
}

func TestRecordFormats(t *testing.T) {
	m := newMatcher(t, Config{})
	q := question("f.test.", dnsmessage.TypeALL)
	h := func(typ dnsmessage.Type) dnsmessage.ResourceHeader {
		return dnsmessage.ResourceHeader{Name: name("f.test."), Type: typ, Class: dnsmessage.ClassINET, TTL: 1}
	}
	rrs := []dnsmessage.Resource{
		{Header: h(dnsmessage.TypeA), Body: &dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}}},
		{Header: h(dnsmessage.TypeAAAA), Body: &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr("2001:db8::1").As16()}},
		{Header: h(dnsmessage.TypeCNAME), Body: &dnsmessage.CNAMEResource{CNAME: name("target.test.")}},
		{Header: h(dnsmessage.TypePTR), Body: &dnsmessage.PTRResource{PTR: name("host.test.")}},
		{Header: h(dnsmessage.TypeNS), Body: &dnsmessage.NSResource{NS: name("ns1.test.")}},
		{Header: h(dnsmessage.TypeMX), Body: &dnsmessage.MXResource{Pref: 10, MX: name("mail.test.")}},
		{Header: h(dnsmessage.TypeSRV), Body: &dnsmessage.SRVResource{Priority: 10, Weight: 5, Port: 8080, Target: name("web.test.")}},
		{Header: h(dnsmessage.TypeTXT), Body: &dnsmessage.TXTResource{TXT: []string{"hello world", `q"b\`, "\x01é"}}},
		{Header: h(dnsmessage.TypeSOA), Body: &dnsmessage.SOAResource{NS: name("ns.test."), MBox: name("admin.test."), Serial: 1, Refresh: 2, Retry: 3, Expire: 4, MinTTL: 5}},
		{Header: h(dnsmessage.Type(99)), Body: &dnsmessage.UnknownResource{Type: dnsmessage.Type(99), Data: []byte{0x0a, 0xff}}},
		{Header: h(dnsmessage.Type(98)), Body: &dnsmessage.UnknownResource{Type: dnsmessage.Type(98), Data: make([]byte, 30)}},
		{Header: h(typeCAA), Body: &dnsmessage.UnknownResource{Type: typeCAA, Data: append([]byte{128, 5}, `issueca;"x"`...)}},
		{Header: h(dnsmessage.TypeHTTPS), Body: &dnsmessage.HTTPSResource{SVCBResource: dnsmessage.SVCBResource{
			Priority: 1, Target: name("."), Params: []dnsmessage.SVCParam{
				{Key: dnsmessage.SVCParamALPN, Value: []byte("\x02h2\x09h3,x\\y\"")},
				{Key: dnsmessage.SVCParamPort, Value: []byte{1, 187}},
				{Key: dnsmessage.SVCParamIPv6Hint, Value: netip.MustParseAddr("2001:db8::2").AsSlice()},
			}}}},
		{Header: h(dnsmessage.TypeSVCB), Body: &dnsmessage.SVCBResource{Priority: 0, Target: name("pool.test.")}},
		{Header: h(dnsmessage.TypeCNAME), Body: &dnsmessage.CNAMEResource{CNAME: dnsmessage.Name{Data: [255]byte{'a', ' ', '(', 0xff, '.'}, Length: 5}}},
	}
	m.Add(udp(1, true, 0, queryMsg(t, 5, q)))
	m.Add(udp(1, false, time.Millisecond, answerMsg(t, 5, q, dnsmessage.RCodeSuccess, rrs...)))
	got := m.Flush(t0.Add(time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, "ANY", got[0].Type)
	assert.Equal(t, []string{"192.0.2.1", "2001:db8::1"}, got[0].Answers)
	assert.Equal(t, []string{
		"target.test.", "host.test.", "ns1.test.", "10 mail.test.",
		"10 5 8080 web.test.", `"hello world" "q\"b\\" "\001\195\169"`,
		"ns.test. admin.test. 1 2 3 4 5", `\# 2 0AFF`,
		`\# 30 ` + strings.Repeat("00", 28) + " 0000", `128 issue "ca;\"x\""`,
		`1 . alpn="h2,h3\\,x\\\\y\"" port=443 ipv6hint=2001:db8::2`, "0 pool.test.", `a\032\(\255.`,
	}, got[0].Records)
}

func TestNames(t *testing.T) {
	assert.Equal(t, "TYPE65280", typeString(dnsmessage.Type(65280)))
	assert.Equal(t, "HTTPS", typeString(dnsmessage.TypeHTTPS))
	assert.Equal(t, "RCODE23", rcodeString(23))
	assert.Equal(t, "REFUSED", rcodeString(dnsmessage.RCodeRefused))
	assert.Equal(t, ".", nameString(name(".")))
}

func TestConfigErrorsNameTheField(t *testing.T) {
	_, err := New(Config{Timeout: -1, MaxPending: -1, MaxStreams: -1})
	require.Error(t, err)
	for _, f := range []string{"Timeout", "MaxPending", "MaxStreams"} {
		assert.ErrorContains(t, err, f)
	}
}

// tcpSeg is one TCP segment of a stream: payload at sequence seq.
func tcpSeg(cookie uint64, egress bool, seq uint32, payload []byte) *observed.DNSPacket {
	p := udp(cookie, egress, 0, payload)
	p.Transport, p.Seq = observed.TransportTCP, seq
	return p
}

func framed(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	return out
}

func TestTCPFraming(t *testing.T) {
	q1, q2 := question("one.test.", dnsmessage.TypeA), question("two.test.", dnsmessage.TypeAAAA)
	queries := framed(queryMsg(t, 1, q1), queryMsg(t, 2, q2)) // two messages in one segment
	answers := framed(
		answerMsg(t, 1, q1, dnsmessage.RCodeSuccess, aRR("one.test.", [4]byte{1, 1, 1, 1})),
		answerMsg(t, 2, q2, dnsmessage.RCodeNameError))
	m := newMatcher(t, Config{})
	const base = 1000
	m.Add(tcpSeg(9, true, base, queries))
	// The answers split at every awkward place: inside the first length,
	// inside a message, at a boundary; the middle segment retransmitted.
	cuts := []int{1, 30, len(answers) / 2, len(answers)}
	prev := 0
	for i, c := range cuts {
		m.Add(tcpSeg(9, false, 5000+uint32(prev), answers[prev:c]))
		if i == 1 {
			m.Add(tcpSeg(9, false, 5000+uint32(prev), answers[prev:c])) // retransmission
			m.Add(tcpSeg(9, false, 5000, answers[:c]))                  // and a repacketised one
		}
		prev = c
	}
	got := m.Flush(t0.Add(time.Second))
	require.Len(t, got, 2)
	assert.Equal(t, []string{"1.1.1.1"}, got[0].Answers)
	assert.Equal(t, observed.TransportTCP, got[0].Transport)
	assert.Equal(t, "NXDOMAIN", got[1].RCode)
	assert.Zero(t, m.Stats().Malformed)
}

func TestTCPGapResynchronises(t *testing.T) {
	q := question("gap.test.", dnsmessage.TypeA)
	m := newMatcher(t, Config{})
	m.Add(tcpSeg(9, true, 0, framed(queryMsg(t, 1, q))))
	ans := framed(answerMsg(t, 1, q, dnsmessage.RCodeSuccess))
	m.Add(tcpSeg(9, false, 100, ans[:5]))
	m.Add(tcpSeg(9, false, 100+uint32(len(ans))+50, framed(answerMsg(t, 1, q, dnsmessage.RCodeSuccess)))) // 50 bytes lost
	assert.Zero(t, m.Stats().Malformed, "held: the bytes may still come")
	assert.Empty(t, m.Flush(t0.Add(500*time.Millisecond)))
	got := m.Flush(t0.Add(time.Second))
	assert.EqualValues(t, 1, m.Stats().Malformed, "the partial message before the gap")
	require.Len(t, got, 1, "the segment after the gap starts a message again")
	assert.Equal(t, "NOERROR", got[0].RCode)
}

func TestTCPReordered(t *testing.T) {
	q1, q2 := question("one.test.", dnsmessage.TypeA), question("two.test.", dnsmessage.TypeA)
	m := newMatcher(t, Config{})
	m.Add(tcpSeg(9, true, 0, framed(queryMsg(t, 1, q1), queryMsg(t, 2, q2))))
	ans := framed(answerMsg(t, 1, q1, dnsmessage.RCodeSuccess, aRR("one.test.", [4]byte{1, 1, 1, 1})),
		answerMsg(t, 2, q2, dnsmessage.RCodeSuccess, aRR("two.test.", [4]byte{2, 2, 2, 2})))
	a, b := len(ans)/3, 2*len(ans)/3
	seg := func(from, to int) *observed.DNSPacket { return tcpSeg(9, false, 7000+uint32(from), ans[from:to]) }
	// The stream's first segment seen sets where it starts (SYNs carry no
	// DNS bytes); the rest arrive out of order.
	m.Add(seg(0, 5))
	third := seg(b, len(ans))
	m.Add(third)
	third.Payload[0] ^= 0xff // held segments are copies
	m.Add(seg(a, b))
	m.Add(seg(a, b)) // held twice
	assert.Empty(t, m.Flush(t0), "nothing complete before the first bytes")
	m.Add(seg(0, a+10)) // fills the gap and overlaps what is held
	third.Payload[0] ^= 0xff
	m.Add(third) // a retransmission of what was held
	got := m.Flush(t0.Add(time.Millisecond))
	require.Len(t, got, 2)
	assert.Equal(t, []string{"1.1.1.1"}, got[0].Answers)
	assert.Equal(t, []string{"2.2.2.2"}, got[1].Answers)
	assert.Zero(t, m.Stats().Malformed)
	assert.Empty(t, m.streams.gapped)
}

func TestTCPGapGivenUpWhenHeldFull(t *testing.T) {
	q := question("full.test.", dnsmessage.TypeA)
	m := newMatcher(t, Config{})
	m.Add(tcpSeg(9, true, 0, framed(queryMsg(t, 1, q))))
	m.Add(tcpSeg(9, false, 0, []byte{0, 200, 1, 2})) // a message begins
	// A capture loss before seq 10; then a burst of small held segments,
	// the last of which completes an answer: more than can be held.
	ans := framed(answerMsg(t, 1, q, dnsmessage.RCodeSuccess))
	seq := uint32(10)
	for i := 0; i < maxHeld; i++ {
		m.Add(tcpSeg(9, false, seq, ans[i:i+1]))
		seq++
	}
	assert.Zero(t, m.Stats().Malformed)
	m.Add(tcpSeg(9, false, seq, ans[maxHeld:]))
	assert.EqualValues(t, 1, m.Stats().Malformed)
	got := m.Flush(t0)
	require.Len(t, got, 1)
	assert.Equal(t, uint16(1), got[0].ID)
}

func TestTCPOverlapPastCapture(t *testing.T) {
	// A truncated capture followed by a retransmission that overlaps the
	// part the capture did not keep: the answer after it still frames.
	q1, q2 := question("big.test.", dnsmessage.TypeA), question("after.test.", dnsmessage.TypeA)
	var rrs []dnsmessage.Resource
	for i := range 100 {
		rrs = append(rrs, aRR("big.test.", [4]byte{10, 0, 0, byte(i)}))
	}
	first := framed(answerMsg(t, 1, q1, dnsmessage.RCodeSuccess, rrs...))
	second := framed(answerMsg(t, 2, q2, dnsmessage.RCodeSuccess, aRR("after.test.", [4]byte{3, 3, 3, 3})))
	stream := append(append([]byte{}, first...), second...)
	m := newMatcher(t, Config{})
	m.Add(tcpSeg(9, true, 0, framed(queryMsg(t, 1, q1), queryMsg(t, 2, q2))))
	p := tcpSeg(9, false, 0, stream[:300])
	p.Len = 1000
	m.Add(p)
	m.Add(tcpSeg(9, false, 500, stream[500:])) // overlaps [500, 1000)
	got := m.Flush(t0)
	require.Len(t, got, 2)
	assert.Equal(t, []string{"3.3.3.3"}, got[1].Answers)
	assert.Zero(t, m.Stats().Malformed)
}

func TestTCPCaptureTruncated(t *testing.T) {
	q := question("big.test.", dnsmessage.TypeA)
	var rrs []dnsmessage.Resource
	for i := range 100 {
		rrs = append(rrs, aRR("big.test.", [4]byte{10, 0, 0, byte(i)}))
	}
	first := framed(answerMsg(t, 1, q, dnsmessage.RCodeSuccess, rrs...))
	q2 := question("next.test.", dnsmessage.TypeA)
	second := framed(answerMsg(t, 2, q2, dnsmessage.RCodeSuccess, aRR("next.test.", [4]byte{2, 2, 2, 2})))
	m := newMatcher(t, Config{})
	m.Add(tcpSeg(9, true, 0, framed(queryMsg(t, 1, q), queryMsg(t, 2, q2))))
	// The probe kept 400 of the first segment's bytes; the second segment
	// carries the message's tail and the next message.
	p := tcpSeg(9, false, 0, first[:400])
	p.Len = uint32(len(first) - 20)
	m.Add(p)
	m.Add(tcpSeg(9, false, p.Len, append(first[p.Len:], second...)))
	got := m.Flush(t0.Add(time.Second))
	require.Len(t, got, 2)
	assert.NotEmpty(t, got[0].Answers)
	assert.Equal(t, []string{"2.2.2.2"}, got[1].Answers)
	assert.Zero(t, m.Stats().Malformed)
}

func TestMalformedRecordStillReported(t *testing.T) {
	m := newMatcher(t, Config{})
	q := question("p.test.", dnsmessage.TypeCNAME)
	m.Add(udp(1, true, 0, queryMsg(t, 5, q)))
	msg := answerMsg(t, 5, q, dnsmessage.RCodeSuccess, aRR("p.test.", [4]byte{1, 2, 3, 4}))
	// A second answer whose owner name is a pointer to itself.
	msg[7] = 2
	at := len(msg)
	msg = append(msg, 0xc0, byte(at>>0), 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4)
	m.Add(udp(1, false, time.Millisecond, msg))
	got := m.Flush(t0.Add(time.Second))
	require.Len(t, got, 1, "the answer came: not a timeout")
	assert.Equal(t, []string{"1.2.3.4"}, got[0].Answers)
	assert.EqualValues(t, 1, m.Stats().Malformed)
}

func TestPayloadBeyondLen(t *testing.T) {
	m := newMatcher(t, Config{})
	q := question("x.test.", dnsmessage.TypeA)
	msg := queryMsg(t, 5, q)
	p := udp(1, true, 0, append(msg, 0xde, 0xad))
	p.Len = uint32(len(msg))
	m.Add(p)
	assert.Equal(t, 1, m.Pending())
	p = tcpSeg(2, true, 0, append(framed(msg), 0xff, 0xff, 0xff))
	p.Len -= 3
	m.Add(p)
	assert.Equal(t, 2, m.Pending())
	p = udp(3, true, 0, msg)
	p.Len = maxLen + 1
	m.Add(p)
	assert.Equal(t, 2, m.Pending())
	assert.EqualValues(t, 1, m.Stats().Malformed)
}

func TestStreamsBounded(t *testing.T) {
	m := newMatcher(t, Config{MaxStreams: 2, Timeout: time.Second})
	for c := range uint64(4) {
		m.Add(tcpSeg(c, true, 0, []byte{0}))
	}
	assert.EqualValues(t, 2, m.Stats().StreamsEvicted)
	m.Flush(t0.Add(time.Hour))
	assert.Empty(t, m.streams.m, "idle streams expire")
}

// FuzzMatcher feeds packets cut from arbitrary bytes, in any direction and
// transport, with arbitrary sequence numbers, capture cuts and flushes. The
// matcher must not panic, stay within its bounds, and account for every query.
func FuzzMatcher(f *testing.F) {
	q := question("f.test.", dnsmessage.TypeA)
	qm, am := queryMsg(f, 1, q), answerMsg(f, 1, q, dnsmessage.RCodeSuccess, aRR("f.test.", [4]byte{1, 2, 3, 4}))
	f.Add(qm, am, []byte{0x01, 0x00, 0x80})
	f.Add(framed(qm), framed(am), []byte{0x03, 0x12, 0x05, 0x82})
	f.Add(qm, am[:20], []byte{0x05, 0x44, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, a, b, ops []byte) {
		const maxPending, maxStreams = 4, 2
		m := newMatcher(t, Config{MaxPending: maxPending, MaxStreams: maxStreams, Timeout: time.Second})
		var seq [2]uint32
		at := time.Duration(0)
		for i, op := range ops {
			// op bits: 0 egress, 1 tcp, 2 payload b, 3 cut, 4-5 cookie, 6 seq jump, 7 flush.
			egress := op&1 != 0
			payload := a
			if op&4 != 0 {
				payload = b
			}
			p := udp(uint64(op>>4&3), egress, at, payload)
			if op&2 != 0 {
				p.Transport = observed.TransportTCP
				d := 0
				if egress {
					d = 1
				}
				if op&0x40 != 0 {
					seq[d] += uint32(i) * 7
				}
				p.Seq = seq[d]
				seq[d] += p.Len
			}
			if op&8 != 0 && len(payload) > 0 {
				p.Payload = payload[:i%len(payload)] // a capture prefix
			}
			m.Add(p)
			at += 100 * time.Millisecond
			if op&0x80 != 0 {
				m.Flush(t0.Add(at))
			}
			if m.Pending() > maxPending || len(m.streams.m) > maxStreams {
				t.Fatalf("%d pending, %d streams", m.Pending(), len(m.streams.m))
			}
		}
		for _, l := range m.Flush(t0.Add(time.Hour)) {
			if l.RCode == "" || l.Type == "" || l.Duration < 0 {
				t.Fatalf("bad lookup: %+v", l)
			}
		}
		s := m.Stats()
		if m.Pending() != 0 || s.Queries != s.Answers+s.Timeouts+s.Evicted {
			t.Fatalf("%d pending after every timeout; %+v", m.Pending(), s)
		}
	})
}
