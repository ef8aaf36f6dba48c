//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

type (
	authnTokenRequest     = authnv1.TokenRequest
	authnTokenRequestSpec = authnv1.TokenRequestSpec
)

// The test's cluster: pods in 10.203.0.0/24 on node e2e-node (this
// machine), Services in the API server's 10.96.0.0/16, the internet at
// 198.51.100.10.
var (
	kPodCIDR   = "10.203.0.0/24"
	kWorld     = netip.MustParseAddr("198.51.100.10")
	kCheckout  = netip.MustParseAddr("10.203.0.11")
	kPayments  = netip.MustParseAddr("10.203.0.21")
	kWrong     = netip.MustParseAddr("10.203.0.31")
	kReused    = netip.MustParseAddr("10.203.0.41")
	kLate      = netip.MustParseAddr("10.203.0.51")
	kCoreDNS   = netip.MustParseAddr("10.203.0.53")
	kSvcPay    = netip.MustParseAddr("10.96.0.50")
	kSvcDNS    = netip.MustParseAddr("10.96.0.10")
	kQueryName = "payments.shop.svc.cluster.local"
)

// Client ports of the checkout pod's connections, so records match exactly.
const (
	portSvc, portWorld, portDrop, portWrong, portRestricted = 42100, 42101, 42102, 42110, 42120
	portOld, portNew, portOutage, portLate                  = 42130, 42131, 42140, 42160
	outageConns                                             = 15
)

