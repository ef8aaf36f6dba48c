//go:build !linux

package engine

import "errors"

// start fails: the probes are Linux eBPF programs.
func (e *Engine) start() error {
	return errors.New("ebpfflow needs Linux: its probes are eBPF programs")
}
