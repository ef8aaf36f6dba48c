// Package testkit is what the unit, privileged and end-to-end tests share:
// the one gate every skip goes through, network namespaces and veth pairs,
// kubelet-shaped pod cgroups, a dnsmasq resolver, the built collector binary
// and small encoding helpers. Tests only; nothing in the collector imports it.
//
// Every skip goes through Skip: without EBPFFLOW_REQUIRE_PRIVILEGED=1 a test
// that cannot run here (no root, a kernel feature or a tool missing) skips
// with the reason; with it (CI) the same test fails, so nothing passes
// quietly. `make test` prints the tests that skipped.
package testkit // import "github.com/ebpfflow/ebpfflow/internal/testkit"

import (
	"os"
	"os/exec"
	"testing"
)

// EnvRequire is the variable CI sets to turn a would-be skip into a failure.
const EnvRequire = "EBPFFLOW_REQUIRE_PRIVILEGED"

// Required reports whether skips are forbidden (EBPFFLOW_REQUIRE_PRIVILEGED=1).
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Skip skips t with reason, or fails it when skips are forbidden.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s (%s=1 forbids skipping)", reason, EnvRequire)
	}
	t.Skip(reason)
}

// RequireRoot passes when the process is root (eBPF, network namespaces,
// cgroups); otherwise it skips t, or fails it when skips are forbidden.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root to load eBPF programs, make network namespaces and cgroups; run as root")
	}
}

// Unsupported reports that the kernel or the host lacks a feature the test
// needs.
func Unsupported(t testing.TB, what string) {
	t.Helper()
	Skip(t, "this host lacks "+what)
}

// RequireTools passes when every tool is on PATH (`make deps` installs
// them all).
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			Skip(t, tool+" not installed (make deps)")
		}
	}
}