// TestKubernetes runs the built collector with the Helm chart's own
// configuration (rendered by helm, exporters switched to files) against a
// real control plane: the chart's ServiceAccount and RBAC applied for
// real, Deployments whose pods are network namespaces in kubelet-style
// cgroups on this machine (their Pod objects carry their UIDs, IPs and
// container IDs), ClusterIP Services implemented with iptables DNAT in the
// host namespace as kube-proxy does, real traffic between them. It checks
// both ends of flows, drops and DNS lookups, the backend behind a Service,
// a Service's selector changed to the wrong pods, egress to the internet, a
// pod deleted and its address reused, RBAC denial, the API server down for
// 60 s, the unmodified k8sattributes processor naming the local end, and
// the workload-edge metrics; and the server dry-run of the manifests.
func TestKubernetes(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.RequireTools(t, "ip", "iptables", "curl", "ncat", "dig", "dnsmasq")
	bin := collectorBinary(t)
	began := time.Now()
	dir := outDir(t)
	k := startKube(t, dir)
	ctx := context.Background()

	t.Run("manifests_dry_run", func(t *testing.T) { checkDryRun(t, k, dir) })

	// The node: this machine.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/hostname": nodeName}}}
	_, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	must(t, err)
	nodeIP := nodeAddress(t, kCheckout)
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := k.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeIP.String()}, {Type: corev1.NodeHostName, Address: nodeName}}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
		_, err = k.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	}))
	for _, ns := range []string{"shop", "ebpfflow"} {
		k.ensureNamespace(t, ns)
	}

	// The chart applied for real; the collector runs as its ServiceAccount.
	rendered := renderChart(t)
	if out, err := k.kubectl(t, string(rendered), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply of the chart: %v\n%s", err, out)
	}
	saKubeconfig := filepath.Join(dir, "sa.kubeconfig")
	k.tokenKubeconfig(t, "ebpfflow", "ebpfflow", saKubeconfig)

	net := newPodNet(t, kPodCIDR, kWorld.String()+"/32")
	px := newProxy(t)
	w := &workloads{t: t, k: k, net: net, dir: dir, nodeIP: nodeIP}

	checkout := w.deployment("shop", "checkout", kCheckout)
	payments := w.deployment("shop", "payments", kPayments)
	wrong := w.deployment("shop", "wrong", kWrong)
	coredns := w.deployment("kube-system", "coredns", kCoreDNS)
	w.serveName(payments, kPayments, 8080, "payments")
	w.serveName(wrong, kWrong, 8080, "wrong")
	testkit.StartDNSServer(t, testkit.Netns(coredns.Netns), []netip.Addr{kCoreDNS}, testkit.DNSRecord{Name: kQueryName, Addrs: []netip.Addr{kSvcPay}})
	testkit.Run(t, "ip", "netns", "exec", payments.Netns, "iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "9999", "-j", "DROP")
	// The internet: a namespace that answers with the kernel alone (a TCP
	// reset from netfilter). Any socket serving it would be a socket of this
	// machine, which the probes see, and an address a local socket holds is
	// the node's; a real internet server is on no node.
	world := &testkit.Pod{Name: "world", Netns: string(testkit.NewNetns(t, "ebpfflow-world"))}
	net.attach(world, kWorld)
	testkit.Run(t, "ip", "netns", "exec", world.Netns, "iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "REJECT", "--reject-with", "tcp-reset")

	paySvc := w.service("shop", "payments", kSvcPay, "payments", corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt(8080), Protocol: corev1.ProtocolTCP})
	dnsSvc := w.service("kube-system", "kube-dns", kSvcDNS, "coredns",
		corev1.ServicePort{Name: "dns", Port: 53, TargetPort: intstr.FromInt(53), Protocol: corev1.ProtocolUDP},
		corev1.ServicePort{Name: "dns-tcp", Port: 53, TargetPort: intstr.FromInt(53), Protocol: corev1.ProtocolTCP})
	w.syncProxy(px, paySvc, []netip.Addr{kPayments})
	w.syncProxy(px, dnsSvc, []netip.Addr{kCoreDNS})

	colStart := time.Now()
	col := startChartCollector(t, bin, dir, saKubeconfig)
	waitSelf(t, col, "otelcol_ebpfflow_k8s_watch_up", 1, 30*time.Second, clusterResources...)
	viewSynced := time.Since(colStart)

	// ---- Phase A: a Service, the internet, DNS through kube-dns, a drop.
	if body := w.curl(checkout, portSvc, fmt.Sprintf("http://%s/", kSvcPay), 0); body != "payments" {
		t.Fatalf("checkout → payments Service answered %q, want payments", body)
	}
	w.curl(checkout, portWorld, fmt.Sprintf("http://%s/", kWorld), 7) // 7: refused
	if out, rc := checkout.Exec(t, 10*time.Second, "dig", "+short", "+tries=1", "+time=3", "@"+kSvcDNS.String(), kQueryName); rc != 0 || strings.TrimSpace(out) != kSvcPay.String() {
		t.Fatalf("dig via kube-dns: rc %d %q", rc, out)
	}
	w.curl(checkout, portDrop, fmt.Sprintf("http://%s:9999/", kPayments), 28)

	// ---- Phase B: the Service's selector changed to the wrong pods.
	paySvc.Spec.Selector = map[string]string{"app": "wrong"}
	paySvc, err = k.client.CoreV1().Services("shop").Update(ctx, paySvc, metav1.UpdateOptions{})
	must(t, err)
	w.syncProxy(px, paySvc, []netip.Addr{kWrong})
	if body := w.curl(checkout, portWrong, fmt.Sprintf("http://%s/", kSvcPay), 0); body != "wrong" {
		t.Fatalf("after the selector change the Service answered %q, want wrong", body)
	}

	// ---- RBAC denied: a second collector whose ServiceAccount may read
	// pods and services, not endpointslices or nodes.
	t.Run("rbac_denied", func(t *testing.T) { checkRBACDenied(t, k, w, bin, dir, checkout) })

	// ---- Phase C: a pod deleted, its address taken by a new pod.
	oldWeb := w.barePod("shop", "old-web", kReused)
	w.serveName(oldWeb, kReused, 8080, "old")
	if body := w.curl(checkout, portOld, fmt.Sprintf("http://%s:8080/", kReused), 0); body != "old" {
		t.Fatalf("old-web answered %q", body)
	}
	time.Sleep(2 * time.Second) // the old pod's record is flushed while it lives
	w.deletePod(oldWeb)
	newWebCreated := time.Now()
	newWeb := w.barePod("shop", "new-web", kReused)
	w.serveName(newWeb, kReused, 8080, "new")
	newWebReady := time.Now()
	if body := w.curl(checkout, portNew, fmt.Sprintf("http://%s:8080/", kReused), 0); body != "new" {
		t.Fatalf("new-web answered %q", body)
	}

	// ---- Phase D: the API server down for 60 s, then back.
	logBeforeOutage := readFile(t, filepath.Join(col.Dir, "collector.log"))
	restart := k.stopAPIServer(t)
	outageStart := time.Now()
	var downSeen float64 = -1
	for i := range outageConns {
		w.curl(checkout, portOutage+i, fmt.Sprintf("http://%s/", kSvcPay), 0)
		if i == outageConns/2 {
			downSeen = selfMetric(col, "otelcol_ebpfflow_k8s_watch_up", `resource="pods"`)
		}
		time.Sleep(time.Until(outageStart.Add(time.Duration(i+1) * 4 * time.Second)))
	}
	restart()
	outage := time.Since(outageStart)
	waitSelf(t, col, "otelcol_ebpfflow_k8s_watch_up", 1, 60*time.Second, clusterResources...)
	resumed := time.Since(outageStart) - outage
	// A pod created once the API server is back is named: connect to it
	// every second until a record does (the view relists with back-off).
	late := w.barePod("shop", "late-web", kLate)
	lateReady := time.Now()
	w.serveName(late, kLate, 8080, "late")
	lateNamed := time.Duration(-1)
	for i := 0; i < 60 && lateNamed < 0; i++ {
		if body := w.curl(checkout, portLate+i, fmt.Sprintf("http://%s:8080/", kLate), 0); body != "late" {
			t.Fatalf("late-web answered %q", body)
		}
		waitRecords(t, col, time.Second, func(recs []logRecord) bool {
			if f := findFlow(recs, portLate+i, "client"); f != nil && f.str("destination.k8s.pod.name") == "late-web" {
				lateNamed = time.Since(lateReady)
				return true
			}
			return false
		})
	}

	// Every scenario's records are in; then stop.
	waitRecords(t, col, 20*time.Second, func(recs []logRecord) bool { return findFlow(recs, portNew, "client") != nil })
	time.Sleep(2 * time.Second)
	health := httpOK(col.HealthURL)
	self, selfErr := col.ScrapeSelfMetrics()
	status := readFile(t, fmt.Sprintf("/proc/%d/status", col.Cmd.Process.Pid))
	t.Logf("collector memory: %s, %s", strings.Join(strings.Fields(grepLines(status, "VmRSS")), " "), strings.Join(strings.Fields(grepLines(status, "VmHWM")), " "))
	col.Stop(t)
	recs, err := readLogs(col.logsPath)
	must(t, err)
	points, err := readMetrics(col.metricsPath)
	must(t, err)
	dumpTestRecords(t, dir, recs)
	t.Logf("%d records, %d metric points; view synced %v after the collector started; outage %v, view back %v after the API server",
		len(recs), len(points), viewSynced.Round(time.Millisecond), outage.Round(time.Second), resumed.Round(time.Second))

	pod := func(p *testkit.Pod) string { return p.Name }
	t.Run("service_backend", func(t *testing.T) {
		f := mustFlow(t, recs, portSvc, "client")
		wantAttrs(t, f, map[string]any{
			"destination.address":                       kSvcPay.String(),
			"destination.k8s.service.name":              "payments",
			"destination.k8s.namespace.name":            "shop",
			"destination.k8s.workload.name":             "payments",
			"destination.k8s.workload.kind":             "Deployment",
			"destination.k8s.node.name":                 nodeName,
			"ebpfflow.destination.backend.address":      kPayments.String(),
			"ebpfflow.destination.backend.port":         int64(8080),
			"ebpfflow.destination.backend.k8s.pod.name": pod(payments),
			"ebpfflow.destination.scope":                "cluster",
		})
		// The local end, named by the unmodified k8sattributes processor
		// from the receiver's resource attributes.
		wantResource(t, f, map[string]string{
			"k8s.pod.uid": checkout.UID, "k8s.pod.name": pod(checkout), "k8s.namespace.name": "shop",
			"k8s.deployment.name": "checkout", "k8s.node.name": nodeName, "k8s.pod.label.app": "checkout",
			"service.name": "checkout",
		})
		// The same connection from the backend's socket: both ends named.
		srv := mustFlow(t, recs, portSvc, "server")
		wantAttrs(t, srv, map[string]any{
			"source.k8s.pod.name": pod(checkout), "source.k8s.workload.name": "checkout", "source.k8s.namespace.name": "shop",
			"destination.address": kPayments.String(),
		})
		wantResource(t, srv, map[string]string{"k8s.pod.name": pod(payments), "k8s.deployment.name": "payments", "service.name": "payments"})
	})
	t.Run("http_span_peer", func(t *testing.T) {
		// curl's CLIENT spans to the Service address name it and the
		// backend that answered, as the connection's flow record does.
		spans, err := readHTTPSpans(col.tracesPath)
		must(t, err)
		var toSvc, named int
		for _, s := range spans {
			if s.Kind != ptrace.SpanKindClient || s.str(semconv.AttrPeerAddr) != kSvcPay.String() {
				continue
			}
			toSvc++
			if s.str("destination.k8s.service.name") != "payments" || s.str("destination.k8s.namespace.name") != "shop" {
				t.Errorf("span to the payments Service without its name: %v", s)
			}
			if s.str("ebpfflow.destination.backend.k8s.pod.name") == pod(payments) && s.str("destination.k8s.workload.name") == "payments" &&
				s.str("ebpfflow.destination.backend.address") == kPayments.String() && s.res("k8s.pod.name") == pod(checkout) {
				named++
			}
		}
		if toSvc == 0 || named == 0 {
			t.Errorf("%d CLIENT spans to %s, %d naming the payments backend; spans: %v", toSvc, kSvcPay, named, spans)
		}
	})
	t.Run("wrong_backend", func(t *testing.T) {
		f := mustFlow(t, recs, portWrong, "client")
		wantAttrs(t, f, map[string]any{
			"destination.k8s.service.name":              "payments",
			"destination.k8s.workload.name":             "wrong",
			"ebpfflow.destination.backend.address":      kWrong.String(),
			"ebpfflow.destination.backend.k8s.pod.name": pod(wrong),
		})
	})
	t.Run("external_egress", func(t *testing.T) {
		f := mustFlow(t, recs, portWorld, "client")
		wantAttrs(t, f, map[string]any{"ebpfflow.destination.scope": "external", "destination.address": kWorld.String(), "ebpfflow.flow.close_cause": "refused"})
		for k := range f.Attrs {
			if strings.HasPrefix(k, "destination.k8s.") {
				t.Errorf("egress record names the internet: %s=%v", k, f.Attrs[k])
			}
		}
	})
	t.Run("dns_via_service", func(t *testing.T) {
		var l *logRecord
		for i := range recs {
			if recs[i].Event == semconv.EventDNS && recs[i].str(semconv.AttrDNSQuestionName) == kQueryName {
				l = &recs[i]
			}
		}
		if l == nil {
			t.Fatal("no dns.lookup record for the query")
		}
		wantAttrs(t, *l, map[string]any{
			"server.address":                            kSvcDNS.String(),
			"destination.k8s.service.name":              "kube-dns",
			"destination.k8s.namespace.name":            "kube-system",
			"destination.k8s.workload.name":             "coredns",
			"ebpfflow.destination.backend.address":      kCoreDNS.String(),
			"ebpfflow.destination.backend.k8s.pod.name": pod(coredns),
		})
		wantResource(t, *l, map[string]string{"k8s.pod.name": pod(checkout), "k8s.deployment.name": "checkout"})
	})
	t.Run("drop_both_ends", func(t *testing.T) {
		var d *logRecord
		for i := range recs {
			if recs[i].Event == semconv.EventDrop && recs[i].int(semconv.AttrDstPort) == 9999 {
				d = &recs[i]
			}
		}
		if d == nil {
			t.Fatal("no network.drop record for the dropped connect")
		}
		wantAttrs(t, *d, map[string]any{
			"ebpfflow.drop.reason":     "NETFILTER_DROP",
			"source.k8s.pod.name":      pod(checkout),
			"source.k8s.workload.name": "checkout",
			"destination.k8s.pod.name": pod(payments),
		})
		if f := mustFlow(t, recs, portDrop, "client"); f.str("destination.k8s.pod.name") != pod(payments) {
			t.Errorf("the dropped flow's destination: %v", f)
		}
	})
	t.Run("ip_reuse", func(t *testing.T) {
		wantAttrs(t, mustFlow(t, recs, portOld, "client"), map[string]any{"destination.k8s.pod.name": "old-web"})
		wantAttrs(t, mustFlow(t, recs, portNew, "client"), map[string]any{"destination.k8s.pod.name": "new-web"})
		// The time from a pod's creation (the API call; then its sandbox,
		// its status as a kubelet writes it, a server in it) to the first
		// record naming it: a connection made at once, reported at the next
		// 1 s flush.
		var first time.Time
		for _, r := range recs {
			if r.str("destination.k8s.pod.name") == "new-web" && (first.IsZero() || r.Time.Before(first)) {
				first = r.Time
			}
		}
		t.Logf("new-web: first record naming it %v after its creation (flush interval 1s)", first.Sub(newWebCreated).Round(time.Millisecond))
		for _, r := range recs {
			end, _ := time.Parse(time.RFC3339Nano, r.str(semconv.AttrFlowEndTime))
			for _, k := range []string{"destination.k8s.pod.name", "source.k8s.pod.name"} {
				if r.str(k) == "old-web" && end.After(newWebReady) {
					t.Errorf("traffic after the address went to new-web still names old-web: %v", r)
				}
			}
		}
	})
	t.Run("api_outage", func(t *testing.T) {
		if downSeen != 0 {
			t.Errorf("ebpfflow_k8s_watch_up{resource=pods} during the outage = %v, want 0", downSeen)
		}
		named := 0
		for i := range outageConns {
			f := findFlow(recs, portOutage+i, "client")
			if f == nil {
				t.Errorf("no record of the connection made %ds into the outage", 4*i)
				continue
			}
			if f.str("destination.k8s.service.name") == "payments" {
				named++
			}
		}
		t.Logf("%d of %d connections during the outage named from the view as last seen", named, outageConns)
		log := readFile(t, filepath.Join(col.Dir, "collector.log"))
		if n := strings.Count(log, "kubernetes API unreachable"); n != 1 {
			t.Errorf("%d log lines say the API is unreachable, want 1", n)
		}
		if n := strings.Count(log, "kubernetes API reachable again"); n != 1 {
			t.Errorf("%d log lines say the API is back, want 1", n)
		}
		if lateNamed < 0 {
			t.Fatal("no record names late-web, created after the API server came back, within 60s")
		}
		t.Logf("late-web, created %v after the API server was back: first record naming it %v after its status was set (flush interval 1s)",
			resumed.Round(time.Second), lateNamed.Round(time.Millisecond))
	})
	t.Run("edge_metrics", func(t *testing.T) { checkEdgeMetrics(t, points) })
	t.Run("self_telemetry", func(t *testing.T) {
		if selfErr != nil {
			t.Fatal(selfErr)
		}
		if !health {
			t.Errorf("health_check %s not 200 with every probe up", col.HealthURL)
		}
		for _, want := range []string{`otelcol_ebpfflow_service_backend_lookups{`, `otelcol_ebpfflow_k8s_lookups{`, `otelcol_ebpfflow_k8s_objects{`} {
			if !strings.Contains(self, want) {
				t.Errorf("self-telemetry lacks %s", want)
			}
		}
		// The chart's RBAC is enough for k8sattributes and the view. (Right
		// after the API server's restart its authorizer may deny until it
		// has loaded the roles: then the view must say it is allowed again.)
		for _, bad := range []string{"forbidden", "RBAC denies"} {
			if strings.Contains(logBeforeOutage, bad) {
				t.Errorf("with the chart's RBAC the collector log says %q:\n%s", bad, grepLines(logBeforeOutage, bad))
			}
		}
		log := readFile(t, filepath.Join(col.Dir, "collector.log"))
		if d, a := strings.Count(log, "kubernetes RBAC denies"), strings.Count(log, "kubernetes API allows the view's watch again"); d != a {
			t.Errorf("%d denials logged after the restart, %d recoveries:\n%s", d, a, grepLines(log, "kubernetes"))
		}
	})
	t.Logf("kubernetes end-to-end total %v", time.Since(began).Round(time.Second))
}

