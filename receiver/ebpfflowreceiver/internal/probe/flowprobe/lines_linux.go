package flowprobe

import (
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// lineBatch is the number of lines read per BPF_MAP_LOOKUP_BATCH call: the
// arrays are read in pieces through one small buffer, not copied whole.
const lineBatch = 1024

// lineSlots is the number of lines per direction: Config.TCPLines, or half
// the flow entries, a power of two either way (the kernel masks the cookie).
func lineSlots(cfg Config) uint32 {
	n := cfg.TCPLines
	if n == 0 {
		n = max(cfg.MaxFlows/2, 1)
	}
	return uint32(1) << bits.Len32(n-1)
}

// lines is the user-space side of tx_lines and rx_lines. Snapshot and
// Delete run from one goroutine.
type lines struct {
	tx, rx *ebpf.Map
	keys   []uint32
	vals   []flowFlowLine
	// Of the last snapshot: which flow each connection is, and the lines
	// it held (bit 0 tx, bit 1 rx), to release them when the flow goes.
	flow map[conn]int
	held map[conn]uint8
	// Live lines no flow entry named at the last read, by map: the entry
	// was evicted (or is being inserted); a line still orphaned at the
	// next read is released, so its socket counts in a new entry.
	orphans, seen [2]map[uint32]conn
}

func newLines(tx, rx *ebpf.Map) *lines {
	return &lines{
		tx: tx, rx: rx,
		keys: make([]uint32, lineBatch), vals: make([]flowFlowLine, lineBatch),
		flow: map[conn]int{}, held: map[conn]uint8{},
		orphans: [2]map[uint32]conn{{}, {}}, seen: [2]map[uint32]conn{{}, {}},
	}
}

// add adds every live line to its flow's sample in out (flow names the
// samples by connection) and releases lines orphaned twice in a row.
// Lines that cannot be a socket's are counted in decodeErrors.
func (l *lines) add(out []observed.FlowSample, base time.Time, decodeErrors func()) error {
	clear(l.held)
	var errs []error
	for dir, m := range []*ebpf.Map{l.tx, l.rx} {
		clear(l.seen[dir])
		var cursor ebpf.MapBatchCursor
		for {
			n, err := m.BatchLookup(&cursor, l.keys, l.vals, nil)
			for i := range n {
				ln := &l.vals[i]
				if ln.Cookie == 0 || ln.Cookie == lineBusy || ln.Cookie&lineDead != 0 {
					continue // free, being claimed, or released (already reported)
				}
				c := conn{ln.Cookie, ln.Peer}
				idx, ok := l.flow[c]
				if !ok {
					l.seen[dir][l.keys[i]] = c
					continue
				}
				if addLine(&out[idx], ln, dir == 0, base) != nil {
					decodeErrors()
					continue
				}
				l.held[c] |= 1 << dir
			}
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				break
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("read %s: %w", m, err))
				break
			}
		}
		var stale []uint32
		var conns []conn
		for k, c := range l.seen[dir] {
			if l.orphans[dir][k] == c {
				stale = append(stale, k)
				conns = append(conns, c)
			}
		}
		if err := release(m, stale, conns); err != nil {
			errs = append(errs, err)
		}
		l.orphans[dir], l.seen[dir] = l.seen[dir], l.orphans[dir]
	}
	return errors.Join(errs...)
}

// releaseFlows releases the lines these flows held at the last snapshot
// (they were reported as finished and their entries are being deleted):
// their sockets count in new entries from now on.
func (l *lines) releaseFlows(flows []conn, slots uint32) error {
	var errs []error
	for dir, m := range []*ebpf.Map{l.tx, l.rx} {
		var keys []uint32
		var conns []conn
		for _, c := range flows {
			if l.held[c]&(1<<dir) != 0 {
				keys = append(keys, uint32(c.cookie)&(slots-1))
				conns = append(conns, c)
			}
		}
		if err := release(m, keys, conns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// release marks these lines released. Only their own socket counts into a
// live line and nothing else takes it, so the write races with nothing but
// that socket's last packets, which the flow's deletion loses as well.
func release(m *ebpf.Map, keys []uint32, conns []conn) error {
	if len(keys) == 0 {
		return nil
	}
	vals := make([]flowFlowLine, len(keys))
	for i, c := range conns {
		vals[i] = flowFlowLine{Cookie: c.cookie | lineDead, Peer: c.peer}
	}
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		return fmt.Errorf("release lines of %s: %w", m, err)
	}
	return nil
}
