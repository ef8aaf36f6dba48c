//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// backends are the real OTLP backends of tests/backends, started for one test.
type backends struct {
	env map[string]string // the KEY=value lines of every <name>.env
	dir string
}

// startBackends builds nothing (tests/backends/build.sh has cached the
// binaries; make e2e runs it) and starts each named backend on loopback
// until cleanup.
func startBackends(t *testing.T, dir string, promConfig string, names ...string) *backends {
	t.Helper()
	b := &backends{env: map[string]string{}, dir: filepath.Join(dir, "backends")}
	script := func(name string) string {
		p, err := filepath.Abs(filepath.Join("..", "backends", name))
		must(t, err)
		return p
	}
	for _, name := range names {
		cmd := exec.Command(script("start.sh"), name)
		cmd.Env = append(os.Environ(), "STATE_DIR="+b.dir)
		if name == "prometheus" && promConfig != "" {
			path := filepath.Join(dir, "prometheus.yml")
			must(t, os.WriteFile(path, []byte(promConfig), 0o644))
			cmd.Env = append(cmd.Env, "PROMETHEUS_CONFIG="+path)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("start %s: %v\n%s\n(binaries come from tests/backends/build.sh, which make e2e runs)", name, err, out)
		}
		t.Cleanup(func() {
			stop := exec.Command(script("stop.sh"), name)
			stop.Env = append(os.Environ(), "STATE_DIR="+b.dir)
			if out, err := stop.CombinedOutput(); err != nil {
				t.Errorf("stop %s: %v\n%s", name, err, out)
			}
		})
		data, err := os.ReadFile(filepath.Join(b.dir, name+".env"))
		must(t, err)
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				b.env[k] = v
			}
		}
	}
	return b
}

func (b *backends) get(t *testing.T, rawURL string) []byte {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", rawURL, resp.Status, body)
	}
	return body
}

// backendsPromConfig promotes the resource attributes that tell workloads
// apart to labels (as examples/prometheus.yaml documents): without them two
// pods of one service would write the same series.
const backendsPromConfig = `global: {}
storage:
  tsdb:
    out_of_order_time_window: 30m
otlp:
  promote_resource_attributes: [k8s.pod.uid, container.id, k8s.node.name, host.name, process.executable.name]
`

const backendsCollectorConfig = `receivers:
  ebpfflow:
    flush_interval: 1s
exporters:
  file/logs:
    path: %[1]s
    flush_interval: 100ms
  file/metrics:
    path: %[2]s
    flush_interval: 100ms
  file/traces:
    path: %[5]s
    flush_interval: 100ms
  otlp_http/victorialogs:
    logs_endpoint: %[6]s/v1/logs
  otlp_http/prometheus:
    metrics_endpoint: %[7]s/v1/metrics
    sending_queue:
      enabled: true
      num_consumers: 1
  otlp_http/jaeger:
    traces_endpoint: %[8]s/v1/traces
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
    logs:
      receivers: [ebpfflow]
      exporters: [file/logs, otlp_http/victorialogs]
    metrics:
      receivers: [ebpfflow]
      exporters: [file/metrics, otlp_http/prometheus]
    traces:
      receivers: [ebpfflow]
      exporters: [file/traces, otlp_http/jaeger]
`