var clusterResources = []string{`resource="pods"`, `resource="services"`, `resource="endpointslices"`, `resource="nodes"`}

// waitSelf waits until the self-metric is v for every label set.
func waitSelf(t *testing.T, col *collector, name string, v float64, timeout time.Duration, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok := true
		for _, l := range labels {
			if selfMetric(col, name, l) != v {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			self, _ := col.ScrapeSelfMetrics()
			t.Fatalf("%s not %v for %v after %v:\n%s\n%s", name, v, labels, timeout, grepLines(self, "otelcol_ebpfflow_k8s"), col.LogTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitRecords(t *testing.T, col *collector, timeout time.Duration, done func([]logRecord) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs, err := readLogs(col.logsPath)
		must(t, err)
		if done(recs) || time.Now().After(deadline) {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// findFlow returns the record of the connection from the checkout pod's
// port as the given end reported it (merged over the connection's records:
// the last value of each attribute).
func findFlow(recs []logRecord, port int, role string) *logRecord {
	var out *logRecord
	for i := range recs {
		r := &recs[i]
		if r.Event != semconv.EventFlow || r.int(semconv.AttrSrcPort) != int64(port) || r.str(semconv.AttrFlowLocalRole) != role {
			continue
		}
		// The pods' pinned ports are free on the host too: the
		// collector's own connections to the API server on loopback can
		// be given the same port, and are not the pods' flows.
		if a, err := netip.ParseAddr(r.str(semconv.AttrSrcAddr)); err == nil && a.IsLoopback() {
			continue
		}
		if out == nil {
			c := *r
			c.Attrs = map[string]any{}
			out = &c
		}
		for k, v := range r.Attrs {
			out.Attrs[k] = v
		}
		out.Resource = r.Resource
	}
	return out
}

func mustFlow(t *testing.T, recs []logRecord, port int, role string) logRecord {
	t.Helper()
	f := findFlow(recs, port, role)
	if f == nil {
		t.Fatalf("no network.flow record from source port %d reported by the %s", port, role)
	}
	return *f
}

func wantAttrs(t *testing.T, r logRecord, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got := r.Attrs[k]; fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v\n  record %v", k, got, v, r)
		}
	}
}

func wantResource(t *testing.T, r logRecord, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := r.res(k); got != v {
			t.Errorf("resource %s = %q, want %q\n  resource %v", k, got, v, r.Resource)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func checkEdgeMetrics(t *testing.T, points []point) {
	t.Helper()
	type edgeKey struct{ client, server, service, port string }
	seen := map[edgeKey]float64{}
	dns := map[edgeKey]float64{}
	for _, p := range points {
		a := p.Attrs
		k := edgeKey{fmt.Sprint(a["client"]), fmt.Sprint(a["server"]), fmt.Sprint(a["server.k8s.service.name"]), fmt.Sprint(a["server.port"])}
		switch p.Metric {
		case semconv.MetricEdgeBytes:
			if a["network.io.direction"] == semconv.DirectionTx && p.Value > seen[k] {
				seen[k] = p.Value
			}
			if _, ok := p.Resource[semconv.AttrPodUID]; ok {
				t.Errorf("edge metric on a pod's resource: %v", p.Resource)
			}
		case semconv.MetricEdgeDNSLookups:
			dns[k] = max(dns[k], p.Value)
		}
	}
	for _, want := range []edgeKey{
		{"checkout", "payments", "payments", "8080"},
		{"checkout", "wrong", "payments", "8080"},
		{"checkout", "external", "<nil>", "80"}, // SYN out, reset back
		{"checkout", "new-web", "<nil>", "8080"},
	} {
		if seen[want] <= 0 {
			t.Errorf("no ebpfflow.edge.bytes for %+v; edges: %v", want, seen)
		}
	}
	if dns[edgeKey{"checkout", "coredns", "kube-dns", "53"}] < 1 {
		t.Errorf("no ebpfflow.edge.dns.lookups checkout → coredns:53; %v", dns)
	}
	// The backend's own record of the checkout connection is not counted
	// a second time.
	for k := range seen {
		if k.client == "payments" || k.client == "wrong" {
			t.Errorf("a server's record counted as an edge: %+v", k)
		}
	}
}

// workloads creates the test's pods: Pod objects in the API server and
// their sandboxes on this machine.
type workloads struct {
	t      *testing.T
	k      *kubeCluster
	net    *podNet
	dir    string
	nodeIP netip.Addr
}

// deployment creates a one-replica Deployment on this node and adopts the
// pod its ReplicaSet creates: a sandbox for the pod's uid at ip, then the
// status a kubelet would set.
func (w *workloads) deployment(ns, name string, ip netip.Addr) *testkit.Pod {
	t := w.t
	t.Helper()
	ctx := context.Background()
	one := int32(1)
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeName:   nodeName,
					Containers: []corev1.Container{{Name: name, Image: "registry.example/" + name + ":1"}},
				},
			},
		},
	}
	_, err := w.k.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	must(t, err)
	var p *corev1.Pod
	deadline := time.Now().Add(30 * time.Second)
	for p == nil {
		l, err := w.k.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		must(t, err)
		if len(l.Items) == 1 {
			p = &l.Items[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("deployment %s/%s: %d pods after 30s", ns, name, len(l.Items))
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	return w.adopt(p, ip)
}

// barePod creates a pod without controller on this node and adopts it.
func (w *workloads) barePod(ns, name string, ip netip.Addr) *testkit.Pod {
	t := w.t
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: name, Image: "registry.example/" + name + ":1"}}},
	}
	p, err := w.k.client.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	must(t, err)
	return w.adopt(p, ip)
}

func (w *workloads) adopt(p *corev1.Pod, ip netip.Addr) *testkit.Pod {
	t := w.t
	t.Helper()
	sb := testkit.NewPod(t, p.Name, string(p.UID), fmt.Sprintf("ebpfflow-k8s-%s-%d", p.Name[:min(len(p.Name), 12)], os.Getpid()%10000))
	w.net.attach(sb, ip)
	now := metav1.Now()
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip.String(), PodIPs: []corev1.PodIP{{IP: ip.String()}},
		HostIP: w.nodeIP.String(), StartTime: &now,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: p.Spec.Containers[0].Name, Ready: true, Image: p.Spec.Containers[0].Image, ImageID: "sha256:" + testkit.RandomHex(32),
			ContainerID: "containerd://" + sb.ContainerID,
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
	status := p.Status
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := w.k.client.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status = status
		_, err = w.k.client.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), cur, metav1.UpdateOptions{})
		return err
	}))
	return sb
}

