//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// Settings of the anomaly end-to-end test: short windows and warm-up so a
// run takes about four minutes.
const (
	anomalyPort   = 8181 // not the port TestEndToEnd uses: its edges stay apart
	anomalyWindow = 2 * time.Second
	// Windows before the detector scores: warm-up + model readiness (16)
	// + the surprise calibration's own warm-up (= warm-up).
	anomalyWarmup  = 30
	anomalySteady  = (2*anomalyWarmup + 16 + 10) * anomalyWindow
	anomalyFireBy  = 60 * time.Second
	anomalyResolve = 120 * time.Second
)

const anomalyCollectorConfig = `receivers:
  ebpfflow:
    flush_interval: 1s
    dns: {timeout: 2s}
connectors:
  anomaly_detection:
    window: %[5]s
    series_ttl: 5m
    min_change: 1              # a doubling at least: the fault is a thousandfold
    confirm_windows: 2
    quiet_period: 10m
    detector:
      warmup: %[6]d
      resolve_after: 10
exporters:
  file/flows:
    path: %[1]s
    flush_interval: 100ms
  file/anomalies:
    path: %[2]s
    flush_interval: 100ms
  otlp_http/victorialogs:
    logs_endpoint: %[7]s/v1/logs
extensions:
  health_check:
    endpoint: 127.0.0.1:%[3]d
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %[4]d
  pipelines:
    logs/flows:
      receivers: [ebpfflow]
      exporters: [anomaly_detection, file/flows]
    logs/anomalies:
      receivers: [anomaly_detection]
      exporters: [file/anomalies, otlp_http/victorialogs]
`

// anomalyRecord is one exported anomaly record.
type anomalyRecord struct {
	Time  time.Time
	Body  string
	Attrs map[string]any
}

func (r anomalyRecord) str(k string) string { v, _ := r.Attrs[k].(string); return v }

func readAnomalies(path string) ([]anomalyRecord, error) {
	lines, err := completeLines(path)
	if err != nil {
		return nil, err
	}
	var out []anomalyRecord
	var u plog.JSONUnmarshaler
	for n, line := range lines {
		ld, err := u.UnmarshalLogs(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n+1, err)
		}
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					if lr.EventName() != "anomaly" {
						continue
					}
					out = append(out, anomalyRecord{Time: lr.Timestamp().AsTime(), Body: lr.Body().Str(), Attrs: lr.Attributes().AsRaw()})
				}
			}
		}
	}
	return out, nil
}

// startAnomalyCollector runs the binary with ebpfflow → anomaly_detection
// (connector) → file and VictoriaLogs, and waits until it is healthy.
func startAnomalyCollector(t *testing.T, bin, dir, victoriaLogs string) (*collector, string) {
	t.Helper()
	hp, mp := testkit.FreePort(t), testkit.FreePort(t)
	c := &collector{logsPath: filepath.Join(dir, "flows.json")}
	anomalies := filepath.Join(dir, "anomalies.json")
	cfg := fmt.Sprintf(anomalyCollectorConfig, c.logsPath, anomalies, hp, mp, anomalyWindow, anomalyWarmup, victoriaLogs)
	c.Collector = testkit.StartCollector(t, bin, dir, cfg, hp, mp, "K8S_NODE_NAME="+nodeName)
	return c, anomalies
}

// startBulkServer runs nginx in pod b on port, serving a sparse 1 GiB file.
func startBulkServer(t *testing.T, dir string, b *pod, port int) string {
	t.Helper()
	www := filepath.Join(dir, "www")
	must(t, os.MkdirAll(www, 0o755))
	f, err := os.Create(filepath.Join(www, "big"))
	must(t, err)
	must(t, f.Truncate(1<<30))
	must(t, f.Close())
	prefix := filepath.Join(dir, "nginx-"+b.Name)
	must(t, os.MkdirAll(prefix, 0o755))
	conf := fmt.Sprintf(`daemon off;
user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	default_type application/octet-stream;
	server {
		listen %[2]s:%[3]d;
		root %[4]s;
	}
}
`, prefix, b.IP4, port, www)
	path := filepath.Join(prefix, "nginx.conf")
	must(t, os.WriteFile(path, []byte(conf), 0o644))
	b.Start(t, filepath.Join(dir, "nginx-"+b.Name+".log"), "nginx", "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", path)
	b.WaitListening(t, "tcp", port)
	return fmt.Sprintf("http://%s:%d/big", b.IP4, port)
}

