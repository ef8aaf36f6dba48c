//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestConfigsValidate runs `otelcol-ebpfflow validate` on every example
// config and on the DaemonSet's ConfigMap: each component type and key they
// use must exist in the built distribution.
func TestConfigsValidate(t *testing.T) {
	bin := collectorBinary(t)
	env := append(os.Environ(),
		"K8S_NODE_NAME=e2e-node", "K8S_POD_IP=127.0.0.1", "OTLP_ENDPOINT=127.0.0.1:4317")

	configs, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(configs) == 0 {
		t.Fatalf("no example configs: %v", err)
	}
	// The collector config embedded in the DaemonSet's ConfigMap, and the
	// flags the DaemonSet runs it with.
	manifest, err := os.ReadFile("../../distribution/k8s/ebpfflow.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ch := parseChart(t, manifest)
	path := filepath.Join(t.TempDir(), "daemonset-configmap.yaml")
	if err := os.WriteFile(path, []byte(ch.config), 0o644); err != nil {
		t.Fatal(err)
	}
	configs = append(configs, path)
	// The DaemonSet runs the collector with the gate its health check needs.
	if !slices.Contains(ch.gates, "--feature-gates=+"+healthGate) {
		t.Errorf("distribution/k8s/ebpfflow.yaml: the DaemonSet's feature gates %v lack %s", ch.gates, healthGate)
	}
	for _, cfg := range configs {
		t.Run(filepath.Base(cfg), func(t *testing.T) {
			cmd := exec.Command(bin, "validate", "--feature-gates=+"+healthGate, "--config="+cfg)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("validate %s: %v\n%s", cfg, err, out)
			}
		})
	}
}

// healthGate makes the health_check extension report component status
// (a failed probe turns it unhealthy); the examples' health_check uses its
// http/component_health settings, which need it.
const healthGate = "extension.healthcheck.useComponentStatus"

func splitYAML(b []byte) [][]byte {
	var docs [][]byte
	start := 0
	for i := 0; i+4 <= len(b); i++ {
		if (i == 0 || b[i-1] == '\n') && string(b[i:i+4]) == "---\n" {
			docs = append(docs, b[start:i])
			start = i + 4
		}
	}
	return append(docs, b[start:])
}
