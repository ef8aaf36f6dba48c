// Package clusterview keeps an IP → object view of a Kubernetes cluster,
// current through watches of pods, services, endpointslices and nodes, so
// that the far end of a flow, a drop or a DNS lookup can be named: which pod
// (and workload, namespace, node) or Service an address belongs to, at the
// time the traffic happened.
//
// Objects are reduced to the few fields the view needs as they arrive (the
// reflectors feed the view's own stores; no full object is kept), so memory
// is a few hundred bytes per pod. An address reused by a new pod is never
// resolved to the old one: each address keeps the short history of the pods
// that held it, with the times this view saw them take and release it.
//
// The view imports no collector package; the receiver wires it into the
// engine and the pdata builder.
package clusterview

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
)

// Workload kinds (the values of k8s.workload.kind). A pod's workload is its
// controller, with a ReplicaSet of a Deployment named as the Deployment and
// a Job of a CronJob as the CronJob; a pod without a controller is its own
// workload, kind Pod. Node names the node itself (node addresses,
// host-network pods, processes of the node).
const (
	KindDeployment  = "Deployment"
	KindReplicaSet  = "ReplicaSet"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindJob         = "Job"
	KindCronJob     = "CronJob"
	KindPod         = "Pod"
	KindNode        = "Node"
)

// Workload is a pod's owning workload.
type Workload struct {
	Kind, Name string
}

// Pod is what the view keeps of a pod. It is never modified once published:
// an update publishes a new *Pod, so a caller may keep one.
type Pod struct {
	UID       string
	Name      string
	Namespace string
	Node      string
	Workload  Workload

	created     time.Time // metadata.creationTimestamp
	terminating bool      // deletionTimestamp set
}

// Service is what the view keeps of a Service; immutable like Pod.
type Service struct {
	Name, Namespace string
	Headless        bool // clusterIP: None
}

// Endpoint is what an address is in the cluster. The zero value: nothing.
type Endpoint struct {
	Pod     *Pod     // the pod holding the address at the time asked
	Service *Service // the Service the address (and port) belongs to, or whose endpoint it is
	Node    string   // the pod's node, or the node whose address it is
}

// Found reports whether the address is known.
func (e Endpoint) Found() bool { return e.Pod != nil || e.Service != nil || e.Node != "" }

// Workload returns the endpoint's workload: the pod's, or the node for a
// node address; zero for a Service address and for nothing.
func (e Endpoint) Workload() Workload {
	switch {
	case e.Pod != nil:
		return e.Pod.Workload
	case e.Service == nil && e.Node != "":
		return Workload{Kind: KindNode, Name: e.Node}
	}
	return Workload{}
}

// Namespace returns the pod's namespace, else the Service's.
func (e Endpoint) Namespace() string {
	switch {
	case e.Pod != nil:
		return e.Pod.Namespace
	case e.Service != nil:
		return e.Service.Namespace
	}
	return ""
}

// Config sets a View up.
type Config struct {
	// Client talks to the API server (see NewClient).
	Client kubernetes.Interface
	// ClusterCIDRs: an address inside them that matches nothing is counted
	// as unresolved, one outside as external.
	ClusterCIDRs []netip.Prefix
	// Retention is how long an address released by a pod still resolves to
	// it for traffic that happened before (records are reported up to a
	// flush interval, plus an idle timeout, after their packets).
	Retention time.Duration
	Logger    *zap.Logger
}

// Resource names, as the API and RBAC call them (and the `resource`
// attribute of the view's self-telemetry).
const (
	ResourcePods           = "pods"
	ResourceServices       = "services"
	ResourceEndpointSlices = "endpointslices"
	ResourceNodes          = "nodes"
)

// Resources are the resources the view watches, in the order of Stats.
var Resources = [...]string{ResourcePods, ResourceServices, ResourceEndpointSlices, ResourceNodes}

// Lookup results counted in Stats.
const (
	ResultResolved   = "resolved"   // the address is a pod, Service, node or endpoint
	ResultUnresolved = "unresolved" // inside the cluster CIDRs, yet nothing known has it
	ResultExternal   = "external"   // outside the cluster CIDRs and unknown
)

// Stats is the view's self-telemetry.
type Stats struct {
	// Up per resource (in Resources order): its last list or watch
	// succeeded. False while the API is unreachable or RBAC denies it.
	Up [len(Resources)]bool
	// Objects per resource held by the view.
	Objects [len(Resources)]int
	// Lookups by result: resolved, unresolved, external.
	Resolved, Unresolved, External uint64
}

// View is the cluster view. Create it with New, then Start it.
type View struct {
	cfg Config
	log *zap.Logger
	now func() time.Time

	mu       sync.RWMutex
	pods     map[string]*podRec // by uid
	ips      map[netip.Addr]*history
	services map[string]*svcRec // by namespace/name
	svcIPs   map[netip.Addr]*Service
	ports    map[nodePort]*Service
	nodes    map[string][]netip.Addr
	nodeIPs  map[netip.Addr]string
	slices   map[string]*sliceRec // by namespace/name
	sliceIPs map[netip.Addr][]*sliceRec
	batch    uint64 // Replace batches, to tell claims of one initial list apart

	resolved, unresolved, external atomic.Uint64
	watch                          *watchState

	cancel context.CancelFunc
	done   chan struct{}
}