// TestBackends sends what the receiver emits for real traffic between two
// pods (an HTTP download, a connect that netfilter drops, DNS lookups) to
// VictoriaLogs (logs), Prometheus (metrics) and Jaeger (DNS spans) over
// OTLP/HTTP, alongside file exporters, and reads each backend back through
// its own query API: every record the receiver emitted (its file copy, and
// the collector's own accepted/sent counts) arrived, with the same
// attributes and resource (pod identity, service.name).
func TestBackends(t *testing.T) {
	testkit.RequireRoot(t)
	bin := collectorBinary(t)
	testkit.RequireTools(t, "nginx", "curl", "socat", "iptables", "dig", "dnsmasq")
	dir := outDir(t)
	be := startBackends(t, dir, backendsPromConfig, "victorialogs", "prometheus", "jaeger")

	a, b := newPodPairNet(t, "ba", "bb", 212)
	startServers(t, dir, b)
	dns := testkit.StartDNSServer(t, testkit.Netns(b.Netns), []netip.Addr{b.IP4},
		testkit.DNSRecord{Name: "web.backends.test", Addrs: []netip.Addr{b.IP4, b.IP6}})

	hp, mp := testkit.FreePort(t), testkit.FreePort(t)
	col := &collector{
		logsPath:    filepath.Join(dir, "logs.json"),
		metricsPath: filepath.Join(dir, "metrics.json"),
		tracesPath:  filepath.Join(dir, "traces.json"),
	}
	cfg := fmt.Sprintf(backendsCollectorConfig, col.logsPath, col.metricsPath, hp, mp, col.tracesPath,
		be.env["VICTORIALOGS_OTLP_HTTP"], be.env["PROMETHEUS_OTLP_HTTP"], be.env["JAEGER_OTLP_HTTP"])
	col.Collector = testkit.StartCollector(t, bin, dir, cfg, hp, mp, "K8S_NODE_NAME="+nodeName)
	time.Sleep(500 * time.Millisecond)

	download(t, a, b, portHTTP4, fmt.Sprintf("http://%s:%d/blob4", b.IP4, httpPort))
	curl(t, a, portDropped, fmt.Sprintf("http://%s:%d/", b.IP4, droppedPort), 28)
	for _, qtype := range []string{"A", "AAAA", "TXT"} {
		a.Exec(t, 10*time.Second, "dig", "+tries=1", "+time=2", "@"+dns.Addrs[0].String(), "web.backends.test", qtype)
	}
	// Final records of both TCP connections, then a few flushes more.
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs, err := readLogs(col.logsPath)
		must(t, err)
		finals := 0
		for _, r := range recs {
			if r.Event == "network.flow" && r.str("source.address") == a.IP4.String() &&
				(r.int("source.port") == portHTTP4 || r.int("source.port") == portDropped) && r.Attrs["ebpfflow.flow.final"] == true {
				finals++
			}
		}
		if finals >= 3 || time.Now().After(deadline) { // client + server of the download, the dropped connect
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	self, err := col.ScrapeSelfMetrics()
	must(t, err)
	col.Stop(t) // flushes the receiver and drains the exporters

	recs, err := readLogs(col.logsPath)
	must(t, err)
	if len(recs) == 0 {
		t.Fatalf("no records\n%s", col.LogTail())
	}
	counts := map[string]int{}
	for _, r := range recs {
		counts[r.Event]++
	}
	t.Logf("receiver emitted %d log records %v", len(recs), counts)
	for _, ev := range []string{"network.flow", "network.drop", "dns.lookup"} {
		if counts[ev] == 0 {
			t.Errorf("no %s record from the traffic", ev)
		}
	}
	t.Run("self_counts", func(t *testing.T) {
		// The node's other traffic goes on until the stop, whose last flush
		// adds records: counts scraped before it are a lower bound of the
		// file's, and nothing may have failed. The exact comparison is the
		// backends' (after the stop) with the file's.
		accepted := promValue(self, "otelcol_receiver_accepted_log_records", `receiver="ebpfflow"`)
		sent := promValue(self, "otelcol_exporter_sent_log_records", `exporter="otlp_http/victorialogs"`)
		for _, m := range []string{"otelcol_exporter_send_failed_log_records", "otelcol_exporter_enqueue_failed_log_records",
			"otelcol_exporter_send_failed_metric_points", "otelcol_exporter_send_failed_spans", "otelcol_receiver_refused_log_records"} {
			if v := promValue(self, m, ""); v != 0 {
				t.Errorf("%s = %v", m, v)
			}
		}
		if accepted == 0 || accepted > float64(len(recs)) || sent > accepted {
			t.Errorf("receiver accepted %v log records before the stop, the file holds %d after it, victorialogs exporter had sent %v", accepted, len(recs), sent)
		}
		t.Logf("before the stop: receiver accepted %v log records, victorialogs exporter sent %v; after it the file holds %d", accepted, sent, len(recs))
	})
	t.Run("victorialogs", func(t *testing.T) { checkVictoriaLogs(t, be, recs, a, b) })
	t.Run("jaeger", func(t *testing.T) { checkJaeger(t, be, col.tracesPath, a) })
	t.Run("prometheus", func(t *testing.T) { checkPrometheus(t, be, col.metricsPath, a, b) })
}

// promValue sums the samples of a metric (as named, or with the _total or
// _ratio suffix the exporter adds) whose labels contain labels, in
// Prometheus text format.
func promValue(text, name, labels string) float64 {
	sum := 0.0
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "#") || !strings.HasPrefix(l, name) {
			continue
		}
		rest := strings.TrimPrefix(l, name)
		if !strings.HasPrefix(rest, "{") && !strings.HasPrefix(rest, "_total{") && !strings.HasPrefix(rest, "_ratio{") {
			continue
		}
		if !strings.Contains(rest, labels) {
			continue
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// vlRecord is one VictoriaLogs row: every field as a string.
type vlRecord map[string]string

func queryVictoriaLogs(t *testing.T, be *backends, query string) []vlRecord {
	t.Helper()
	q := url.Values{"query": {query}, "limit": {"100000"}}
	body := be.get(t, be.env["VICTORIALOGS_URL"]+"/select/logsql/query?"+q.Encode())
	var out []vlRecord
	s := bufio.NewScanner(bytes.NewReader(body))
	s.Buffer(make([]byte, 1<<20), 1<<26)
	for s.Scan() {
		if len(bytes.TrimSpace(s.Bytes())) == 0 {
			continue
		}
		var r vlRecord
		if err := json.Unmarshal(s.Bytes(), &r); err != nil {
			t.Fatalf("victorialogs row %q: %v", s.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// recordKey identifies a record in both copies: event, time and the
// attributes that tell records of one flush apart.
func recordKey(event, ts string, get func(string) string) string {
	parts := []string{event, ts}
	for _, k := range []string{"ebpfflow.flow.local_role", "source.address", "source.port", "destination.address",
		"destination.port", "ebpfflow.drop.reason", "ebpfflow.drop.location", "network.interface.name", "ebpfflow.dns.id", "client.port"} {
		parts = append(parts, get(k))
	}
	return strings.Join(parts, "|")
}

// sameValue compares a pdata value with its text form in a backend:
// numbers numerically, arrays as JSON.
func sameValue(want any, got string) bool {
	switch w := want.(type) {
	case string:
		return w == got
	case bool:
		return strconv.FormatBool(w) == got
	case int64:
		g, err := strconv.ParseFloat(got, 64)
		return err == nil && g == float64(w)
	case float64:
		g, err := strconv.ParseFloat(got, 64)
		return err == nil && (g == w || math.Abs(g-w) <= 1e-9*math.Max(math.Abs(w), 1))
	case []any:
		var g []any
		if json.Unmarshal([]byte(got), &g) != nil || len(g) != len(w) {
			return false
		}
		for i := range w {
			if fmt.Sprint(w[i]) != fmt.Sprint(g[i]) {
				return false
			}
		}
		return true
	}
	return fmt.Sprint(want) == got
}

// vlDiff lists the attributes and resource attributes of rec that a
// VictoriaLogs row lacks or holds differently.
func vlDiff(rec logRecord, got vlRecord) []string {
	var out []string
	for _, m := range []map[string]any{rec.Attrs, rec.Resource} {
		out = append(out, vlMapDiff("", m, got)...)
	}
	return out
}

// vlMapDiff compares a map of attributes with the row; VictoriaLogs stores
// a map value's keys as "<key>.<subkey>" fields.
func vlMapDiff(prefix string, m map[string]any, got vlRecord) []string {
	var out []string
	for key, want := range m {
		if sub, ok := want.(map[string]any); ok {
			out = append(out, vlMapDiff(prefix+key+".", sub, got)...)
			continue
		}
		if g, ok := got[prefix+key]; !ok || !sameValue(want, g) {
			out = append(out, fmt.Sprintf("%s = %q in victorialogs, %v (%T) emitted", prefix+key, g, want, want))
		}
	}
	return out
}

// checkAnomaliesDelivered finds every anomaly alert the collector wrote to
// its file in VictoriaLogs, body and attributes equal.
func checkAnomaliesDelivered(t *testing.T, be *backends, path string) {
	lines, err := completeLines(path)
	must(t, err)
	var u plog.JSONUnmarshaler
	var alerts []logRecord
	bodies := map[string]string{}
	for _, line := range lines {
		ld, err := u.UnmarshalLogs(line)
		must(t, err)
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					r := logRecord{Event: lr.EventName(), Time: lr.Timestamp().AsTime(), Resource: rl.Resource().Attributes().AsRaw(), Attrs: lr.Attributes().AsRaw()}
					alerts = append(alerts, r)
					bodies[r.str("ebpfflow.anomaly.id")+r.str("ebpfflow.anomaly.state")] = lr.Body().AsString()
				}
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts in the file")
	}
	var rows []vlRecord
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		rows = queryVictoriaLogs(t, be, "ebpfflow.anomaly.id:*")
		if len(rows) >= len(alerts) || time.Now().After(deadline) {
			break
		}
	}
	if len(rows) != len(alerts) {
		t.Errorf("victorialogs holds %d alerts, the collector emitted %d", len(rows), len(alerts))
	}
	byID := map[string]vlRecord{}
	for _, r := range rows {
		byID[r["ebpfflow.anomaly.id"]+r["ebpfflow.anomaly.state"]] = r
	}
	for _, a := range alerts {
		id := a.str("ebpfflow.anomaly.id") + a.str("ebpfflow.anomaly.state")
		got, ok := byID[id]
		if !ok {
			t.Errorf("alert %s not in victorialogs: %v", id, a)
			continue
		}
		if got["_msg"] != bodies[id] {
			t.Errorf("alert %s body %q in victorialogs, %q emitted", id, got["_msg"], bodies[id])
		}
		for _, d := range vlDiff(a, got) {
			t.Errorf("alert %s: %s", id, d)
		}
	}
	t.Logf("victorialogs: %d anomaly alerts compared with the %d emitted", len(rows), len(alerts))
}

func checkVictoriaLogs(t *testing.T, be *backends, recs []logRecord, a, b *pod) {
	// Counts of every record of the node, per event: a busy node emits more
	// than one query should return.
	want := map[string]int{}
	for _, r := range recs {
		want[r.Event]++
	}
	var got map[string]int
	deadline := time.Now().Add(15 * time.Second) // searchable about a second after arrival
	for {
		got = map[string]int{}
		for _, row := range queryVictoriaLogs(t, be, "* | stats by (event.name) count() n") {
			n, _ := strconv.Atoi(row["n"])
			got[row["event.name"]] = n
		}
		if fmt.Sprint(got) == fmt.Sprint(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("victorialogs holds %v records by event, the receiver emitted %v", got, want)
	}
	// Field by field: every record of the two pods.
	var rows []vlRecord
	for _, p := range []*pod{a, b} {
		rows = append(rows, queryVictoriaLogs(t, be, fmt.Sprintf(`k8s.pod.uid:=%q`, p.UID))...)
	}
	var podRecs []logRecord
	for _, r := range recs {
		if uid := r.Resource["k8s.pod.uid"]; uid == a.UID || uid == b.UID {
			podRecs = append(podRecs, r)
		}
	}
	if len(rows) != len(podRecs) || len(podRecs) == 0 {
		t.Errorf("victorialogs holds %d records of the pods, the receiver emitted %d", len(rows), len(podRecs))
	}
	recs = podRecs
	byKey := map[string][]vlRecord{}
	for _, r := range rows {
		ts, err := time.Parse(time.RFC3339Nano, r["_time"])
		if err != nil {
			t.Fatalf("victorialogs _time %q: %v", r["_time"], err)
		}
		k := recordKey(r["event.name"], strconv.FormatInt(ts.UnixNano(), 10), func(k string) string { return r[k] })
		byKey[k] = append(byKey[k], r)
	}
	missing, compared := 0, 0
	for _, rec := range recs {
		k := recordKey(rec.Event, strconv.FormatInt(rec.Time.UnixNano(), 10), func(k string) string {
			if v, ok := rec.Attrs[k]; ok {
				return fmt.Sprint(v)
			}
			return ""
		})
		cands := byKey[k]
		if len(cands) == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("not in victorialogs: %v", rec)
			}
			continue
		}
		// A busy node reuses a 4-tuple within one flush: take the candidate
		// that matches every field, else report the differences of the first.
		pick := 0
		for i, c := range cands {
			if len(vlDiff(rec, c)) == 0 {
				pick = i
				break
			}
		}
		got := cands[pick]
		byKey[k] = append(cands[:pick:pick], cands[pick+1:]...)
		compared++
		for _, d := range vlDiff(rec, got) {
			t.Errorf("%s: %s", rec.Event, d)
		}
	}
	t.Logf("victorialogs: %d records compared field by field, %d missing", compared, missing)

	// The pods' records carry their identity and service.name; the backend
	// can be queried by it, as a user would.
	for _, p := range []struct {
		pod     *pod
		service string
	}{{a, "curl"}, {b, "nginx"}} {
		rows := queryVictoriaLogs(t, be, fmt.Sprintf(`k8s.pod.uid:=%q`, p.pod.UID))
		if len(rows) == 0 {
			t.Errorf("no records of pod %s (k8s.pod.uid %s)", p.pod.Name, p.pod.UID)
		}
		for _, r := range rows {
			if r["service.name"] != p.service || r["container.id"] != p.pod.ContainerID || r["k8s.node.name"] != nodeName {
				t.Errorf("pod %s record: service.name %q container.id %q k8s.node.name %q, want %q %q %q",
					p.pod.Name, r["service.name"], r["container.id"], r["k8s.node.name"], p.service, p.pod.ContainerID, nodeName)
				break
			}
		}
	}
	for _, ev := range []string{"network.flow", "network.drop", "dns.lookup"} {
		if n := len(queryVictoriaLogs(t, be, fmt.Sprintf(`event.name:=%q`, ev))); n == 0 {
			t.Errorf("no %s in victorialogs", ev)
		}
	}
}

// jaegerTrace is the part of /api/traces/{id} the test reads.
type jaegerTrace struct {
	Data []struct {
		Spans []struct {
			TraceID       string `json:"traceID"`
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			Duration      int64  `json:"duration"`
			ProcessID     string `json:"processID"`
			Tags          []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
			Tags        []struct {
				Key   string `json:"key"`
				Value any    `json:"value"`
			} `json:"tags"`
		} `json:"processes"`
	} `json:"data"`
}

func checkJaeger(t *testing.T, be *backends, tracesPath string, a *pod) {
	lines, err := completeLines(tracesPath)
	must(t, err)
	var u ptrace.JSONUnmarshaler
	found, fromA := 0, 0
	total := 0
	for _, line := range lines {
		td, err := u.UnmarshalTraces(line)
		must(t, err)
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			res := rs.Resource().Attributes()
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				sps := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < sps.Len(); k++ {
					total++
					if checkJaegerSpan(t, be, res, sps.At(k)) {
						found++
					}
					if v, _ := res.Get("k8s.pod.uid"); v.Str() == a.UID {
						fromA++
					}
				}
			}
		}
	}
	if total == 0 || fromA == 0 {
		t.Fatalf("%d DNS spans emitted, %d from pod %s", total, fromA, a.Name)
	}
	if found != total {
		t.Errorf("jaeger returned %d of the %d DNS spans emitted", found, total)
	}
	t.Logf("jaeger: %d of %d spans found and compared", found, total)
}

// checkJaegerSpan fetches one span's trace and compares name, duration,
// service, tags and process tags.
func checkJaegerSpan(t *testing.T, be *backends, res pcommon.Map, sp ptrace.Span) bool {
	traceID, spanID := sp.TraceID(), sp.SpanID()
	tid := hex.EncodeToString(traceID[:])
	var tr jaegerTrace
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(be.env["JAEGER_QUERY_URL"] + "/api/traces/" + tid)
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &tr) == nil && len(tr.Data) == 1 && len(tr.Data[0].Spans) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("trace %s (%s) not in jaeger: %s %s", tid, sp.Name(), resp.Status, body)
			return false
		}
		time.Sleep(300 * time.Millisecond)
	}
	// An HTTP request's CLIENT and SERVER spans share a trace: this span
	// is the one with its id.
	js := tr.Data[0].Spans[0]
	for _, s := range tr.Data[0].Spans {
		if s.SpanID == hex.EncodeToString(spanID[:]) {
			js = s
		}
	}
	proc := tr.Data[0].Processes[js.ProcessID]
	tags := map[string]any{}
	for _, tg := range js.Tags {
		tags[tg.Key] = tg.Value
	}
	ptags := map[string]any{}
	for _, tg := range proc.Tags {
		ptags[tg.Key] = tg.Value
	}
	wantDur := sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime()).Microseconds()
	if js.SpanID != hex.EncodeToString(spanID[:]) || js.OperationName != sp.Name() || abs(js.Duration-wantDur) > 1 {
		t.Errorf("jaeger span %s %q %d µs, emitted %s %q %d µs", js.SpanID, js.OperationName, js.Duration, hex.EncodeToString(spanID[:]), sp.Name(), wantDur)
	}
	svc, _ := res.Get("service.name")
	if proc.ServiceName != svc.Str() || proc.ServiceName == "" {
		t.Errorf("jaeger service %q, resource service.name %q", proc.ServiceName, svc.Str())
	}
	if want := strings.ToLower(sp.Kind().String()); tags["span.kind"] != want {
		t.Errorf("span.kind %v, want %s", tags["span.kind"], want)
	}
	for key, want := range sp.Attributes().AsRaw() {
		if !sameJSON(want, tags[key]) {
			t.Errorf("span %s tag %s = %v (%T), emitted %v (%T)", sp.Name(), key, tags[key], tags[key], want, want)
		}
	}
	for key, want := range res.AsRaw() {
		if key == "service.name" {
			continue
		}
		if !sameJSON(want, ptags[key]) {
			t.Errorf("process tag %s = %v, resource %v", key, ptags[key], want)
		}
	}
	return true
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// sameJSON compares a pdata value with what a JSON API returned for it.
func sameJSON(want, got any) bool {
	switch g := got.(type) {
	case string:
		return sameValue(want, g)
	case float64:
		return sameValue(want, strconv.FormatFloat(g, 'g', -1, 64))
	case bool:
		return sameValue(want, strconv.FormatBool(g))
	case nil:
		return false
	}
	b, _ := json.Marshal(got)
	return sameValue(want, string(b))
}

