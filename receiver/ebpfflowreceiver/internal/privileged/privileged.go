// Package privileged gates tests that load eBPF objects or build network
// namespaces. Without root they skip, unless EBPFFLOW_REQUIRE_PRIVILEGED=1
// (set by CI), where a skip would hide a broken probe and so fails instead.
package privileged

import (
	"os"
	"testing"
)

// EnvRequire is the variable CI sets to turn a would-be skip into a failure.
const EnvRequire = "EBPFFLOW_REQUIRE_PRIVILEGED"

// Require skips t when the process is not root, or fails it when
// EBPFFLOW_REQUIRE_PRIVILEGED=1.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("privileged test needs root (%s=1 forbids skipping)", EnvRequire)
	}
	t.Skip("needs root to load eBPF programs; run as root or set " + EnvRequire + "=1 in CI")
}

// Unsupported reports that the kernel lacks a feature the test needs: a skip
// normally, a failure under EBPFFLOW_REQUIRE_PRIVILEGED=1.
func Unsupported(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("kernel lacks %s (%s=1 forbids skipping)", what, EnvRequire)
	}
	t.Skip("kernel lacks " + what)
}
