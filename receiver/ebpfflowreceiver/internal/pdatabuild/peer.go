package pdatabuild

import (
	"net/netip"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/clusterview"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// Peers names the addresses of records in the cluster: the cluster view.
type Peers interface {
	// Resolve says what an address was at the time of the traffic, and
	// counts the lookup in the view's self-telemetry.
	Resolve(proto uint8, addr netip.AddrPort, at time.Time) clusterview.Endpoint
	// Lookup is Resolve without counting (for metrics of a record whose
	// log record already counted it).
	Lookup(proto uint8, addr netip.AddrPort, at time.Time) clusterview.Endpoint
	PodByUID(uid string) *clusterview.Pod
	InCluster(a netip.Addr) bool
}

// peer is one side of a record as the cluster view names it.
type peer struct {
	ep          clusterview.Endpoint
	backend     *clusterview.Pod // the pod that answered for a Service address
	backendAddr netip.AddrPort   // its address, when the node's NAT told it
}

// sideKeys are the attribute keys of one side's identity.
type sideKeys struct {
	pod, namespace, workload, kind, service, node string
}

func keysOf(side string) sideKeys {
	return sideKeys{
		pod:       semconv.OnSide(side, semconv.AttrPodName),
		namespace: semconv.OnSide(side, semconv.AttrK8sNamespaceName),
		workload:  semconv.OnSide(side, semconv.AttrK8sWorkloadName),
		kind:      semconv.OnSide(side, semconv.AttrK8sWorkloadKind),
		service:   semconv.OnSide(side, semconv.AttrK8sServiceName),
		node:      semconv.OnSide(side, semconv.AttrNodeName),
	}
}

var (
	sourceKeys      = keysOf(semconv.SideSource)
	destinationKeys = keysOf(semconv.SideDestination)
)

// peerOf resolves one side of a record: addr as the traffic addressed it,
// backend the address that answered when addr is a Service's (zero if
// none or unknown), at the time of the traffic. Without a cluster view it
// is empty. This is the one enrichment every kind of record goes through
// (flows, drops, DNS lookups, spans): resolve each side that is not the
// record's resource, then putPeer it.
func (t *Builder) peerOf(tr observed.Transport, addr, backend netip.AddrPort, at time.Time) peer {
	return t.resolvePeer(tr, addr, backend, at, true)
}

// resolvePeer is peerOf; count false leaves the lookup out of the view's
// counters (metrics of a record already counted by its log record).
func (t *Builder) resolvePeer(tr observed.Transport, addr, backend netip.AddrPort, at time.Time, count bool) peer {
	if t.cfg.Peers == nil || !addr.Addr().IsValid() {
		return peer{}
	}
	var p peer
	if count {
		p.ep = t.cfg.Peers.Resolve(uint8(tr), addr, at)
	} else {
		p.ep = t.cfg.Peers.Lookup(uint8(tr), addr, at)
	}
	if backend.IsValid() && p.ep.Service != nil {
		p.backendAddr = backend
		p.backend = t.cfg.Peers.Lookup(uint8(tr), backend, at).Pod
	}
	return p
}

// attrCount is the number of attributes putSide writes for p on side
// (backend attributes only for the destination).
func (p *peer) attrCount(destination bool) int {
	n := 0
	e := &p.ep
	switch {
	case e.Pod != nil:
		n += 5 // pod, namespace, workload, kind, node
		if e.Service != nil {
			n++
		}
	case e.Service != nil:
		n += 2 // service, namespace
		if e.Node != "" || p.backend != nil {
			n++ // node
		}
		if p.backend != nil {
			n += 2 // workload, kind
		}
	case e.Node != "":
		n++
	}
	if destination && e.Pod == nil && e.Service != nil {
		if p.backendAddr.IsValid() {
			n += 2
		}
		if p.backend != nil {
			n++
		}
	}
	return n
}

// putSide writes what one side's address is in the cluster:
// {side}.k8s.pod.name, .namespace.name, .workload.name/.kind, .service.name
// and .node.name where known. For a Service address the workload and node
// are the backend's, which the destination also names in
// ebpfflow.destination.backend.{address,port,k8s.pod.name}.
func putSide(m pcommon.Map, side string, p *peer) {
	k := &sourceKeys
	if side == semconv.SideDestination {
		k = &destinationKeys
	}
	e := &p.ep
	switch {
	case e.Pod != nil:
		m.PutStr(k.pod, e.Pod.Name)
		m.PutStr(k.namespace, e.Pod.Namespace)
		m.PutStr(k.workload, e.Pod.Workload.Name)
		m.PutStr(k.kind, e.Pod.Workload.Kind)
		m.PutStr(k.node, e.Pod.Node)
		if e.Service != nil {
			m.PutStr(k.service, e.Service.Name)
		}
	case e.Service != nil:
		m.PutStr(k.service, e.Service.Name)
		m.PutStr(k.namespace, e.Service.Namespace)
		switch {
		case p.backend != nil:
			m.PutStr(k.workload, p.backend.Workload.Name)
			m.PutStr(k.kind, p.backend.Workload.Kind)
			m.PutStr(k.node, p.backend.Node)
		case e.Node != "":
			m.PutStr(k.node, e.Node) // a node port: the node addressed
		}
	case e.Node != "":
		m.PutStr(k.node, e.Node)
	}
	if side == semconv.SideDestination && e.Pod == nil && e.Service != nil {
		if p.backendAddr.IsValid() {
			m.PutStr(semconv.AttrBackendAddr, p.backendAddr.Addr().Unmap().String())
			m.PutInt(semconv.AttrBackendPort, int64(p.backendAddr.Port()))
		}
		if p.backend != nil {
			m.PutStr(semconv.AttrBackendPodName, p.backend.Name)
		}
	}
}

// flowPeer resolves the far end of a flow: the destination when the local
// socket is the client, else the source.
func (t *Builder) flowPeer(f *observed.Flow, count bool) (string, peer) {
	at := f.End
	if at.IsZero() {
		at = f.Start
	}
	if f.LocalRole == observed.RoleServer {
		return semconv.SideSource, t.resolvePeer(f.Transport, f.Source, netip.AddrPort{}, at, count)
	}
	return semconv.SideDestination, t.resolvePeer(f.Transport, f.Dest, f.Backend, at, count)
}
