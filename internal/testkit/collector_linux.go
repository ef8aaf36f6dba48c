package testkit

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EnvCollector names the built collector binary (`make e2e` sets it).
const EnvCollector = "EBPFFLOW_COLLECTOR"

// CollectorBinary returns the absolute path of the built distribution:
// $EBPFFLOW_COLLECTOR, else fallback (relative to the test's directory).
// Without it the test skips, or fails when skips are forbidden.
func CollectorBinary(t testing.TB, fallback string) string {
	t.Helper()
	bin := os.Getenv(EnvCollector)
	if bin == "" {
		bin = fallback
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		Skip(t, fmt.Sprintf("collector binary %s: %v (run `make build`)", abs, err))
	}
	return abs
}

// FreePort returns a loopback TCP port nothing listens on.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Collector is the built collector binary running a test's config.
type Collector struct {
	Cmd        *exec.Cmd
	Dir        string // config.yaml and collector.log
	HealthURL  string // health_check's endpoint
	MetricsURL string // the Prometheus endpoint of its self-telemetry
	exited     chan struct{}
	err        error
	stopped    bool // Stop has run: a later exit is expected
}

// StartCollector writes config to dir/config.yaml, runs bin with it (env
// added to the environment, output to dir/collector.log) and waits until
// health_check on healthPort reports it ready. metricsPort is where the
// config serves self-telemetry. It is stopped at cleanup, and a collector
// that exits on its own or with a non-zero status fails the test.
func StartCollector(t testing.TB, bin, dir, config string, healthPort, metricsPort int, env ...string) *Collector {
	t.Helper()
	return StartCollectorWith(t, bin, dir, config, healthPort, metricsPort, CollectorOptions{}, env...)
}

// StartCollectorArgs is StartCollector with extra command-line arguments
// (e.g. --feature-gates=…) before --config.
func StartCollectorArgs(t testing.TB, bin, dir, config string, healthPort, metricsPort int, args []string, env ...string) *Collector {
	t.Helper()
	return StartCollectorWith(t, bin, dir, config, healthPort, metricsPort, CollectorOptions{Args: args}, env...)
}

// CollectorOptions are what some configs need beyond StartCollector's.
type CollectorOptions struct {
	Args       []string // more command-line arguments (--feature-gates=…), before --config
	HealthPath string   // health_check's path, "/" by default
}

// StartCollectorWith is StartCollector with options.
func StartCollectorWith(t testing.TB, bin, dir, config string, healthPort, metricsPort int, opts CollectorOptions, env ...string) *Collector {
	t.Helper()
	if opts.HealthPath == "" {
		opts.HealthPath = "/"
	}
	c := &Collector{
		Dir:        dir,
		HealthURL:  fmt.Sprintf("http://127.0.0.1:%d%s", healthPort, opts.HealthPath),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		exited:     make(chan struct{}),
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "collector.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.Cmd = exec.Command(bin, append(slices.Clone(opts.Args), "--config="+cfg)...)
	c.Cmd.Env = append(os.Environ(), env...)
	c.Cmd.Stdout, c.Cmd.Stderr = logf, logf
	start := time.Now()
	if err := c.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.Cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	t.Cleanup(func() { c.Stop(t) })

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.exited:
			t.Fatalf("collector exited during start-up: %v\n%s", c.err, c.LogTail())
		default:
		}
		if resp, err := http.Get(c.HealthURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector not ready after 60s\n%s", c.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("collector ready in %v (pid %d, output in %s)", time.Since(start).Round(time.Millisecond), c.Cmd.Process.Pid, dir)
	return c
}

// Stop sends SIGTERM (the receiver flushes on shutdown), waits, and fails
// the test unless the collector exits with status 0 within 20 s. A
// collector that had already exited fails it too.
func (c *Collector) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-c.exited:
		if !c.stopped {
			c.stopped = true
			t.Errorf("collector exited before the test stopped it: %v\n%s", c.exitStatus(), c.LogTail())
		}
		return
	default:
	}
	c.stopped = true
	_ = c.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		if c.err != nil {
			t.Errorf("collector exited with %v after SIGTERM\n%s", c.exitStatus(), c.LogTail())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("collector did not stop within 20s of SIGTERM; killing it\n%s", c.LogTail())
		_ = c.Cmd.Process.Kill()
		<-c.exited
	}
}

func (c *Collector) exitStatus() string {
	if c.err != nil {
		return c.err.Error()
	}
	return "exit status 0"
}

// ScrapeSelfMetrics returns the self-telemetry endpoint's text.
func (c *Collector) ScrapeSelfMetrics() (string, error) {
	resp, err := http.Get(c.MetricsURL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// LogTail returns the last 40 lines of the collector's log.
func (c *Collector) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "collector.log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "--- collector.log (tail) ---\n" + strings.Join(lines, "\n")
}