// deletePod deletes the Pod object at once (a kubelet has confirmed the
// containers are gone) and tears its sandbox down.
func (w *workloads) deletePod(sb *testkit.Pod) {
	t := w.t
	t.Helper()
	zero := int64(0)
	err := w.k.client.CoreV1().Pods("shop").Delete(context.Background(), sb.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	must(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := w.k.client.CoreV1().Pods("shop").Get(context.Background(), sb.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s not gone 20s after its deletion", sb.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = exec.Command("sh", "-c", "echo 1 > "+filepath.Join(sb.Cgroup, "cgroup.kill")).Run()
	testkit.Run(t, "ip", "netns", "del", sb.Netns)
}

// serveName answers HTTP on ip:port in the pod with its name as the body.
func (w *workloads) serveName(p *testkit.Pod, ip netip.Addr, port int, body string) {
	t := w.t
	t.Helper()
	resp := fmt.Sprintf(`printf 'HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s'`, len(body), body)
	p.Start(t, filepath.Join(w.dir, p.Name+"-"+body+".log"), "ncat", "-lk", ip.String(), strconv.Itoa(port), "--sh-exec", resp)
	p.WaitListening(t, "tcp", port)
}

// curl fetches url from the pod's local port; wantRC 0 returns the body.
func (w *workloads) curl(p *testkit.Pod, localPort int, url string, wantRC int) string {
	t := w.t
	t.Helper()
	args := []string{"-sS", "--local-port", strconv.Itoa(localPort), "--max-time", "3", url}
	out, rc := p.Exec(t, 10*time.Second, "curl", args...)
	if rc != wantRC {
		t.Fatalf("curl %s from port %d: rc %d, want %d", url, localPort, rc, wantRC)
	}
	return out
}

// service creates a ClusterIP Service with a fixed address.
func (w *workloads) service(ns, name string, ip netip.Addr, app string, ports ...corev1.ServicePort) *corev1.Service {
	t := w.t
	t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{ClusterIP: ip.String(), Selector: map[string]string{"app": app}, Ports: ports},
	}
	s, err := w.k.client.CoreV1().Services(ns).Create(context.Background(), s, metav1.CreateOptions{})
	must(t, err)
	return s
}

// syncProxy waits until the EndpointSlice controller lists exactly want as
// the Service's endpoints, then programs them.
func (w *workloads) syncProxy(px *proxy, svc *corev1.Service, want []netip.Addr) {
	t := w.t
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := w.k.client.DiscoveryV1().EndpointSlices(svc.Namespace).List(context.Background(),
			metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
		must(t, err)
		var got []netip.Addr
		for _, sl := range l.Items {
			for _, ep := range sl.Endpoints {
				for _, a := range ep.Addresses {
					got = append(got, netip.MustParseAddr(a))
				}
			}
		}
		slices.SortFunc(got, func(a, b netip.Addr) int { return a.Compare(b) })
		if slices.Equal(got, want) {
			used := px.sync(svc, l.Items)
			t.Logf("service %s/%s %s → %v", svc.Namespace, svc.Name, svc.Spec.ClusterIP, used)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service %s/%s endpoints %v, want %v", svc.Namespace, svc.Name, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// renderChart renders the chart as the test runs it: file exporters, the
// collector reading the kubeconfig of the chart's ServiceAccount, 1 s
// flushes, the app label extracted, the test's ports.
func renderChart(t *testing.T, set ...string) []byte {
	t.Helper()
	args := []string{"template", "ebpfflow", "../../distribution/helm/ebpfflow", "--namespace", "ebpfflow"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(helmBinary(t), args...).Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return out
}

func helmBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("bash", "-c", ". ../kube/versions.sh && echo $HELM_BIN_DIR/helm").Output()
	must(t, err)
	bin := strings.TrimSpace(string(out))
	if _, err := os.Stat(bin); err != nil {
		testkit.Skip(t, "helm not built (tests/kube/build.sh): "+err.Error())
	}
	return bin
}

// startChartCollector runs the collector with the chart's ConfigMap.
func startChartCollector(t *testing.T, bin, dir, kubeconfig string) *collector {
	t.Helper()
	hp, mp := testkit.FreePort(t), testkit.FreePort(t)
	c := &collector{logsPath: filepath.Join(dir, "logs.json"), metricsPath: filepath.Join(dir, "metrics.json"), tracesPath: filepath.Join(dir, "traces.json")}
	exporters := fmt.Sprintf(`{"file/logs":{"path":%q,"flush_interval":"100ms"},"file/metrics":{"path":%q,"flush_interval":"100ms"},"file/traces":{"path":%q,"flush_interval":"100ms"}}`,
		c.logsPath, c.metricsPath, c.tracesPath)
	args := []string{"template", "ebpfflow", "../../distribution/helm/ebpfflow", "--namespace", "ebpfflow",
		"--set-json", "exporters=" + exporters,
		"--set-json", `pipelines={"logs":["file/logs"],"metrics":["file/metrics"],"traces":["file/traces"]}`,
		"--set", "kubernetes.authType=kubeConfig,k8sattributes.authType=kubeConfig,persistentQueue.enabled=false,flushInterval=1s",
		"--set", fmt.Sprintf("ports.health=%d,ports.metrics=%d", hp, mp),
		"--set", "k8sattributes.extract.labels[0].key=app",
	}
	out, err := exec.Command(helmBinary(t), args...).Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	ch := parseChart(t, out)
	cfg, gates := ch.config, ch.gates
	c.Collector = testkit.StartCollectorWith(t, bin, dir, cfg, hp, mp,
		testkit.CollectorOptions{Args: gates, HealthPath: "/status"},
		"K8S_NODE_NAME="+nodeName, "K8S_POD_IP=127.0.0.1", "KUBECONFIG="+kubeconfig)
	return c
}

// checkRBACDenied: a collector whose ServiceAccount may not read
// endpointslices and nodes says so once per resource, naming the verb and
// resource to grant, and still names peers from what it may read.
func checkRBACDenied(t *testing.T, k *kubeCluster, w *workloads, bin, dir string, checkout *testkit.Pod) {
	ctx := context.Background()
	_, err := k.client.CoreV1().ServiceAccounts("ebpfflow").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "restricted"}}, metav1.CreateOptions{})
	must(t, err)
	_, err = k.client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "ebpfflow-restricted"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: []string{"get", "list", "watch"}}},
	}, metav1.CreateOptions{})
	must(t, err)
	_, err = k.client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ebpfflow-restricted"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "ebpfflow-restricted"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "restricted", Namespace: "ebpfflow"}},
	}, metav1.CreateOptions{})
	must(t, err)
	sub := filepath.Join(dir, "rbac")
	must(t, os.MkdirAll(sub, 0o755))
	kc := filepath.Join(sub, "restricted.kubeconfig")
	k.tokenKubeconfig(t, "ebpfflow", "restricted", kc)

	hp, mp := testkit.FreePort(t), testkit.FreePort(t)
	logs := filepath.Join(sub, "logs.json")
	cfg := fmt.Sprintf(`receivers:
  ebpfflow:
    flush_interval: 1s
    drops: {enabled: false}
    dns: {enabled: false}
    kubernetes: {enabled: true, auth_type: kubeConfig}
exporters:
  file/logs: {path: %s, flush_interval: 100ms}
extensions:
  health_check: {endpoint: 127.0.0.1:%d}
service:
  extensions: [health_check]
  telemetry: {metrics: {level: detailed, readers: [{pull: {exporter: {prometheus: {host: 127.0.0.1, port: %d}}}}]}}
  pipelines:
    logs: {receivers: [ebpfflow], exporters: [file/logs]}
`, logs, hp, mp)
	c := &collector{logsPath: logs}
	c.Collector = testkit.StartCollector(t, bin, sub, cfg, hp, mp, "K8S_NODE_NAME="+nodeName, "KUBECONFIG="+kc)
	waitSelf(t, c, "otelcol_ebpfflow_k8s_watch_up", 1, 30*time.Second, `resource="pods"`, `resource="services"`)
	if body := w.curl(checkout, portRestricted, fmt.Sprintf("http://%s/", kSvcPay), 0); body != "wrong" {
		t.Fatalf("payments Service answered %q", body)
	}
	waitRecords(t, c, 15*time.Second, func(recs []logRecord) bool { return findFlow(recs, portRestricted, "client") != nil })
	time.Sleep(2 * time.Second) // a few retries of the denied watches
	up := map[string]float64{}
	for _, r := range clusterResources {
		up[r] = selfMetric(c, "otelcol_ebpfflow_k8s_watch_up", r)
	}
	c.Stop(t)
	recs, err := readLogs(logs)
	must(t, err)
	f := mustFlow(t, recs, portRestricted, "client")
	// Pods and Services are readable: the Service and its backend pod are
	// named.
	wantAttrs(t, f, map[string]any{"destination.k8s.service.name": "payments", "ebpfflow.destination.backend.k8s.pod.name": w.podName(kWrong)})
	if up[`resource="pods"`] != 1 || up[`resource="services"`] != 1 || up[`resource="endpointslices"`] != 0 || up[`resource="nodes"`] != 0 {
		t.Errorf("ebpfflow_k8s_watch_up: %v", up)
	}
	log := readFile(t, filepath.Join(sub, "collector.log"))
	// One line per denied resource, naming the verb refused (the first
	// request of a reflector is a list, or a watch streaming the list) and
	// what to grant, with the server's own message.
	for _, res := range []string{"endpointslices", "nodes"} {
		re := regexp.MustCompile(`kubernetes RBAC denies (list|watch) on ` + res + `: grant the collector's ServiceAccount get, list and watch on ` + res + `.*cannot (list|watch) resource \\"` + res + `\\"`)
		if n := len(re.FindAllString(log, -1)); n != 1 {
			t.Errorf("%d log lines match %s, want 1:\n%s", n, re, grepLines(log, "RBAC"))
		}
	}
}

