//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// outage is how long the gateway is down; the agent restarts halfway.
const outage = 60 * time.Second

const gatewayConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[1]d
exporters:
  file/logs:
    path: %[2]s
    flush_interval: 100ms
extensions:
  health_check:
    endpoint: 127.0.0.1:%[3]d
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [file/logs]
`

// agentConfig is examples/agent-otlp.yaml as shipped, with test plumbing
// added: 1 s flushes, a file copy of the logs (what the receiver emitted),
// self-telemetry on a port, health on another.
func agentConfig(t *testing.T, logsPath string, healthPort, metricsPort int) string {
	t.Helper()
	raw, err := os.ReadFile("../../examples/agent-otlp.yaml")
	must(t, err)
	var cfg map[string]any
	must(t, yaml.Unmarshal(raw, &cfg))
	sub := func(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }
	sub(sub(cfg, "receivers"), "ebpfflow")["flush_interval"] = "1s"
	sub(cfg, "exporters")["file/logs"] = map[string]any{"path": logsPath, "flush_interval": "100ms"}
	logs := sub(sub(sub(cfg, "service"), "pipelines"), "logs")
	logs["exporters"] = append(logs["exporters"].([]any), "file/logs")
	sub(sub(sub(cfg, "extensions"), "health_check"), "http")["endpoint"] = fmt.Sprintf("127.0.0.1:%d", healthPort)
	sub(cfg, "service")["telemetry"] = map[string]any{"metrics": map[string]any{
		"level": "detailed",
		"readers": []any{map[string]any{"pull": map[string]any{"exporter": map[string]any{
			"prometheus": map[string]any{"host": "127.0.0.1", "port": metricsPort}}}}},
	}}
	out, err := yaml.Marshal(cfg)
	must(t, err)
	return string(out)
}

// TestOutageNothingLost runs examples/agent-otlp.yaml shipping to a gateway
// collector while pod a opens one connection a second to pod b; the gateway
// stops for 60 s, the agent restarts halfway through, the gateway comes
// back. Every record the receiver emitted (the agents' file copies) must
// reach the gateway — nothing lost, nothing doubled — or show in the
// agent's own failed/dropped counts. It logs the on-disk queue's size at
// the end of the outage and the agent's memory before and during it.
func TestOutageNothingLost(t *testing.T) {
	testkit.RequireRoot(t)
	bin := collectorBinary(t)
	testkit.RequireTools(t, "nginx", "curl", "socat", "iptables")
	dir := outDir(t)
	a, b := newPodPairNet(t, "oa", "ob", 213)
	startServers(t, dir, b)

	queueDir := filepath.Join(dir, "queue")
	gwPort := testkit.FreePort(t)
	gwDir := func(n int) string {
		d := filepath.Join(dir, fmt.Sprintf("gateway%d", n))
		must(t, os.MkdirAll(d, 0o755))
		return d
	}
	startGateway := func(n int) *testkit.Collector {
		d, hp := gwDir(n), testkit.FreePort(t)
		return testkit.StartCollector(t, bin, d, fmt.Sprintf(gatewayConfig, gwPort, filepath.Join(d, "logs.json"), hp), hp, 0)
	}
	startAgent := func(n int) (*testkit.Collector, string) {
		d := filepath.Join(dir, fmt.Sprintf("agent%d", n))
		must(t, os.MkdirAll(d, 0o755))
		logs := filepath.Join(d, "logs.json")
		hp, mp := testkit.FreePort(t), testkit.FreePort(t)
		c := testkit.StartCollectorArgs(t, bin, d, agentConfig(t, logs, hp, mp), hp, mp, []string{"--feature-gates=+" + healthGate},
			"K8S_NODE_NAME="+nodeName, fmt.Sprintf("OTLP_ENDPOINT=127.0.0.1:%d", gwPort), "EBPFFLOW_QUEUE_DIR="+queueDir)
		return c, logs
	}

	gw1 := startGateway(1)
	agent1, agentLogs1 := startAgent(1)

	// One connection a second from pod a to pod b, until the end.
	ctx, cancel := context.WithCancel(context.Background())
	var made atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				cmd := a.Command(ctx, "curl", "-s", "-o", "/dev/null", "--max-time", "2", fmt.Sprintf("http://%s:%d/blob6", b.IP4, httpPort))
				if cmd.Run() == nil {
					made.Add(1)
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })

	time.Sleep(10 * time.Second)
	rssBefore := rssKiB(agent1.Cmd.Process.Pid)
	queueBefore, _ := dirSize(t, queueDir)
	gw1.Stop(t)
	downAt := time.Now()
	t.Logf("gateway down at %s", downAt.Format(time.TimeOnly))

	time.Sleep(outage / 2)
	agent1.Stop(t)
	agent2, agentLogs2 := startAgent(2)
	t.Logf("agent restarted %v into the outage", time.Since(downAt).Round(time.Second))
	time.Sleep(outage - time.Since(downAt))
	queueBytes, queueFiles := dirSize(t, queueDir)
	rssDuring := rssKiB(agent2.Cmd.Process.Pid)
	gw2 := startGateway(2)
	t.Logf("gateway back after %v: on-disk queue %d bytes in %d files (%d before the outage); agent RSS %d KiB before the outage, %d KiB at its end",
		time.Since(downAt).Round(time.Second), queueBytes, queueFiles, queueBefore, rssBefore, rssDuring)

	// Drained: the agent's queue is empty twice in a row.
	var self string
	var drainedAt time.Time
	empty := 0
	for deadline := time.Now().Add(90 * time.Second); ; {
		time.Sleep(time.Second)
		s, err := agent2.ScrapeSelfMetrics()
		must(t, err)
		if promValue(s, "otelcol_exporter_queue_size", `exporter="otlp_grpc"`) == 0 {
			empty++
		} else {
			empty = 0
		}
		if empty >= 2 {
			self, drainedAt = s, time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent queue not drained 90 s after the gateway came back\n%s", agent2.LogTail())
		}
	}
	t.Logf("queue drained %v after the gateway came back", time.Since(downAt).Round(time.Second)-outage)
	cancel()
	<-done
	agent2.Stop(t)
	gw2.Stop(t)

	// Everything flushed up to cut was enqueued before the drained scrapes.
	cut := drainedAt.Add(-5 * time.Second)
	emitted := readAll(t, agentLogs1, agentLogs2)
	arrived := readAll(t, filepath.Join(gwDir(1), "logs.json"), filepath.Join(gwDir(2), "logs.json"))
	want, got := keyCounts(emitted, cut), keyCounts(arrived, cut)
	lost, doubled := 0, 0
	var examples []string
	for k, n := range want {
		if got[k] < n {
			lost += n - got[k]
			if len(examples) < 5 {
				examples = append(examples, "lost: "+k)
			}
		}
	}
	for k, n := range got {
		if n > want[k] {
			doubled += n - want[k]
			if len(examples) < 10 {
				examples = append(examples, "extra: "+k)
			}
		}
	}
	failed := promValue(self, "otelcol_exporter_send_failed_log_records", `exporter="otlp_grpc"`) +
		promValue(self, "otelcol_exporter_enqueue_failed_log_records", `exporter="otlp_grpc"`)
	emittedN := 0
	for _, n := range want {
		emittedN += n
	}
	podFinals := 0
	for _, r := range emitted {
		if uid, _ := r.Resource["k8s.pod.uid"].(string); uid == a.UID && r.Attrs["ebpfflow.flow.final"] == true && !r.Time.After(cut) {
			podFinals++
		}
	}
	t.Logf("%d connections made; %d records emitted up to %s (%d final flow records of pod a), %d lost, %d doubled; agent's own failed count %v",
		made.Load(), emittedN, cut.Format(time.TimeOnly), podFinals, lost, doubled, failed)
	if lost > int(failed) || doubled > 0 {
		t.Errorf("%d records lost (%v counted failed) and %d doubled through the outage:\n%s", lost, failed, doubled, strings.Join(examples, "\n"))
	}
	if podFinals < int(outage/time.Second)/2 {
		t.Errorf("only %d final flow records of pod a's connections", podFinals)
	}
}

func readAll(t *testing.T, paths ...string) []logRecord {
	t.Helper()
	var out []logRecord
	for _, p := range paths {
		recs, err := readLogs(p)
		must(t, err)
		out = append(out, recs...)
	}
	return out
}

// keyCounts counts records by everything they carry, up to cut.
func keyCounts(recs []logRecord, cut time.Time) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		if r.Time.After(cut) {
			continue
		}
		out[r.Event+" "+r.Time.Format(time.RFC3339Nano)+" "+sortedMap(r.Resource)+" "+sortedMap(r.Attrs)]++
	}
	return out
}

func rssKiB(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return -1
}

func dirSize(t *testing.T, dir string) (bytes int64, files int) {
	t.Helper()
	var names []string
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		bytes += fi.Size()
		files++
		names = append(names, filepath.Base(p))
		return nil
	}))
	sort.Strings(names)
	t.Logf("queue files: %v", names)
	return bytes, files
}