// promName is the Prometheus name of an OTLP metric as Prometheus'
// default translation writes it.
func promName(metric, unit string, sum bool) string {
	n := strings.ReplaceAll(metric, ".", "_")
	if unit == "s" {
		n += "_seconds"
	} else if unit == "By" {
		n += "_bytes"
	}
	if sum {
		n += "_total"
	}
	return n
}

var labelRe = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func checkPrometheus(t *testing.T, be *backends, metricsPath string, a, b *pod) {
	points, err := readMetrics(metricsPath)
	must(t, err)
	// The last point of each series of the two pods' resources.
	last := map[string]point{}
	for _, p := range points {
		uid, _ := p.Resource["k8s.pod.uid"].(string)
		if uid != a.UID && uid != b.UID {
			continue
		}
		last[p.series()] = p
	}
	type check struct {
		metric, prom string
	}
	checks := []check{
		{"ebpfflow.network.flow.bytes", "ebpfflow_network_flow_bytes_total"},
		{"ebpfflow.network.flow.packets", "ebpfflow_network_flow_packets_total"},
		{"ebpfflow.tcp.rtt", "ebpfflow_tcp_rtt_seconds_count"},
		{"dns.lookup.duration", "dns_lookup_duration_seconds_count"},
	}
	keys := make([]string, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	compared := map[string]int{}
	for _, c := range checks {
		for _, k := range keys {
			p := last[k]
			if p.Metric != c.metric {
				continue
			}
			sel := []string{fmt.Sprintf(`job=%q`, p.Resource["service.name"]), fmt.Sprintf(`k8s_pod_uid=%q`, p.Resource["k8s.pod.uid"])}
			for ak, av := range p.Attrs {
				sel = append(sel, fmt.Sprintf(`%s=%q`, labelRe.ReplaceAllString(ak, "_"), fmt.Sprint(av)))
			}
			q := c.prom + "{" + strings.Join(sel, ",") + "}"
			var resp struct {
				Data struct {
					Result []struct {
						Value []any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			must(t, json.Unmarshal(be.get(t, be.env["PROMETHEUS_URL"]+"/api/v1/query?"+url.Values{"query": {q}}.Encode()), &resp))
			if len(resp.Data.Result) != 1 {
				t.Errorf("%s: %d series in prometheus, want 1", q, len(resp.Data.Result))
				continue
			}
			v, _ := strconv.ParseFloat(fmt.Sprint(resp.Data.Result[0].Value[1]), 64)
			if v != p.Value {
				t.Errorf("%s = %v in prometheus, %v emitted last", q, v, p.Value)
			}
			compared[c.metric]++
		}
	}
	for _, c := range checks {
		if compared[c.metric] == 0 {
			t.Errorf("no series of %s for the pods compared", c.metric)
		}
	}
	t.Logf("prometheus: series compared %v", compared)
}
