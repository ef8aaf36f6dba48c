//go:build e2e

package e2e

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// collectorBinary is the built distribution, passed by `make e2e`.
func collectorBinary(t *testing.T) string {
	t.Helper()
	return testkit.CollectorBinary(t, "../../distribution/_build/otelcol-ebpfflow")
}

// outDir keeps the collector's config, log and output after the run
// (tests/out/e2e, git-ignored) so a failure can be read afterwards.
func outDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "out", "e2e", t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nodeName is given to the collector as K8S_NODE_NAME (as the DaemonSet's
// downward API does) and expected as the k8s.node.name resource attribute.
const nodeName = "e2e-node"

// collector is the running binary and where its file exporters write.
type collector struct {
	*testkit.Collector
	logsPath    string
	metricsPath string
	tracesPath  string
}

const collectorConfig = `receivers:
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
      exporters: [file/logs]
    metrics:
      receivers: [ebpfflow]
      exporters: [file/metrics]
    traces:
      receivers: [ebpfflow]
      exporters: [file/traces]
`

// collectorConfigOverride replaces collectorConfig when set (same verbs).
var collectorConfigOverride string

// startCollector runs the binary with the ebpfflow receiver (1 s flushes,
// default DNS timeout of 5 s) feeding file exporters, and waits until health_check reports it ready.
func startCollector(t *testing.T, bin, dir string) *collector {
	t.Helper()
	hp, mp := testkit.FreePort(t), testkit.FreePort(t)
	c := &collector{
		logsPath:    filepath.Join(dir, "logs.json"),
		metricsPath: filepath.Join(dir, "metrics.json"),
		tracesPath:  filepath.Join(dir, "traces.json"),
	}
	cfg := fmt.Sprintf(cmp.Or(collectorConfigOverride, collectorConfig), c.logsPath, c.metricsPath, hp, mp, c.tracesPath)
	c.Collector = testkit.StartCollector(t, bin, dir, cfg, hp, mp, "K8S_NODE_NAME="+nodeName)
	return c
}
