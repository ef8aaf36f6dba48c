//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// agentSinkConfig stands in for the Datadog Agent's OTLP ingest: an OTLP
// gRPC receiver writing what it gets to files.
const agentSinkConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[1]d
exporters:
  file/logs: {path: %[2]s/logs.json, flush_interval: 100ms}
  file/metrics: {path: %[2]s/metrics.json, flush_interval: 100ms}
  file/traces: {path: %[2]s/traces.json, flush_interval: 100ms}
extensions:
  health_check:
    endpoint: 127.0.0.1:%[3]d
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs: {receivers: [otlp], exporters: [file/logs]}
    metrics: {receivers: [otlp], exporters: [file/metrics]}
    traces: {receivers: [otlp], exporters: [file/traces]}
`

// TestDatadogExample runs examples/datadog-agent.yaml as shipped (10 s
// flushes) against a local OTLP receiver in the Datadog Agent's place and
// checks what the Agent would receive: pod a's flows and DNS lookups as
// logs, its DNS spans and flow metrics, each resource with the attributes
// Datadog maps to service (service.name), env (deployment.environment.name)
// and host (host.name), and the pod identity Datadog turns into tags.
func TestDatadogExample(t *testing.T) {
	testkit.RequireRoot(t)
	bin := collectorBinary(t)
	testkit.RequireTools(t, "nginx", "curl", "socat", "iptables", "dig", "dnsmasq")
	dir := outDir(t)
	a, b := newPodPairNet(t, "da", "db", 214)
	startServers(t, dir, b)
	dns := testkit.StartDNSServer(t, testkit.Netns(b.Netns), []netip.Addr{b.IP4},
		testkit.DNSRecord{Name: "web.datadog.test", Addrs: []netip.Addr{b.IP4}})

	sinkDir, agentPort, sinkHealth := filepath.Join(dir, "dd-agent"), testkit.FreePort(t), testkit.FreePort(t)
	must(t, os.MkdirAll(sinkDir, 0o755))
	sink := testkit.StartCollector(t, bin, sinkDir, fmt.Sprintf(agentSinkConfig, agentPort, sinkDir, sinkHealth), sinkHealth, 0)

	colDir := filepath.Join(dir, "collector")
	must(t, os.MkdirAll(colDir, 0o755))
	raw, err := os.ReadFile("../../examples/datadog-agent.yaml")
	must(t, err)
	// The example as shipped, plus a health_check for StartCollector to wait on.
	var m map[string]any
	must(t, yaml.Unmarshal(raw, &m))
	hp := testkit.FreePort(t)
	m["extensions"].(map[string]any)["health_check"] = map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", hp)}
	svc := m["service"].(map[string]any)
	svc["extensions"] = append(svc["extensions"].([]any), "health_check")
	out, err := yaml.Marshal(m)
	must(t, err)
	cfg := string(out)
	col := testkit.StartCollector(t, bin, colDir, cfg, hp, 0,
		"K8S_NODE_NAME="+nodeName, fmt.Sprintf("DD_AGENT_OTLP=127.0.0.1:%d", agentPort), "DD_ENV=e2e",
		"EBPFFLOW_QUEUE_DIR="+filepath.Join(dir, "queue"))

	// A container's service.name is its main process (its lowest pid), as
	// a real container's init: give pod a one that outlives curl and dig,
	// whose own names are then never the pod's.
	a.Start(t, filepath.Join(dir, "main.log"), "sleep", "600")
	curl(t, a, portHTTP4, fmt.Sprintf("http://%s:%d/blob4", b.IP4, httpPort), 0)
	a.Exec(t, 10*time.Second, "dig", "+tries=1", "+time=2", "@"+dns.Addrs[0].String(), "web.datadog.test", "A")
	time.Sleep(17 * time.Second) // one 10 s flush after the traffic, and the 5 s batch
	col.Stop(t)
	sink.Stop(t)

	host, err := os.Hostname()
	must(t, err)
	logs, err := readLogs(filepath.Join(sinkDir, "logs.json"))
	must(t, err)
	points, err := readMetrics(filepath.Join(sinkDir, "metrics.json"))
	must(t, err)
	spans, err := readSpans(filepath.Join(sinkDir, "traces.json"))
	must(t, err)
	checkRes := func(what string, res map[string]any) {
		if s, _ := res["service.name"].(string); s == "" || strings.HasPrefix(s, "unknown_service") && res["k8s.pod.uid"] == a.UID {
			t.Errorf("%s: Datadog service from service.name %q", what, s)
		}
		if res["deployment.environment.name"] != "e2e" {
			t.Errorf("%s: Datadog env from deployment.environment.name %v, want e2e", what, res["deployment.environment.name"])
		}
		if res["host.name"] != host {
			t.Errorf("%s: Datadog host from host.name %v, want %s", what, res["host.name"], host)
		}
	}
	var flows, lookups, podPoints, podSpans int
	for _, r := range logs {
		checkRes(r.Event, r.Resource)
		if r.Resource["k8s.pod.uid"] != a.UID {
			continue
		}
		if r.Resource["container.id"] != a.ContainerID || r.Resource["service.name"] != "sleep" {
			t.Errorf("pod a record: container.id %v service.name %v", r.Resource["container.id"], r.Resource["service.name"])
		}
		switch r.Event {
		case "network.flow":
			flows++
		case "dns.lookup":
			lookups++
		}
	}
	for _, p := range points {
		checkRes(p.Metric, p.Resource)
		if p.Resource["k8s.pod.uid"] == a.UID {
			podPoints++
		}
	}
	for _, s := range spans {
		checkRes(s.Name, s.Resource)
		if s.Resource["k8s.pod.uid"] == a.UID {
			podSpans++
		}
	}
	t.Logf("the agent would receive %d log records (%d flows, %d lookups of pod a), %d metric points (%d of pod a), %d spans (%d of pod a)",
		len(logs), flows, lookups, len(points), podPoints, len(spans), podSpans)
	if flows == 0 || lookups == 0 || podPoints == 0 || podSpans == 0 {
		t.Errorf("pod a: %d flow records, %d lookups, %d metric points, %d DNS spans reached the agent's OTLP receiver", flows, lookups, podPoints, podSpans)
	}
}
