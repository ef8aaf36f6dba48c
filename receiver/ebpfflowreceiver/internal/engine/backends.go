package engine

import (
	"net/netip"
	"sync/atomic"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// ServiceAddresses tells Service addresses apart (the cluster view does):
// a connection to one is NATed to a backend on its way out of the node.
type ServiceAddresses interface {
	IsService(proto uint8, dst netip.AddrPort) bool
}

// replySource asks the node's connection tracking where a connection went
// (conntrack on Linux): the reply direction's source, and false when the
// connection is not tracked.
type replySource interface {
	ReplySource(proto uint8, src, dst netip.AddrPort) (netip.AddrPort, bool, error)
	Close() error
}

// BackendStats counts the backend lookups of connections to Service
// addresses.
type BackendStats struct {
	Found, NotFound, Failed uint64
	// Err is why lookups are off (nil while they run, or when not asked for).
	Err error
}

// maxBackendFlows bounds the flows whose backend is remembered; beyond it
// the memory is cleared and open flows are looked up again.
const maxBackendFlows = 1 << 16

type backendKey struct {
	transport observed.Transport
	src, dst  netip.AddrPort
}

// backends finds and remembers the backend of each client connection to a
// Service address: one lookup per connection, at its first report.
type backends struct {
	services ServiceAddresses
	ct       replySource
	flows    map[backendKey]netip.AddrPort // zero value: looked up, not found

	found, notFound, failed atomic.Uint64
}

func newBackends(services ServiceAddresses, ct replySource) *backends {
	return &backends{services: services, ct: ct, flows: make(map[backendKey]netip.AddrPort)}
}

func (b *backends) lookup(tr observed.Transport, src, dst netip.AddrPort) netip.AddrPort {
	ap, ok, err := b.ct.ReplySource(uint8(tr), src, dst)
	switch {
	case err != nil:
		b.failed.Add(1)
	case ok && ap != dst:
		b.found.Add(1)
		return ap
	default:
		// Not tracked, or tracked without NAT (the address is a Service's,
		// but nothing translated it here, e.g. a socket-level load balancer).
		b.notFound.Add(1)
	}
	return netip.AddrPort{}
}

// annotate sets Backend on the flows and lookups addressed to a Service.
func (b *backends) annotate(flows []observed.Flow, lookups []observed.DNSLookup) {
	if len(b.flows) > maxBackendFlows {
		clear(b.flows)
	}
	for i := range flows {
		f := &flows[i]
		// The server's end sees the client itself; only the client's
		// end addresses a Service.
		if f.LocalRole != observed.RoleClient {
			continue
		}
		k := backendKey{transport: f.Transport, src: f.Source, dst: f.Dest}
		be, ok := b.flows[k]
		if !ok {
			if !b.services.IsService(uint8(f.Transport), f.Dest) {
				continue
			}
			be = b.lookup(f.Transport, f.Source, f.Dest)
			b.flows[k] = be
		}
		f.Backend = be
		if f.Closed {
			delete(b.flows, k)
		}
	}
	for i := range lookups {
		l := &lookups[i]
		if b.services.IsService(uint8(l.Transport), l.Server) {
			l.Backend = b.lookup(l.Transport, l.Client, l.Server)
		}
	}
}

// annotateHTTP sets Backend on the CLIENT exchanges addressed to a
// Service, sharing the per-connection lookup with the connection's flow
// records (the flow's final record forgets it).
func (b *backends) annotateHTTP(xs []observed.HTTPExchange) {
	for i := range xs {
		x := &xs[i]
		if x.Role != httpmatch.RoleClient {
			continue
		}
		src, dst := unmapped(x.LocalAddr), unmapped(x.RemoteAddr)
		k := backendKey{transport: observed.TransportTCP, src: src, dst: dst}
		be, ok := b.flows[k]
		if !ok {
			if !b.services.IsService(uint8(observed.TransportTCP), dst) {
				continue
			}
			be = b.lookup(observed.TransportTCP, src, dst)
			b.flows[k] = be
		}
		x.Backend = be
	}
}

// unmapped is a socket address as flow records carry it: a dual-stack
// socket's IPv4-mapped address as IPv4.
func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func (b *backends) stats() BackendStats {
	return BackendStats{Found: b.found.Load(), NotFound: b.notFound.Load(), Failed: b.failed.Load()}
}
