// Package e2e runs the built otelcol-ebpfflow binary against real traffic
// between network-namespace "pods" that sit in kubelet-style cgroups, and
// checks the file exporter's output field by field.
//
// The tests carry the e2e build tag and need root and the binary:
//
//	make e2e   # builds distribution/_build/otelcol-ebpfflow, then
//	           # EBPFFLOW_COLLECTOR=<binary> go test -tags e2e ./tests/e2e
//
// so `go test ./...` from the repository root does not run them.
package e2e
