//go:build !linux

package engine

import "errors"

// start fails: the probes are Linux eBPF programs.
func (e *Node) start() error {
	return errors.New("ebpfflow needs Linux: its probes are eBPF programs")
}
