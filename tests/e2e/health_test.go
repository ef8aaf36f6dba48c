//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

const healthCollectorConfig = `receivers:
  ebpfflow:
    flush_interval: 1s
    cgroup_root: %[1]s
exporters:
  file/logs:
    path: %[2]s
extensions:
  health_check:
    http:
      endpoint: 127.0.0.1:%[3]d
      status: {enabled: true, path: /}
    component_health:
      include_permanent_errors: true
      include_recoverable_errors: true
      recovery_duration: 5s
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
`

// TestHealthReflectsProbeFailure makes the flow and DNS probes fail to
// attach (their cgroup already holds an exclusive cgroup_skb program, which
// refuses multi-attach) while the tcp and drop probes run: the receiver
// starts degraded, ebpfflow_probe_up says which probes are down, and the
// health check, with component status on, turns unhealthy (HTTP 500,
// "healthy": false) naming them once recovery_duration has passed.
func TestHealthReflectsProbeFailure(t *testing.T) {
	testkit.RequireRoot(t)
	bin := collectorBinary(t)
	dir := outDir(t)

	cg := filepath.Join(testkit.CgroupV2Mount(t), "ebpfflow-health-"+testkit.RandomHex(4))
	must(t, os.Mkdir(cg, 0o755))
	t.Cleanup(func() { _ = os.Remove(cg) })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.CGroupSKB, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()},
	})
	must(t, err)
	t.Cleanup(func() { prog.Close() })
	f, err := os.Open(cg)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	// Legacy attach without BPF_F_ALLOW_MULTI: exclusive.
	must(t, link.RawAttachProgram(link.RawAttachProgramOptions{Target: int(f.Fd()), Program: prog, Attach: ebpf.AttachCGroupInetEgress}))
	t.Cleanup(func() {
		_ = link.RawDetachProgram(link.RawDetachProgramOptions{Target: int(f.Fd()), Program: prog, Attach: ebpf.AttachCGroupInetEgress})
	})
	// cgroup_root must be a cgroup2 mount point: bind-mount the cgroup.
	mnt := filepath.Join(dir, "cgroup")
	must(t, os.MkdirAll(mnt, 0o755))
	testkit.Run(t, "mount", "--bind", cg, mnt)
	t.Cleanup(func() { testkit.Run(t, "umount", mnt) })

	hp, mp := testkit.FreePort(t), testkit.FreePort(t)
	cfg := fmt.Sprintf(healthCollectorConfig, mnt, filepath.Join(dir, "logs.json"), hp, mp)
	col := testkit.StartCollectorArgs(t, bin, dir, cfg, hp, mp, []string{"--feature-gates=+" + healthGate}, "K8S_NODE_NAME="+nodeName)

	var code int
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		resp, err := http.Get(col.HealthURL)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code, body = resp.StatusCode, string(b)
		if code >= 500 || time.Now().After(deadline) {
			break
		}
	}
	if code < 500 || !strings.Contains(body, `"healthy":false`) || !strings.Contains(body, "probe flow") || !strings.Contains(body, "probe dns") {
		t.Errorf("health: %d %s; want a 5xx, healthy false, naming probes flow and dns\n%s", code, body, col.LogTail())
	}
	self, err := col.ScrapeSelfMetrics()
	must(t, err)
	for probe, want := range map[string]float64{"flow": 0, "dns": 0, "tcp": 1, "drop": 1} {
		if got := promValue(self, "otelcol_ebpfflow_probe_up", fmt.Sprintf("probe=%q", probe)); got != want {
			t.Errorf("ebpfflow_probe_up{probe=%q} = %v, want %v", probe, got, want)
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "collector.log"))
	if !strings.Contains(string(log), `"failed_probes": ["flow", "dns"]`) && !strings.Contains(string(log), `"failed_probes": ["flow","dns"]`) {
		t.Errorf("start-up line does not name the failed probes\n%s", col.LogTail())
	}
	t.Logf("health with two probes down: %d %s", code, body)
}