// resolver is dnsmasq in a pod, answering one local name; stop and start
// it to fake a resolver outage.
type resolver struct {
	t    *testing.T
	p    *pod
	conf string
	pid  string
	log  string
}

func startResolver(t *testing.T, dir string, p *pod) *resolver {
	t.Helper()
	r := &resolver{t: t, p: p, conf: filepath.Join(dir, "dnsmasq.conf"), pid: filepath.Join(dir, "dnsmasq.pid"), log: filepath.Join(dir, "dnsmasq.log")}
	must(t, os.WriteFile(r.conf, fmt.Appendf(nil, `no-resolv
no-hosts
bind-interfaces
listen-address=%s
user=root
address=/svc.anomaly.test/10.9.9.9
`, p.IP4), 0o644))
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *resolver) start() {
	r.t.Helper()
	// dnsmasq daemonises: the pod's cgroup keeps it, cleanup kills it.
	_, rc := r.p.Exec(r.t, 10*time.Second, "dnsmasq", "--conf-file="+r.conf, "--pid-file="+r.pid, "--log-facility="+r.log)
	if rc != 0 {
		r.t.Fatalf("dnsmasq exited %d; see %s", rc, r.log)
	}
	r.p.WaitListening(r.t, "udp", 53)
}

func (r *resolver) stop() {
	b, err := os.ReadFile(r.pid)
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for range 50 {
			if syscall.Kill(pid, 0) != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	_ = os.Remove(r.pid)
}

// selfMetric returns the value of the self-telemetry sample of metric name
// whose labels contain label (e.g. `state="normal"`), or -1.
func selfMetric(c *collector, name, label string) float64 {
	body, err := c.ScrapeSelfMetrics()
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, label) {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// fault is one injected failure and the alert it must raise.
type fault struct {
	name   string
	match  func(anomalyRecord) bool // the alert's edge
	edge   string                   // as the body must name it
	signal string                   // regexp: a signal (or drop reason) the firing alert must name
	inject func()
	remove func()

	firing, resolved   anomalyRecord
	firedAt, resolveAt time.Duration
}

// TestAnomalyAlerts runs the built collector with the ebpfflow receiver
// feeding the anomaly_detection connector over three pairs of pods with
// steady traffic: two downloads from nginx on each of two paths (limited by
// curl on one, shaped by the server's htb qdisc on the other), and a client
// asking a dnsmasq resolver 20 times a second. After the detectors have
// warmed up without a single alert, three faults start at once:
//   - latency: a token bucket filter (tc tbf, 1 Mbit/s, 100 ms of queue) on
//     the first server's interface;
//   - loss: iptables drops 10% of the second path's data segments at the
//     client (-m statistic --mode random);
//   - the resolver is killed.
//
// Each must raise exactly one firing alert within 60 s naming its edge with
// before/after values, and a resolved alert once the fault is removed. The
// steady state must raise no alert at all. (The resolver outage also shows
// on the network edge to port 53, as the kernel's NO_SOCKET drops: a second,
// correct alert, not checked here.)
func TestAnomalyAlerts(t *testing.T) {
	testkit.RequireRoot(t)
	bin := collectorBinary(t)
	for _, tool := range []string{"ip", "ss", "tc", "iptables", "nginx", "curl", "dig", "dnsmasq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (run `make deps`): %v", tool, err)
		}
	}
	began := time.Now()
	dir := outDir(t)
	la, lb := newPodPairNet(t, "la", "lb", 205) // latency
	pa, pb := newPodPairNet(t, "pa", "pb", 206) // packet loss
	dc, dr := newPodPairNet(t, "dc", "dr", 207) // DNS client, resolver
	// curl's --limit-rate pauses reading; with the default receive buffers
	// the server then sends in multi-megabyte bursts seconds apart. A 64 KB
	// window keeps the downloads steady at the window's scale.
	for _, p := range []*pod{la, pa} {
		testkit.Run(t, "ip", "netns", "exec", p.Netns, "sysctl", "-qw", "net.ipv4.tcp_rmem=4096 65536 65536")
	}

	latURL := startBulkServer(t, dir, lb, anomalyPort)
	lossURL := startBulkServer(t, dir, pb, anomalyPort+1)
	// The loss path is shaped by the server's qdisc (htb, 4 Mbit/s) rather
	// than by curl, whose --limit-rate reads in bursts seconds apart: loss
	// then shows in every window, as on a busy path. A 10-packet queue
	// keeps the path's delay from depending on how full TCP keeps it.
	testkit.Run(t, "ip", "netns", "exec", pb.Netns, "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "10")
	testkit.Run(t, "ip", "netns", "exec", pb.Netns, "tc", "class", "add", "dev", "eth0", "parent", "1:", "classid", "1:10", "htb", "rate", "4mbit", "ceil", "4mbit")
	testkit.Run(t, "ip", "netns", "exec", pb.Netns, "tc", "qdisc", "add", "dev", "eth0", "parent", "1:10", "handle", "10:", "pfifo", "limit", "10")
	res := startResolver(t, dir, dr)
	be := startBackends(t, dir, "", "victorialogs")
	col, anomaliesPath := startAnomalyCollector(t, bin, dir, be.env["VICTORIALOGS_OTLP_HTTP"])
	for i := range 2 {
		la.Start(t, filepath.Join(dir, fmt.Sprintf("curl-lat%d.log", i)), "curl", "-sS", "-o", "/dev/null", "--limit-rate", "250k", latURL)
		pa.Start(t, filepath.Join(dir, fmt.Sprintf("curl-loss%d.log", i)), "curl", "-sS", "-o", "/dev/null", lossURL)
	}
	// One dig every 50 ms, not waiting for answers: the query rate stays
	// the same whether the resolver answers or not.
	dc.Start(t, filepath.Join(dir, "dig.log"), "sh", "-c",
		fmt.Sprintf("while :; do dig +tries=1 +time=1 @%s svc.anomaly.test A >/dev/null 2>&1 & sleep 0.05; done", dr.IP4))

	netEdge := func(a, b *pod, port int) string { return fmt.Sprintf("%s → %s:%d", a.IP4, b.IP4, port) }
	onEdge := func(e string) func(anomalyRecord) bool {
		return func(r anomalyRecord) bool { return r.str("ebpfflow.anomaly.edge") == e }
	}
	dnsEdge := dr.IP4.String()
	faults := []*fault{
		{
			// A token bucket below the offered rate holding 100 ms of
			// queue: the path's delay rises, and what overflows the queue
			// is dropped (QDISC_DROP) and retransmitted. Any of the three
			// may be the first signal; the others join the incident.
			name: "latency", edge: netEdge(la, lb, anomalyPort), signal: "rtt.p99|QDISC_DROP|retransmit.ratio",
			inject: func() {
				testkit.Run(t, "ip", "netns", "exec", lb.Netns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "100ms")
			},
			remove: func() { testkit.Run(t, "ip", "netns", "exec", lb.Netns, "tc", "qdisc", "del", "dev", "eth0", "root") },
		},
		{
			// 10% of the data segments are lost on the way to the client.
			// What shows first is timing: the drops (NETFILTER_DROP), the
			// retransmissions, or the RTT that retransmission timeouts and
			// the refilled queue inflate. The others join the incident.
			name: "loss", edge: netEdge(pa, pb, anomalyPort+1), signal: "retransmit.ratio|drop.rate|rtt.p99",
			inject: func() {
				testkit.Run(t, "ip", "netns", "exec", pa.Netns, "iptables", "-A", "INPUT", "-p", "tcp", "--sport", fmt.Sprint(anomalyPort+1), "-m", "statistic", "--mode", "random", "--probability", "0.1", "-j", "DROP")
			},
			remove: func() {
				testkit.Run(t, "ip", "netns", "exec", pa.Netns, "iptables", "-D", "INPUT", "-p", "tcp", "--sport", fmt.Sprint(anomalyPort+1), "-m", "statistic", "--mode", "random", "--probability", "0.1", "-j", "DROP")
			},
		},
		{
			name: "dns", edge: dnsEdge, signal: "dns.lookup timeout.ratio",
			inject: res.stop,
			remove: res.start,
		},
	}
	faults[0].match = onEdge(faults[0].edge)
	faults[1].match = onEdge(faults[1].edge)
	faults[2].edge = "resolver " + dnsEdge
	faults[2].match = onEdge(faults[2].edge)
	ours := func(f *fault, recs []anomalyRecord) (out []anomalyRecord) {
		for _, r := range recs {
			if f.match(r) {
				out = append(out, r)
			}
		}
		return out
	}

	// Steady state: the detectors learn, nothing alerts on these edges.
	t.Logf("steady traffic for %v", anomalySteady)
	time.Sleep(anomalySteady)
	// The collector watches the whole node: only the test's own edges are
	// steady. Alerts on other traffic (another test's servers, the
	// exporter's own connection) are logged, not counted.
	testAddrs := map[string]bool{}
	for _, p := range []*pod{la, lb, pa, pb, dc, dr} {
		testAddrs[p.IP4.String()] = true
	}
	onTestPods := func(r anomalyRecord) bool {
		for _, f := range strings.Fields(r.str("ebpfflow.anomaly.edge")) {
			if host, _, err := net.SplitHostPort(f); err == nil {
				f = host
			}
			if testAddrs[f] {
				return true
			}
		}
		return false
	}
	all, err := readAnomalies(anomaliesPath)
	must(t, err)
	var recs []anomalyRecord
	for _, r := range all {
		t.Logf("anomaly during steady state: %s %s", r.str("ebpfflow.anomaly.state"), r.Body)
		if onTestPods(r) {
			recs = append(recs, r)
		}
	}
	if len(recs) > 0 {
		t.Fatalf("%d alerts on the test's edges during steady state, first: %s\n%s", len(recs), recs[0].Body, col.LogTail())
	}
	flows, err := readLogs(col.logsPath)
	must(t, err)
	rtts, lookups := 0, 0
	for _, r := range flows {
		switch {
		case r.Event == "network.flow" && r.str("destination.address") == lb.IP4.String() && r.float("ebpfflow.tcp.rtt") > 0:
			rtts++
		case r.Event == "dns.lookup" && r.str("server.address") == dr.IP4.String() && r.str("ebpfflow.dns.response_code") == "NOERROR":
			lookups++
		}
	}
	if rtts < 100 || lookups < 1000 {
		t.Fatalf("steady state: %d flow records with an RTT on %s, %d answered lookups at %s\n%s", rtts, faults[0].edge, lookups, dnsEdge, col.LogTail())
	}
	normal := selfMetric(col, "otelcol_anomaly_detection_series", `state="normal"`)
	t.Logf("steady state: %d flow records with an RTT, %d answered lookups; %v series past warm-up", rtts, lookups, normal)

	// Faults, all at once: each edge's alert must come within 60 s.
	faultAt := time.Now()
	for _, f := range faults {
		f.inject()
	}
	for pending := len(faults); pending > 0; {
		recs, err := readAnomalies(anomaliesPath)
		must(t, err)
		for _, f := range faults {
			if got := ours(f, recs); len(got) > 0 && f.firedAt == 0 {
				f.firing, f.firedAt = got[0], time.Since(faultAt)
				t.Logf("%s: firing after %v: %s (signals %v)", f.name, f.firedAt.Round(100*time.Millisecond), f.firing.Body, f.firing.Attrs["ebpfflow.anomaly.signals"])
				pending--
			}
		}
		if pending > 0 && time.Since(faultAt) > anomalyFireBy {
			for _, f := range faults {
				if f.firedAt == 0 {
					t.Errorf("%s: no alert on %s within %v of the fault", f.name, f.edge, anomalyFireBy)
				}
			}
			t.Fatalf("alerts so far: %d\n%s", len(recs), col.LogTail())
		}
		time.Sleep(250 * time.Millisecond)
	}
	// "rose from 4.21 ms to 84.7 ms", "rose from 0% to 100%"
	before := regexp.MustCompile(` (rose|fell) from [\d.]+ ?\S* to [\d.]+`)
	for _, f := range faults {
		if s := f.firing.str("ebpfflow.anomaly.state"); s != "firing" {
			t.Errorf("%s: first alert is %q, want firing: %s", f.name, s, f.firing.Body)
		}
		if !strings.Contains(f.firing.Body, f.edge) {
			t.Errorf("%s: body does not name %s: %s", f.name, f.edge, f.firing.Body)
		}
		if !before.MatchString(f.firing.Body) {
			t.Errorf("%s: body has no before/after values: %s", f.name, f.firing.Body)
		}
		signals := fmt.Sprint(f.firing.Attrs["ebpfflow.anomaly.signals"]) + " " + f.firing.Body
		if !regexp.MustCompile(f.signal).MatchString(signals) {
			t.Errorf("%s: no %s among the alert's signals: %v", f.name, f.signal, signals)
		}
	}

	// Recovery: remove the faults; each incident resolves, once.
	time.Sleep(5 * anomalyWindow)
	for _, f := range faults {
		f.remove()
	}
	recoverAt := time.Now()
	for pending := len(faults); pending > 0; {
		recs, err := readAnomalies(anomaliesPath)
		must(t, err)
		for _, f := range faults {
			got := ours(f, recs)
			if n := len(got); n > 0 && got[n-1].str("ebpfflow.anomaly.state") == "resolved" && f.resolveAt == 0 {
				f.resolved, f.resolveAt = got[n-1], time.Since(recoverAt)
				pending--
				firings := 0
				for _, r := range got {
					if r.str("ebpfflow.anomaly.state") == "firing" {
						firings++
					}
				}
				if firings != 1 {
					t.Errorf("%s: %d firing alerts on %s, want 1", f.name, firings, f.edge)
				}
				if f.resolved.str("ebpfflow.anomaly.id") != f.firing.str("ebpfflow.anomaly.id") {
					t.Errorf("%s: resolved id %s, firing id %s", f.name, f.resolved.str("ebpfflow.anomaly.id"), f.firing.str("ebpfflow.anomaly.id"))
				}
				t.Logf("%s: resolved %v after recovery: %s", f.name, f.resolveAt.Round(100*time.Millisecond), f.resolved.Body)
			}
		}
		if pending > 0 && time.Since(recoverAt) > anomalyResolve {
			for _, f := range faults {
				if f.resolveAt == 0 {
					t.Errorf("%s: no resolved alert on %s within %v of the recovery", f.name, f.edge, anomalyResolve)
				}
			}
			t.Fatalf("%s", col.LogTail())
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, f := range faults {
		t.Logf("anomaly end-to-end: %s alert latency %v, resolved after %v", f.name, f.firedAt.Round(100*time.Millisecond), f.resolveAt.Round(100*time.Millisecond))
	}
	t.Run("victorialogs", func(t *testing.T) {
		col.Stop(t) // drains the exporters
		checkAnomaliesDelivered(t, be, anomaliesPath)
	})
	t.Logf("anomaly end-to-end total %v", time.Since(began).Round(time.Second))
}
