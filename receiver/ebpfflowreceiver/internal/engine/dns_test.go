package engine

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/dnsmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// fakeDNS delivers its packets, then blocks until ctx ends.
type fakeDNS struct {
	fakeBase
	pkts []observed.DNSPacket
	fed  chan struct{}
}

func (f *fakeDNS) Run(ctx context.Context, _ time.Time, handle func(*observed.DNSPacket)) error {
	for i := range f.pkts {
		handle(&f.pkts[i])
	}
	close(f.fed)
	<-ctx.Done()
	return nil
}

func (f *fakeDNS) Drain(time.Duration) bool { return true }

func dnsPkt(t *testing.T, egress bool, at time.Time, resp bool) observed.DNSPacket {
	msg := dnsmessage.Message{Header: dnsmessage.Header{ID: 9, Response: resp},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName("a.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	b, err := msg.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return observed.DNSPacket{Time: at, Cookie: 3, CgroupID: 42, Egress: egress, Transport: observed.TransportUDP,
		Local: netip.MustParseAddrPort("10.201.0.1:5353"), Remote: netip.MustParseAddrPort("10.201.0.53:53"), Len: uint32(len(b)), Payload: b}
}

// TestDNSLookupsReported: the reader feeds the matcher, each flush carries
// the lookups with their workload, and a flush whose map reads fail still
// delivers them.
func TestDNSLookupsReported(t *testing.T) {
	var mu sync.Mutex
	var reports []observed.Report
	e := New(Config{FlushInterval: 10 * time.Second, Flows: FlowsConfig{Enabled: true}, DNS: DNSConfig{Enabled: true, Timeout: 5 * time.Second, MaxPending: 65536}}, nil, func(r observed.Report) {
		mu.Lock()
		reports = append(reports, r)
		mu.Unlock()
	})
	fl, _, _ := withFakes(e, &journal{})
	now := time.Now()
	dns := &fakeDNS{fakeBase: fakeBase{name: ProbeDNS, j: &journal{}}, fed: make(chan struct{}),
		pkts: []observed.DNSPacket{dnsPkt(t, true, now, false), dnsPkt(t, false, now.Add(time.Millisecond), true)}}
	e.dns = dns
	e.slots = append(e.slots, &slot{name: ProbeDNS, p: dns})
	var err error
	if e.matcher, err = dnsmatch.New(dnsmatch.Config{Timeout: 5 * time.Second, MaxPending: 65536}); err != nil {
		t.Fatal(err)
	}
	e.identity = func(cg uint64, _ uint32, _ string, a netip.Addr) observed.Workload {
		return observed.Workload{CgroupID: cg, PodIP: a}
	}
	fl.setErr(errors.New("map read failed")) // the lookups must not wait for the maps
	e.run()
	<-dns.fed
	e.flush(now.Add(time.Second))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 1 || len(reports[0].DNS) != 1 {
		t.Fatalf("reports %+v", reports)
	}
	l := reports[0].DNS[0]
	if l.RCode != "NOERROR" || l.Duration != time.Millisecond || l.Local.CgroupID != 42 || l.Local.PodIP.String() != "10.201.0.1" {
		t.Fatalf("lookup %+v", l)
	}
	if st := e.Stats(); st.DNS.Answers != 1 || st.DNSPending != 0 {
		t.Fatalf("stats %+v", st.DNS)
	}
}
