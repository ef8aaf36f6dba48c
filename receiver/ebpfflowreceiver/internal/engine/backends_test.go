package engine

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

type fakeServices map[netip.AddrPort]bool

func (f fakeServices) IsService(_ uint8, dst netip.AddrPort) bool { return f[dst] }

// fakeConntrack answers from a table of original tuple → reply source and
// counts the questions.
type fakeConntrack struct {
	table map[[2]netip.AddrPort]netip.AddrPort
	fail  bool
	asked int
}

func (f *fakeConntrack) ReplySource(_ uint8, src, dst netip.AddrPort) (netip.AddrPort, bool, error) {
	f.asked++
	if f.fail {
		return netip.AddrPort{}, false, errors.New("netlink: operation not permitted")
	}
	ap, ok := f.table[[2]netip.AddrPort{src, dst}]
	return ap, ok, nil
}

func (f *fakeConntrack) Close() error { return nil }

func TestBackendsOncePerConnection(t *testing.T) {
	ap := netip.MustParseAddrPort
	svc, backend := ap("10.96.0.50:80"), ap("10.1.0.20:8080")
	client, other := ap("10.1.0.10:40000"), ap("10.1.0.10:40001")
	ct := &fakeConntrack{table: map[[2]netip.AddrPort]netip.AddrPort{
		{client, svc}: backend,
		{other, svc}:  svc, // tracked, not translated
	}}
	b := newBackends(fakeServices{svc: true}, ct)
	flow := func(src, dst netip.AddrPort, role observed.Role, closed bool) observed.Flow {
		return observed.Flow{Transport: observed.TransportTCP, Source: src, Dest: dst, LocalRole: role, Closed: closed}
	}
	// Interval 1: the client's record, the backend's own server-side
	// record of another connection, a flow to a plain pod address.
	flows := []observed.Flow{
		flow(client, svc, observed.RoleClient, false),
		flow(ap("10.1.0.30:5000"), backend, observed.RoleServer, false),
		flow(client, backend, observed.RoleClient, false),
	}
	b.annotate(flows, nil)
	if flows[0].Backend != backend || flows[1].Backend.IsValid() || flows[2].Backend.IsValid() {
		t.Errorf("interval 1 backends: %v %v %v", flows[0].Backend, flows[1].Backend, flows[2].Backend)
	}
	// Interval 2 and the final record: no new question.
	for _, closed := range []bool{false, true} {
		f := []observed.Flow{flow(client, svc, observed.RoleClient, closed)}
		b.annotate(f, nil)
		if f[0].Backend != backend {
			t.Errorf("later record (closed %v): %v", closed, f[0].Backend)
		}
	}
	if ct.asked != 1 {
		t.Errorf("conntrack asked %d times for one connection", ct.asked)
	}
	if len(b.flows) != 0 {
		t.Errorf("%d flows remembered after the final record", len(b.flows))
	}
	// Not translated, and not tracked: no backend, counted.
	f := []observed.Flow{flow(other, svc, observed.RoleClient, true), flow(ap("10.1.0.10:40002"), svc, observed.RoleClient, true)}
	b.annotate(f, nil)
	if f[0].Backend.IsValid() || f[1].Backend.IsValid() {
		t.Errorf("untranslated / untracked got a backend: %v %v", f[0].Backend, f[1].Backend)
	}
	// DNS to a Service address.
	dnsSvc, dnsBackend, asker := ap("10.96.0.10:53"), ap("10.1.0.53:53"), ap("10.1.0.10:51000")
	ct.table[[2]netip.AddrPort{asker, dnsSvc}] = dnsBackend
	b.services = fakeServices{svc: true, dnsSvc: true}
	lookups := []observed.DNSLookup{{Transport: observed.TransportUDP, Client: asker, Server: dnsSvc}, {Transport: observed.TransportUDP, Client: asker, Server: ap("1.1.1.1:53")}}
	b.annotate(nil, lookups)
	if lookups[0].Backend != dnsBackend || lookups[1].Backend.IsValid() {
		t.Errorf("dns backends: %v %v", lookups[0].Backend, lookups[1].Backend)
	}
	// Failures are counted apart.
	ct.fail = true
	b.annotate([]observed.Flow{flow(ap("10.1.0.10:40003"), svc, observed.RoleClient, false)}, nil)
	if st := b.stats(); st.Found != 2 || st.NotFound != 2 || st.Failed != 1 {
		t.Errorf("stats %+v, want 2 found, 2 not found, 1 failed", st)
	}
}

// TestBackendsHTTP: a CLIENT exchange to a Service address gets the
// backend its connection's flow records get, from the same single lookup,
// whichever comes first and whatever address family the socket saw.
func TestBackendsHTTP(t *testing.T) {
	ap := netip.MustParseAddrPort
	svc, backend, client := ap("10.96.0.50:80"), ap("10.1.0.20:8080"), ap("10.1.0.10:40000")
	ct := &fakeConntrack{table: map[[2]netip.AddrPort]netip.AddrPort{{client, svc}: backend}}
	b := newBackends(fakeServices{svc: true}, ct)
	ex := func(role httpmatch.Role, local, remote netip.AddrPort) observed.HTTPExchange {
		x := observed.HTTPExchange{LocalAddr: local, RemoteAddr: remote}
		x.Role = role
		return x
	}
	xs := []observed.HTTPExchange{
		ex(httpmatch.RoleClient, ap("[::ffff:10.1.0.10]:40000"), ap("[::ffff:10.96.0.50]:80")),
		ex(httpmatch.RoleServer, ap("10.1.0.20:8080"), ap("10.1.0.30:5000")), // the server's end sees the client
		ex(httpmatch.RoleClient, ap("10.1.0.10:40001"), backend),             // a pod address: no Service
	}
	b.annotateHTTP(xs)
	if xs[0].Backend != backend || xs[1].Backend.IsValid() || xs[2].Backend.IsValid() {
		t.Errorf("exchange backends: %v %v %v", xs[0].Backend, xs[1].Backend, xs[2].Backend)
	}
	flows := []observed.Flow{{Transport: observed.TransportTCP, Source: client, Dest: svc, LocalRole: observed.RoleClient, Closed: true}}
	b.annotate(flows, nil)
	more := []observed.HTTPExchange{ex(httpmatch.RoleClient, client, svc)}
	b.annotateHTTP(more)
	if flows[0].Backend != backend || more[0].Backend != backend {
		t.Errorf("flow %v, later exchange %v, want %v", flows[0].Backend, more[0].Backend, backend)
	}
	if ct.asked != 2 { // once for the exchanges and flow, once again after the final record
		t.Errorf("conntrack asked %d times, want 2", ct.asked)
	}
}
