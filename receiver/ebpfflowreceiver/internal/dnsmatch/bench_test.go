package dnsmatch

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// BenchmarkMatcher is the user-space DNS pipeline's capacity on one core:
// one op = one query and its answer (parse both, match, format answers),
// over a realistic mix, 1000 sockets in flight, flushed every 1000 lookups.
type benchPair struct{ q, a []byte }

// benchMix is a realistic cluster mix of UDP query/answer pairs: A with two
// answers, AAAA with none (IPv4-only cluster), search-path NXDOMAIN, and a
// CNAME to an A.
func benchMix(b *testing.B) []benchPair {
	var mix []benchPair
	for i := range 64 {
		n := fmt.Sprintf("svc%d.default.svc.cluster.local.", i)
		switch i % 4 {
		case 0:
			q := question(n, dnsmessage.TypeA)
			mix = append(mix, benchPair{queryMsg(b, uint16(i), q), answerMsg(b, uint16(i), q, dnsmessage.RCodeSuccess,
				aRR(n, [4]byte{10, 96, 0, byte(i)}), aRR(n, [4]byte{10, 96, 1, byte(i)}))})
		case 1:
			q := question(n, dnsmessage.TypeAAAA)
			mix = append(mix, benchPair{queryMsg(b, uint16(i), q), answerMsg(b, uint16(i), q, dnsmessage.RCodeSuccess)})
		case 2:
			q := question("api.example.com."+n, dnsmessage.TypeA)
			mix = append(mix, benchPair{queryMsg(b, uint16(i), q), answerMsg(b, uint16(i), q, dnsmessage.RCodeNameError)})
		case 3:
			q := question(n, dnsmessage.TypeA)
			cname := dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: name(n), Class: dnsmessage.ClassINET, TTL: 5},
				Body: &dnsmessage.CNAMEResource{CNAME: name("lb." + n)}}
			mix = append(mix, benchPair{queryMsg(b, uint16(i), q), answerMsg(b, uint16(i), q, dnsmessage.RCodeSuccess,
				cname, aRR("lb."+n, [4]byte{10, 0, 0, byte(i)}))})
		}
	}
	return mix
}

// BenchmarkParse is parsing alone: one op = one answer of the mix parsed
// (header, question, answers formatted, OPT looked for).
func BenchmarkParse(b *testing.B) {
	mix := benchMix(b)
	m := newMatcher(b, Config{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		msg := mix[i%len(mix)].a
		if _, err := m.parser.Start(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := m.parser.Question(); err != nil {
			b.Fatal(err)
		}
		m.records(0, false)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkMatcher(b *testing.B) {
	mix := benchMix(b)
	m := newMatcher(b, Config{})
	qp := &observed.DNSPacket{Egress: true, Transport: observed.TransportUDP, Local: client, Remote: resolver}
	ap := &observed.DNSPacket{Transport: observed.TransportUDP, Local: client, Remote: resolver}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p := &mix[i%len(mix)]
		at := t0.Add(time.Duration(i) * time.Microsecond)
		qp.Cookie, qp.Time, qp.Payload, qp.Len = uint64(i%1000), at, p.q, uint32(len(p.q))
		m.Add(qp)
		ap.Cookie, ap.Time, ap.Payload, ap.Len = qp.Cookie, at.Add(300*time.Microsecond), p.a, uint32(len(p.a))
		m.Add(ap)
		if i%1000 == 999 {
			m.Flush(at)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	if s := m.Stats(); s.Answers != uint64(b.N) {
		b.Fatalf("%d of %d answered: %+v", s.Answers, b.N, s)
	}
}
