package probe

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// ReadStats sums the per-CPU `stats` array every probe object carries
// (bpf/include/ebpfflow.bpf.h: events, map_full, ringbuf_full, parse_error).
func ReadStats(m *ebpf.Map) (Counters, error) {
	var c Counters
	for i, f := range []*uint64{&c.Events, &c.MapFull, &c.RingbufFull, &c.ParseErrors} {
		var perCPU []uint64
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			return c, fmt.Errorf("read stats[%d]: %w", i, err)
		}
		for _, v := range perCPU {
			*f += v
		}
	}
	return c, nil
}
