package clusterview

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// clock is a settable time source for the view.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func (c *clock) step(d time.Duration) time.Time {
	c.t = c.t.Add(d)
	return c.t
}

func newTestView(t *testing.T) (*View, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	v := New(Config{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Retention: time.Minute})
	v.now = c.now
	return v, c
}

// storeOf returns the reflector store of one resource of v.
func storeOf(v *View, resource string) *store {
	for _, s := range v.sources() {
		if Resources[s.index] == resource {
			return &store{v: v, src: s}
		}
	}
	panic(resource)
}

type podSpec struct {
	name, ns, uid, node, ip string
	created                 time.Time
	owner                   *metav1.OwnerReference
	labels                  map[string]string
	hostNetwork             bool
	terminating             bool
	phase                   corev1.PodPhase
}

func makePod(s podSpec) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: s.name, Namespace: s.ns, UID: types.UID(s.uid),
			CreationTimestamp: metav1.NewTime(s.created), Labels: s.labels,
		},
		Spec:   corev1.PodSpec{NodeName: s.node, HostNetwork: s.hostNetwork},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if s.phase != "" {
		p.Status.Phase = s.phase
	}
	if s.owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{*s.owner}
	}
	if s.terminating {
		ts := metav1.NewTime(s.created.Add(time.Hour))
		p.DeletionTimestamp = &ts
	}
	if s.ip != "" {
		p.Status.PodIP = s.ip
		p.Status.PodIPs = []corev1.PodIP{{IP: s.ip}}
	}
	return p
}

func controller(kind, name string) *metav1.OwnerReference {
	yes := true
	return &metav1.OwnerReference{Kind: kind, Name: name, Controller: &yes}
}

func addr(s string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(s), 8080) }

func mustAdd(t *testing.T, s *store, obj any) {
	t.Helper()
	if err := s.Add(obj); err != nil {
		t.Fatal(err)
	}
}

func podName(e Endpoint) string {
	if e.Pod == nil {
		return ""
	}
	return e.Pod.Name
}

func TestWorkloadOf(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	minutes := created.Unix() / 60
	for _, tc := range []struct {
		name   string
		owner  *metav1.OwnerReference
		labels map[string]string
		want   Workload
	}{
		{"deployment", controller("ReplicaSet", "checkout-5d8f7c9b4"), map[string]string{podTemplateHash: "5d8f7c9b4"}, Workload{KindDeployment, "checkout"}},
		{"replicaset without hash label", controller("ReplicaSet", "checkout-5d8f7c9b4"), nil, Workload{KindReplicaSet, "checkout-5d8f7c9b4"}},
		{"replicaset hash not its suffix", controller("ReplicaSet", "standalone"), map[string]string{podTemplateHash: "abc"}, Workload{KindReplicaSet, "standalone"}},
		{"statefulset", controller("StatefulSet", "db"), nil, Workload{KindStatefulSet, "db"}},
		{"daemonset", controller("DaemonSet", "agent"), nil, Workload{KindDaemonSet, "agent"}},
		{"cronjob", controller("Job", "backup-"+strconv.FormatInt(minutes, 10)), nil, Workload{KindCronJob, "backup"}},
		{"job with a date suffix", controller("Job", "report-20250101"), nil, Workload{KindJob, "report-20250101"}},
		{"plain job", controller("Job", "migrate"), nil, Workload{KindJob, "migrate"}},
		{"static pod", controller("Node", "node-a"), nil, Workload{KindPod, "web-0"}},
		{"custom controller", controller("Rollout", "canary"), nil, Workload{"Rollout", "canary"}},
		{"bare pod", nil, nil, Workload{KindPod, "web-0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := makePod(podSpec{name: "web-0", ns: "shop", created: created, owner: tc.owner, labels: tc.labels})
			if got := workloadOf(p); got != tc.want {
				t.Errorf("workloadOf = %+v, want %+v", got, tc.want)
			}
		})
	}
	// A reference that is not the controller names no workload.
	no := false
	p := makePod(podSpec{name: "web-0", ns: "shop", created: created})
	p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "x", Controller: &no}}
	if got := workloadOf(p); got != (Workload{KindPod, "web-0"}) {
		t.Errorf("non-controller owner: %+v", got)
	}
}

