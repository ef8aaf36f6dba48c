package dnsmatch

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/record"
)

// BenchmarkMatcher is the user-space DNS pipeline's capacity on one core:
// one op = one query and its answer (parse both, match, format answers),
// over a realistic mix, 1000 sockets in flight, flushed every 1000 lookups.
func BenchmarkMatcher(b *testing.B) {
	type pair struct{ q, a []byte }
	var mix []pair
	for i := range 64 {
		n := fmt.Sprintf("svc%d.default.svc.cluster.local.", i)
		switch i % 4 {
		case 0: // A, two answers
			q := question(n, dnsmessage.TypeA)
			mix = append(mix, pair{queryMsg(b, uint16(i), q), answerMsg(b, uint16(i), q, dnsmessage.RCodeSuccess,
				aRR(n, [4]byte{10, 96, 0, byte(i)}), aRR(n, [4]byte{10, 96, 1, byte(i)}))})
		case 1: // AAAA, none (an IPv4-only cluster)
			q := question(n, dnsmessage.TypeAAAA)
			mix = append(mix, pair{queryMsg(b, uint16(i), q), answerMsg(b, uint16(i), q, dnsmessage.RCodeSuccess)})
		case 2: // search-path miss
			q := question("api.example.com."+n, dnsmessage.TypeA)
			mix = append(mix, pair{queryMsg(b, uint16(i), q), answerMsg(b, uint16(i), q, dnsmessage.RCodeNameError)})
		case 3: // CNAME chain
			q := question(n, dnsmessage.TypeA)
			cname := dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: name(n), Class: dnsmessage.ClassINET, TTL: 5},
				Body: &dnsmessage.CNAMEResource{CNAME: name("lb." + n)}}
			mix = append(mix, pair{queryMsg(b, uint16(i), q), answerMsg(b, uint16(i), q, dnsmessage.RCodeSuccess,
				cname, aRR("lb."+n, [4]byte{10, 0, 0, byte(i)}))})
		}
	}
	m := newMatcher(b, Config{})
	qp := &record.DNSPacket{Egress: true, Transport: record.TransportUDP, Local: client, Remote: resolver}
	ap := &record.DNSPacket{Transport: record.TransportUDP, Local: client, Remote: resolver}
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