// nodePort is a Service port opened on every node's addresses.
type nodePort struct {
	proto uint8
	port  uint16
}

// New returns a view; nothing talks to the API server before Start.
func New(cfg Config) *View {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	v := &View{
		cfg:      cfg,
		log:      cfg.Logger,
		now:      time.Now,
		pods:     make(map[string]*podRec),
		ips:      make(map[netip.Addr]*history),
		services: make(map[string]*svcRec),
		svcIPs:   make(map[netip.Addr]*Service),
		ports:    make(map[nodePort]*Service),
		nodes:    make(map[string][]netip.Addr),
		nodeIPs:  make(map[netip.Addr]string),
		slices:   make(map[string]*sliceRec),
		sliceIPs: make(map[netip.Addr][]*sliceRec),
	}
	v.watch = newWatchState(v.log)
	return v
}

// Resolve says what addr is in the cluster at time at (the time of the
// traffic; zero: now). proto is the IP protocol number (6 TCP, 17 UDP),
// needed for node ports. It never blocks on the API server.
func (v *View) Resolve(proto uint8, addr netip.AddrPort, at time.Time) Endpoint {
	e := v.Lookup(proto, addr, at)
	switch {
	case e.Found():
		v.resolved.Add(1)
	case v.InCluster(addr.Addr().Unmap()):
		v.unresolved.Add(1)
	default:
		v.external.Add(1)
	}
	return e
}

// Lookup is Resolve without counting the lookup in Stats.
func (v *View) Lookup(proto uint8, addr netip.AddrPort, at time.Time) Endpoint {
	a, port := addr.Addr().Unmap(), addr.Port()
	if !a.IsValid() {
		return Endpoint{}
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if h := v.ips[a]; h != nil {
		if at.IsZero() {
			at = v.now()
		}
		if p := h.at(at.UnixNano()); p != nil {
			return Endpoint{Pod: p, Node: p.Node, Service: v.headlessLocked(a)}
		}
	}
	if s := v.svcIPs[a]; s != nil {
		return Endpoint{Service: s}
	}
	if node, ok := v.nodeIPs[a]; ok {
		return Endpoint{Node: node, Service: v.ports[nodePort{proto: proto, port: port}]}
	}
	if recs := v.sliceIPs[a]; len(recs) > 0 {
		return Endpoint{Service: recs[0].service(v)}
	}
	return Endpoint{}
}

// PodByUID returns the pod with this uid, nil if the view has none.
func (v *View) PodByUID(uid string) *Pod {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if r := v.pods[uid]; r != nil {
		return r.pod
	}
	return nil
}

// IsService reports whether addr (with its port, for node ports) is a
// Service address: a ClusterIP, an external or load-balancer IP, or a node
// port on a node's address. Connections to one are NATed to a backend.
func (v *View) IsService(proto uint8, addr netip.AddrPort) bool {
	a := addr.Addr().Unmap()
	v.mu.RLock()
	defer v.mu.RUnlock()
	if _, ok := v.svcIPs[a]; ok {
		return true
	}
	if _, ok := v.nodeIPs[a]; ok {
		_, ok = v.ports[nodePort{proto: proto, port: addr.Port()}]
		return ok
	}
	return false
}

// InCluster reports whether a is inside the cluster CIDRs.
func (v *View) InCluster(a netip.Addr) bool {
	for _, p := range v.cfg.ClusterCIDRs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Stats returns the view's counters. Safe at any time.
func (v *View) Stats() Stats {
	st := Stats{
		Resolved:   v.resolved.Load(),
		Unresolved: v.unresolved.Load(),
		External:   v.external.Load(),
		Up:         v.watch.up(),
	}
	v.mu.RLock()
	st.Objects = [len(Resources)]int{len(v.pods), len(v.services), len(v.slices), len(v.nodes)}
	v.mu.RUnlock()
	return st
}

// Start begins watching. It returns at once: the view fills as lists
// arrive, and a lookup before then finds nothing. An unreachable API server
// or a denied resource is logged once and retried with back-off.
func (v *View) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	v.done = make(chan struct{})
	v.run(ctx)
}

// Close stops the watches and waits for them. Safe without Start and twice.
func (v *View) Close() {
	if v.cancel == nil {
		return
	}
	v.cancel()
	<-v.done
	v.cancel = nil
}

// prune forgets addresses released longer than the retention ago.
func (v *View) prune() {
	cutoff := v.now().Add(-v.cfg.Retention).UnixNano()
	v.mu.Lock()
	defer v.mu.Unlock()
	for a, h := range v.ips {
		if h.prune(cutoff) {
			delete(v.ips, a)
		}
	}
}