// TestIPReuse: a pod deleted and its address handed to a new pod; the
// old name is never shown for traffic after the handover, and traffic
// from before it is still the old pod's.
func TestIPReuse(t *testing.T) {
	v, c := newTestView(t)
	pods := storeOf(v, ResourcePods)
	start := c.t
	mustAdd(t, pods, makePod(podSpec{name: "old", ns: "shop", uid: "u-old", node: "n1", ip: "10.1.0.7", created: start.Add(-time.Hour)}))
	beforeDelete := c.step(time.Second)
	if got := podName(v.Resolve(6, addr("10.1.0.7"), beforeDelete)); got != "old" {
		t.Fatalf("before delete: %q", got)
	}
	// Listed at start: valid for traffic from before the view knew it.
	if got := podName(v.Resolve(6, addr("10.1.0.7"), start.Add(-time.Minute))); got != "old" {
		t.Fatalf("traffic before the first list: %q, want old", got)
	}

	deletedAt := c.step(time.Second)
	if err := pods.Delete(makePod(podSpec{name: "old", ns: "shop", uid: "u-old", ip: "10.1.0.7"})); err != nil {
		t.Fatal(err)
	}
	gap := c.step(time.Second)
	if got := podName(v.Resolve(6, addr("10.1.0.7"), gap)); got != "" {
		t.Errorf("after delete, before the new pod: %q, want nothing", got)
	}
	claimed := c.step(time.Second)
	mustAdd(t, pods, makePod(podSpec{name: "new", ns: "shop", uid: "u-new", node: "n2", ip: "10.1.0.7", created: claimed}))
	after := c.step(time.Second)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{beforeDelete, "old"},          // late record of the old pod's traffic
		{deletedAt.Add(-1), "old"},     // last instant of the old claim
		{gap, ""},                      // nobody held it
		{claimed, "new"},               // the new claim starts when seen
		{after, "new"},                 // and holds
		{time.Time{}, "new"},           // "now"
		{after.Add(time.Hour), "new"},  // a record from the future: the current owner
		{start.Add(-time.Hour), "old"}, // before anything: the first owner
	} {
		if got := podName(v.Resolve(6, addr("10.1.0.7"), tc.at)); got != tc.want {
			t.Errorf("at %v: %q, want %q", tc.at.Sub(start), got, tc.want)
		}
	}
	// An update of the old pod arriving late (a stale event) must not
	// take the address back.
	mustAdd(t, pods, makePod(podSpec{name: "old", ns: "shop", uid: "u-old", node: "n1", ip: "10.1.0.7", created: start.Add(-time.Hour), terminating: true}))
	if got := podName(v.Resolve(6, addr("10.1.0.7"), c.step(time.Second))); got != "new" {
		t.Errorf("stale update of the old pod: %q, want new", got)
	}

	// The released claim is forgotten after the retention: the old
	// pod's traffic is no longer named, the new pod's still is.
	c.step(2 * time.Minute)
	v.prune()
	if n := len(v.ips[netip.MustParseAddr("10.1.0.7")].claims); n != 1 {
		t.Errorf("claims after prune: %d, want 1", n)
	}
	if got := podName(v.Resolve(6, addr("10.1.0.7"), beforeDelete)); got != "" {
		t.Errorf("old traffic after prune: %q, want nothing", got)
	}
	if got := podName(v.Resolve(6, addr("10.1.0.7"), time.Time{})); got != "new" {
		t.Errorf("now after prune: %q, want new", got)
	}
	// A deleted pod's address with no successor is forgotten entirely.
	for _, uid := range []string{"u-old", "u-new"} {
		if err := pods.Delete(makePod(podSpec{uid: uid})); err != nil {
			t.Fatal(err)
		}
	}
	c.step(2 * time.Minute)
	v.prune()
	if _, ok := v.ips[netip.MustParseAddr("10.1.0.7")]; ok || len(v.pods) != 0 {
		t.Errorf("state left after delete and prune: %d addresses, %d pods", len(v.ips), len(v.pods))
	}
}