// podName is the name of the pod the test gave ip (from the API server).
func (w *workloads) podName(ip netip.Addr) string {
	l, err := w.k.client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{FieldSelector: "status.podIP=" + ip.String()})
	must(w.t, err)
	if len(l.Items) != 1 {
		w.t.Fatalf("%d pods with IP %s", len(l.Items), ip)
	}
	return l.Items[0].Name
}

// checkDryRun: the API server accepts every manifest of the project and
// the chart's rendering with several values, in a server-side dry run with
// strict validation; and rejects a broken one.
func checkDryRun(t *testing.T, k *kubeCluster, dir string) {
	k.ensureNamespace(t, "ebpfflow") // a dry-run Namespace does not hold the objects in it
	files, err := filepath.Glob("../../distribution/k8s/*.yaml")
	must(t, err)
	inputs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, err)
		inputs[filepath.Base(f)] = b
	}
	for name, set := range map[string][]string{
		"chart-defaults":     nil,
		"chart-anomaly":      {"anomaly.enabled=true"},
		"chart-no-view":      {"kubernetes.enabled=false,persistentQueue.enabled=false,capabilities.sysResource=false"},
		"chart-ns-labels":    {"k8sattributes.extract.labels[0].key=team,k8sattributes.extract.labels[0].from=namespace"},
		"chart-priority-aff": {"priorityClassName=system-node-critical"},
	} {
		inputs[name] = renderChart(t, set...)
	}
	for name, in := range inputs {
		out, err := k.kubectl(t, string(in), "apply", "--dry-run=server", "--validate=strict", "-f", "-")
		if err != nil {
			t.Errorf("%s: kubectl apply --dry-run=server: %v\n%s", name, err, out)
			continue
		}
		if !strings.Contains(out, "daemonset.apps/ebpfflow created (server dry run)") && name != "namespace.yaml" {
			t.Errorf("%s: no DaemonSet in the dry run:\n%s", name, out)
		}
	}
	// The server, not just the client, validates: a misspelt field fails.
	bad := strings.Replace(string(inputs["ebpfflow.yaml"]), "readOnlyRootFilesystem", "readOnlyRootFilesytem", 1)
	if out, err := k.kubectl(t, bad, "apply", "--dry-run=server", "--validate=strict", "-f", "-"); err == nil || !strings.Contains(out, "readOnlyRootFilesytem") {
		t.Errorf("a misspelt field passed the server dry run: %v\n%s", err, out)
	}
	if out, err := k.kubectl(t, "", "get", "daemonsets", "-A"); err != nil || strings.Contains(out, "ebpfflow") {
		t.Errorf("a dry run stored objects: %v\n%s", err, out)
	}
}

