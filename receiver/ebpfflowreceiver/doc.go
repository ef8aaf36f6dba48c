// Package ebpfflowreceiver observes every TCP and UDP connection and every
// packet the kernel drops on this node with eBPF, and emits them as
// network.flow / network.drop events (logs) and cumulative flow metrics.
//
// The package is a thin adapter: internal/engine loads and runs the probes
// without importing the collector, internal/pdatabuild turns its reports into
// pdata, and this package wires both to the collector's consumers.
//
//go:generate go tool -modfile=../../tools/go.mod mdatagen metadata.yaml
package ebpfflowreceiver // import "github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver"