// TestIPReuseTerminatingOldPod: the old pod object still exists
// (terminating) when the new pod gets its address; the new pod wins, in
// either arrival order, and within one list.
func TestIPReuseTerminatingOldPod(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	oldPod := makePod(podSpec{name: "old", ns: "shop", uid: "u-old", ip: "10.1.0.9", created: t0, terminating: true})
	newPod := makePod(podSpec{name: "new", ns: "shop", uid: "u-new", ip: "10.1.0.9", created: t0.Add(time.Minute)})
	for _, order := range [][]*corev1.Pod{{oldPod, newPod}, {newPod, oldPod}} {
		t.Run("watch "+order[0].Name+" first", func(t *testing.T) {
			v, c := newTestView(t)
			pods := storeOf(v, ResourcePods)
			for _, p := range order {
				mustAdd(t, pods, p)
				c.step(time.Second)
			}
			if got := podName(v.Resolve(6, addr("10.1.0.9"), c.t)); got != "new" {
				t.Errorf("now: %q, want new", got)
			}
		})
		t.Run("list "+order[0].Name+" first", func(t *testing.T) {
			v, c := newTestView(t)
			pods := storeOf(v, ResourcePods)
			if err := pods.Replace([]any{order[0], order[1]}, "1"); err != nil {
				t.Fatal(err)
			}
			// Both came in one list: the loser never held the address as
			// far as the view knows, not even for traffic before it.
			for _, at := range []time.Time{c.t.Add(-time.Minute), c.t, c.step(time.Second)} {
				if got := podName(v.Resolve(6, addr("10.1.0.9"), at)); got != "new" {
					t.Errorf("at %v: %q, want new", at, got)
				}
			}
		})
	}
}

func TestReplaceRemovesWhatWentAway(t *testing.T) {
	v, c := newTestView(t)
	pods := storeOf(v, ResourcePods)
	a := makePod(podSpec{name: "a", ns: "shop", uid: "ua", ip: "10.1.0.1", created: c.t})
	b := makePod(podSpec{name: "b", ns: "shop", uid: "ub", ip: "10.1.0.2", created: c.t})
	if err := pods.Replace([]any{a, b}, "1"); err != nil {
		t.Fatal(err)
	}
	c.step(time.Second)
	// Relist after an outage: b was deleted meanwhile, a new c took b's IP.
	cc := makePod(podSpec{name: "c", ns: "shop", uid: "uc", ip: "10.1.0.2", created: c.t})
	if err := pods.Replace([]any{a, cc}, "2"); err != nil {
		t.Fatal(err)
	}
	now := c.step(time.Second)
	if got := podName(v.Resolve(6, addr("10.1.0.2"), now)); got != "c" {
		t.Errorf("10.1.0.2 now: %q, want c", got)
	}
	if v.PodByUID("ub") != nil {
		t.Error("b still known after a relist without it")
	}
	if got := v.Stats().Objects[0]; got != 2 {
		t.Errorf("pods held: %d, want 2", got)
	}
}

func TestHostNetworkAndFinishedPodsHoldNoAddress(t *testing.T) {
	v, c := newTestView(t)
	pods, nodes := storeOf(v, ResourcePods), storeOf(v, ResourceNodes)
	mustAdd(t, nodes, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-a"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "192.168.5.10"},
			{Type: corev1.NodeHostName, Address: "node-a"},
		}},
	})
	mustAdd(t, pods, makePod(podSpec{name: "cni", ns: "kube-system", uid: "u1", node: "node-a", ip: "192.168.5.10", created: c.t, hostNetwork: true, owner: controller("DaemonSet", "cni")}))
	e := v.Resolve(6, addr("192.168.5.10"), c.t)
	if e.Pod != nil || e.Node != "node-a" || e.Workload() != (Workload{KindNode, "node-a"}) {
		t.Errorf("host-network pod address: %+v, want the node", e)
	}
	mustAdd(t, pods, makePod(podSpec{name: "job", ns: "shop", uid: "u2", ip: "10.1.0.3", created: c.t, phase: corev1.PodSucceeded}))
	if e := v.Resolve(6, addr("10.1.0.3"), c.t); e.Found() {
		t.Errorf("finished pod still resolves: %+v", e)
	}
	st := v.Stats()
	if st.Unresolved != 1 || st.Resolved != 1 || st.External != 0 {
		t.Errorf("lookups: %+v", st)
	}
	if e := v.Resolve(6, addr("8.8.8.8"), c.t); e.Found() || v.Stats().External != 1 {
		t.Errorf("external: %+v %+v", e, v.Stats())
	}
}