// TestChartCapabilities runs the collector with the chart's configuration
// and exactly the capabilities its DaemonSet adds (the bounding set of a
// root process, as a container runtime sets it for `drop: [ALL]` plus
// `add`): every probe runs and the readiness endpoint says healthy. Without
// one of them (PERFMON) it refuses to start and names the capability.
func TestChartCapabilities(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.RequireTools(t, "setpriv")
	bin := collectorBinary(t)
	dir := outDir(t)
	hp, mp := testkit.FreePort(t), testkit.FreePort(t)
	logs := filepath.Join(dir, "logs.json")
	out := renderChart(t, "kubernetes.enabled=false,k8sattributes.enabled=false,persistentQueue.enabled=false",
		fmt.Sprintf("ports.health=%d,ports.metrics=%d", hp, mp))
	ch := parseChart(t, out)
	cfg, caps, gates := ch.config, ch.capsAdd, ch.gates
	if !slices.Equal(ch.capsDrop, []string{"ALL"}) {
		t.Fatalf("the DaemonSet drops %v, not ALL", ch.capsDrop)
	}
	// Exporters to a file.
	var m map[string]any
	must(t, yaml.Unmarshal([]byte(cfg), &m))
	m["exporters"] = map[string]any{"file/logs": map[string]any{"path": logs, "flush_interval": "100ms"}}
	pipes := m["service"].(map[string]any)["pipelines"].(map[string]any)
	for name := range pipes {
		pipes[name].(map[string]any)["exporters"] = []string{"file/logs"}
	}
	b, err := yaml.Marshal(m)
	must(t, err)
	cfg = string(b)

	withCaps := func(name string, caps []string) string {
		set := "-all"
		for _, c := range caps {
			set += ",+" + strings.ToLower(c)
		}
		script := filepath.Join(dir, name)
		must(t, os.WriteFile(script, []byte("#!/bin/sh\nexec setpriv --bounding-set="+set+" --inh-caps=-all -- "+bin+" \"$@\"\n"), 0o755))
		return script
	}
	env := []string{"K8S_NODE_NAME=" + nodeName, "K8S_POD_IP=127.0.0.1"}
	t.Run("chart_capabilities", func(t *testing.T) {
		sub := filepath.Join(dir, "chart")
		must(t, os.MkdirAll(sub, 0o755))
		c := &collector{logsPath: logs}
		c.Collector = testkit.StartCollectorWith(t, withCaps("with-chart-caps.sh", caps), sub, cfg, hp, mp,
			testkit.CollectorOptions{Args: gates, HealthPath: "/status"}, env...)
		time.Sleep(2 * time.Second)
		for _, probe := range []string{"flow", "flow_owner", "tcp", "drop", "dns"} {
			if v := selfMetric(c, "otelcol_ebpfflow_probe_up", `probe="`+probe+`"`); v != 1 {
				t.Errorf("probe %s up = %v with the chart's capabilities %v", probe, v, caps)
			}
		}
		if !httpOK(c.HealthURL) {
			t.Errorf("%s not healthy", c.HealthURL)
		}
		c.Stop(t)
	})
	t.Run("without_perfmon", func(t *testing.T) {
		less := slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return c == "PERFMON" })
		cmd := exec.Command(withCaps("without-perfmon.sh", less), append([]string{"--config=" + filepath.Join(dir, "chart", "config.yaml")}, gates...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "lacking CAP_PERFMON") {
			t.Errorf("without CAP_PERFMON: %v, want a start-up error naming it\n%s", err, grepLines(string(out), "rror"))
		}
	})
}

