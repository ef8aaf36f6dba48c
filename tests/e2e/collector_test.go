//go:build e2e

package e2e

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// collectorBinary is the built distribution, passed by `make e2e`.
func collectorBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("EBPFFLOW_COLLECTOR")
	if bin == "" {
		bin = "../../distribution/_build/otelcol-ebpfflow"
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		if os.Getenv("EBPFFLOW_REQUIRE_PRIVILEGED") == "1" {
			t.Fatalf("collector binary %s: %v (run `make build`)", abs, err)
		}
		t.Skipf("collector binary %s: %v (run `make e2e`)", abs, err)
	}
	return abs
}

// requireRoot mirrors internal/privileged, which tests/ cannot import.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("EBPFFLOW_REQUIRE_PRIVILEGED") == "1" {
		t.Fatal("the end-to-end test needs root (EBPFFLOW_REQUIRE_PRIVILEGED=1 forbids skipping)")
	}
	t.Skip("the end-to-end test needs root: network namespaces, cgroups, eBPF")
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// nodeName is given to the collector as K8S_NODE_NAME (as the DaemonSet's
// downward API does) and expected as the k8s.node.name resource attribute.
const nodeName = "e2e-node"

type collector struct {
	cmd         *exec.Cmd
	dir         string
	logsPath    string
	metricsPath string
	tracesPath  string
	healthURL   string
	metricsURL  string
	exited      chan struct{}
	err         error
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
	hp, mp := freePort(t), freePort(t)
	c := &collector{
		dir:         dir,
		logsPath:    filepath.Join(dir, "logs.json"),
		metricsPath: filepath.Join(dir, "metrics.json"),
		tracesPath:  filepath.Join(dir, "traces.json"),
		healthURL:   fmt.Sprintf("http://127.0.0.1:%d/", hp),
		metricsURL:  fmt.Sprintf("http://127.0.0.1:%d/metrics", mp),
		exited:      make(chan struct{}),
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, cmp.Or(collectorConfigOverride, collectorConfig), c.logsPath, c.metricsPath, hp, mp, c.tracesPath), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "collector.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin, "--config="+cfg)
	c.cmd.Env = append(os.Environ(), "K8S_NODE_NAME="+nodeName)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	start := time.Now()
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	t.Cleanup(func() { c.stop(t) })

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.exited:
			t.Fatalf("collector exited during start-up: %v\n%s", c.err, c.logTail())
		default:
		}
		if resp, err := http.Get(c.healthURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not ready after 60s\n%s", c.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("collector ready in %v (pid %d, output in %s)", time.Since(start).Round(time.Millisecond), c.cmd.Process.Pid, dir)
	return c
}

// stop sends SIGTERM (the receiver flushes on shutdown) and waits.
func (c *collector) stop(t *testing.T) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		t.Errorf("collector did not stop within 20s of SIGTERM; killing it\n%s", c.logTail())
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

func (c *collector) scrapeSelfMetrics() (string, error) {
	resp, err := http.Get(c.metricsURL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func (c *collector) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "collector.log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "--- collector.log (tail) ---\n" + strings.Join(lines, "\n")
}