func TestServices(t *testing.T) {
	v, c := newTestView(t)
	svcs, nodes, slices, pods := storeOf(v, ResourceServices), storeOf(v, ResourceNodes), storeOf(v, ResourceEndpointSlices), storeOf(v, ResourcePods)
	mustAdd(t, nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.5.10"}}}})
	mustAdd(t, svcs, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "payments", Namespace: "shop"},
		Spec: corev1.ServiceSpec{
			ClusterIP: "10.96.0.50", ClusterIPs: []string{"10.96.0.50", "fd00:96::50"},
			Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}},
		},
	})
	mustAdd(t, svcs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"}, Spec: corev1.ServiceSpec{ClusterIP: "None"}})
	for _, a := range []string{"10.96.0.50", "fd00:96::50"} {
		if e := v.Resolve(6, addr(a), c.t); e.Service == nil || e.Service.Name != "payments" || e.Namespace() != "shop" || e.Workload() != (Workload{}) {
			t.Errorf("%s: %+v", a, e)
		}
		if !v.IsService(6, addr(a)) {
			t.Errorf("IsService(%s) false", a)
		}
	}
	// Node port: on a node address, with the port and protocol.
	np := netip.AddrPortFrom(netip.MustParseAddr("192.168.5.10"), 30080)
	if !v.IsService(6, np) || v.IsService(17, np) || v.IsService(6, addr("192.168.5.10")) {
		t.Error("IsService of node port wrong")
	}
	if e := v.Resolve(6, np, c.t); e.Service == nil || e.Service.Name != "payments" || e.Node != "node-a" {
		t.Errorf("node port: %+v", e)
	}
	// Headless Service: its pods carry its name; a selector-less endpoint
	// outside the cluster is named by its Service.
	mustAdd(t, pods, makePod(podSpec{name: "db-0", ns: "shop", uid: "udb", node: "node-a", ip: "10.1.0.40", created: c.t, owner: controller("StatefulSet", "db")}))
	mustAdd(t, slices, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "db-x1", Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: "db", labelHeadless: ""}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.40"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "db-0"}}},
	})
	mustAdd(t, slices, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy-1", Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: "legacy-db"}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"172.20.0.5"}}},
	})
	mustAdd(t, slices, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "payments-1", Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: "payments"}},
		Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.41"}, TargetRef: &corev1.ObjectReference{Kind: "Pod"}}},
	})
	e := v.Resolve(6, addr("10.1.0.40"), c.t)
	if podName(e) != "db-0" || e.Service == nil || e.Service.Name != "db" || !e.Service.Headless || e.Workload() != (Workload{KindStatefulSet, "db"}) {
		t.Errorf("headless pod: %+v", e)
	}
	if e := v.Resolve(6, addr("172.20.0.5"), c.t); e.Service == nil || e.Service.Name != "legacy-db" {
		t.Errorf("selector-less endpoint: %+v", e)
	}
	if v.Stats().Objects[2] != 2 {
		t.Errorf("slices kept: %d, want 2 (the payments slice has only pods)", v.Stats().Objects[2])
	}
	// Deleting the Service and slice removes their entries.
	if err := svcs.Delete(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "payments", Namespace: "shop"}}); err != nil {
		t.Fatal(err)
	}
	if err := slices.Delete(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "legacy-1", Namespace: "shop"}}); err != nil {
		t.Fatal(err)
	}
	if v.IsService(6, addr("10.96.0.50")) || v.IsService(6, np) || v.Resolve(6, addr("172.20.0.5"), c.t).Found() {
		t.Error("entries left after delete")
	}
}

func TestWatchStateLogsOncePerChange(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	w := newWatchState(zap.New(core))
	ctx := t.Context()
	down := errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
	for range 5 {
		for i := range Resources {
			w.report(ctx, i, "list", down)
		}
	}
	if logs.Len() != 1 {
		t.Fatalf("%d log lines for an outage, want 1: %v", logs.Len(), logs.All())
	}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}, "",
		errors.New(`User "system:serviceaccount:ebpfflow:ebpfflow" cannot list resource "endpointslices" in API group "discovery.k8s.io" at the cluster scope`))
	for range 3 {
		w.report(ctx, 2, "list", forbidden)
	}
	for _, i := range []int{0, 1, 3} {
		w.report(ctx, i, "list", nil)
	}
	all := logs.All()
	if len(all) != 3 {
		t.Fatalf("log lines: %v", all)
	}
	if msg := all[1].Message; !strings.Contains(msg, "denies list on endpointslices") || !strings.Contains(msg, "get, list and watch on endpointslices") || !strings.Contains(msg, "discovery.k8s.io") {
		t.Errorf("denial message: %q", msg)
	}
	if msg := all[2].Message; !strings.Contains(msg, "reachable again") {
		t.Errorf("recovery message: %q", msg)
	}
	if up := w.up(); !up[0] || !up[1] || up[2] || !up[3] {
		t.Errorf("up: %v", up)
	}
}
