// Package probe is the contract every eBPF probe package implements and the
// reading of the loss counters that every probe object carries (see
// bpf/include/ebpfflow.bpf.h).
package probe

// Counters are a probe's cumulative self-telemetry, summed over CPUs.
type Counters struct {
	Events       uint64 // events handled in the kernel
	MapFull      uint64 // entries an aggregation map could not take
	RingbufFull  uint64 // ring buffer reservations that failed
	ParseErrors  uint64 // packets whose headers could not be parsed in the kernel
	DecodeErrors uint64 // records user space could not decode
}

// Probe is one attached eBPF program family. The engine names it (the
// `probe` attribute of self-telemetry).
type Probe interface {
	Counters() (Counters, error)
	Close() error
}