// chart is what the tests take from a rendering of the chart.
type chart struct {
	config            string   // the ConfigMap's collector config
	gates             []string // the DaemonSet's --feature-gates arguments
	capsAdd, capsDrop []string // its container's capabilities
}

func parseChart(t *testing.T, rendered []byte) chart {
	t.Helper()
	var c chart
	for _, doc := range splitYAML(rendered) {
		var obj struct {
			Kind string
			Data map[string]string
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Args            []string
							SecurityContext struct {
								Capabilities struct{ Add, Drop []string }
							} `json:"securityContext"`
						}
					}
				}
			}
		}
		if yaml.Unmarshal(doc, &obj) != nil {
			continue
		}
		switch obj.Kind {
		case "ConfigMap":
			c.config = obj.Data["config.yaml"]
		case "DaemonSet":
			ctr := obj.Spec.Template.Spec.Containers[0]
			c.capsAdd, c.capsDrop = ctr.SecurityContext.Capabilities.Add, ctr.SecurityContext.Capabilities.Drop
			for _, a := range ctr.Args {
				if strings.HasPrefix(a, "--feature-gates=") {
					c.gates = append(c.gates, a)
				}
			}
		}
	}
	if c.config == "" {
		t.Fatal("no ConfigMap with a config.yaml in the chart's rendering")
	}
	return c
}
