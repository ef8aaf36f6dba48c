package pdatabuild

import (
	"net/netip"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/clusterview"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// The workload-edge metrics (ebpfflow.edge.*): client workload → server
// workload:port, on the node's resource, so their cardinality is the
// cluster's workload pairs, not pods, addresses or ports of clients. They
// exist only with a cluster view (without one nothing has a workload
// name).
//
// Each connection is counted once in the cluster: by the node of its
// client, or, when the client is outside the cluster (no pod and no node
// of it), by the node of its server. A connection between two pods of one
// node is reported by both sockets there; the server's record is skipped
// like any other whose client is known.

var (
	clientKeys = keysOf(semconv.SideClient)
	serverKeys = keysOf(semconv.SideServer)
)

// edgeEnd names one end of a workload edge.
type edgeEnd struct {
	name, namespace, kind, service string
}

func podEnd(p *clusterview.Pod) edgeEnd {
	return edgeEnd{name: p.Workload.Name, namespace: p.Namespace, kind: p.Workload.Kind}
}

// workload returns the far end's namespace, workload name and kind and
// Service name as the per-workload metrics carry them ("" when unknown).
func (p *peer) workload() (ns, name, kind, service string) {
	e := p.ep
	if e.Service != nil {
		ns, service = e.Service.Namespace, e.Service.Name
	}
	pod := e.Pod
	if p.backend != nil {
		pod = p.backend
	}
	if pod != nil {
		ns, name, kind = pod.Namespace, pod.Workload.Name, pod.Workload.Kind
	}
	return ns, name, kind, service
}

// peerEnd names the far end of a record: the backend's workload behind a
// Service, the pod's workload, the Service itself when its backend is
// unknown, the node for a node address, else external or unknown by
// address.
func (t *Builder) peerEnd(p *peer, addr netip.Addr) edgeEnd {
	e := &p.ep
	var end edgeEnd
	switch {
	case p.backend != nil:
		end = podEnd(p.backend)
	case e.Pod != nil:
		end = podEnd(e.Pod)
	case e.Service != nil:
		end = edgeEnd{name: e.Service.Name, namespace: e.Service.Namespace, kind: "Service"}
	case e.Node != "":
		end = edgeEnd{name: e.Node, kind: clusterview.KindNode}
	case t.cfg.Peers.InCluster(addr.Unmap()):
		end = edgeEnd{name: semconv.EdgeUnknown}
	default:
		end = edgeEnd{name: semconv.EdgeExternal}
	}
	if e.Service != nil {
		end.service = e.Service.Name
	}
	return end
}

// inCluster reports whether a resolved far end is a pod or a node of the
// cluster, i.e. whether its own node's agent reports the connection.
func (p *peer) inCluster() bool { return p.ep.Pod != nil || (p.ep.Node != "" && p.ep.Service == nil) }

// localEnd names the workload of a record's resource at time at: its
// pod's workload, else this node for a process of the node.
func (t *Builder) localEnd(w *observed.Workload, at time.Time) edgeEnd {
	if w.PodUID != "" {
		if p := t.cfg.Peers.PodByUID(w.PodUID); p != nil {
			return podEnd(p)
		}
	}
	if w.PodIP.IsValid() {
		if e := t.cfg.Peers.Lookup(0, netip.AddrPortFrom(w.PodIP, 0), at); e.Pod != nil {
			return podEnd(e.Pod)
		}
	}
	if w.PodUID != "" || w.ContainerID != "" {
		return edgeEnd{name: semconv.EdgeUnknown} // a pod the view does not know (yet)
	}
	node := t.cfg.NodeName
	if node == "" {
		node = t.cfg.HostName
	}
	return edgeEnd{name: node, kind: clusterview.KindNode}
}

func edgeOf(client, server edgeEnd, port uint16, transport string) edge {
	return edge{
		transport: transport,
		clientWL:  client.name, clientNS: client.namespace, clientKind: client.kind,
		serverWL: server.name, serverNS: server.namespace, serverKind: server.kind, serverSvc: server.service,
		serverPort: port,
	}
}

// addEdgeFlow counts a flow on its workload edge; p is its far end.
func (t *Builder) addEdgeFlow(f *observed.Flow, p *peer) {
	at := f.End
	if at.IsZero() {
		at = f.Start
	}
	local := t.localEnd(&f.Local, at)
	var client, server edgeEnd
	port := f.Dest.Port()
	if f.LocalRole == observed.RoleServer {
		if p.inCluster() {
			return // the client's node counts it
		}
		client, server = t.peerEnd(p, f.Source.Addr()), local
	} else {
		client, server = local, t.peerEnd(p, f.Dest.Addr())
		if p.backendAddr.IsValid() {
			port = p.backendAddr.Port()
		}
	}
	e := edgeOf(client, server, port, f.Transport.String())
	tx, rx := e, e
	tx.direction, rx.direction = semconv.DirectionTx, semconv.DirectionRx
	t.add(observed.Workload{}, metricEdgeBytes, tx, f.SourceBytes)
	t.add(observed.Workload{}, metricEdgeBytes, rx, f.DestBytes)
	if !f.Start.IsZero() && pcommon.NewTimestampFromTime(f.Start) > t.intervalStart {
		t.add(observed.Workload{}, metricEdgeConnections, e, 1)
	}
	if f.Transport != observed.TransportTCP {
		return
	}
	if f.SRTT > 0 && f.LocalRole == observed.RoleClient {
		t.observe(observed.Workload{}, metricEdgeRTT, e, f.SRTT.Seconds())
	}
	if f.Closed && (f.CloseCause == observed.CloseRefused || f.CloseCause == observed.CloseTimeout) {
		fe := e
		fe.cause = f.CloseCause.String()
		t.add(observed.Workload{}, metricEdgeConnFailures, fe, 1)
	}
}

// ephemeralFrom is where Linux's default ephemeral port range starts.
const ephemeralFrom = 32768

// addEdgeDrop counts dropped packets on the edge of the connection they
// belong to: a dropped reply (service port → ephemeral port) on the edge
// of its request.
func (t *Builder) addEdgeDrop(d *observed.Drop) {
	src := t.resolvePeer(d.Transport, d.Source, netip.AddrPort{}, d.Time, false)
	dst := t.resolvePeer(d.Transport, d.Dest, netip.AddrPort{}, d.Time, false)
	client, server := t.peerEnd(&src, d.Source.Addr()), t.peerEnd(&dst, d.Dest.Addr())
	port := d.Dest.Port()
	if sp := d.Source.Port(); d.Dest.Port() >= ephemeralFrom && sp > 0 && sp < ephemeralFrom {
		client, server, port = server, client, sp
	}
	e := edgeOf(client, server, port, d.Transport.String())
	e.reason = d.Reason
	t.add(observed.Workload{}, metricEdgeDrops, e, d.Count)
}

// addEdgeDNS counts a lookup on the edge from the asking workload to its
// resolver's.
func (t *Builder) addEdgeDNS(l *observed.DNSLookup) {
	p := t.resolvePeer(l.Transport, l.Server, l.Backend, l.Start, false)
	port := l.Server.Port()
	if p.backendAddr.IsValid() {
		port = p.backendAddr.Port()
	}
	e := edgeOf(t.localEnd(&l.Local, l.Start), t.peerEnd(&p, l.Server.Addr()), port, l.Transport.String())
	if l.RCode != semconv.DNSRCodeOK {
		e.errorType = l.RCode
	}
	t.add(observed.Workload{}, metricEdgeDNSLookups, e, 1)
}

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}
