package flowprobe

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// sweepEvery is how many snapshots apart the lines are swept for orphans.
const sweepEvery = 8

// lookupMax is the most flow entries a snapshot reads lines for by lookup
// syscalls (~1 µs a line) rather than by mapping the arrays: a mapping
// inserts and later unmaps every page of both (1024 at the default), ~0.7
// ms, a fifth of an idle collector's CPU when it was made on every read.
const lookupMax = 256

// lineSlots is the number of lines per direction: Config.TCPLines, or half
// the flow entries, a power of two either way (the kernel masks the cookie).
func lineSlots(cfg Config) uint32 {
	n := cfg.TCPLines
	if n == 0 {
		n = max(cfg.MaxFlows/2, 1)
	}
	return uint32(1) << bits.Len32(n-1)
}

// lines is the user-space side of tx_lines and rx_lines. The arrays are
// mapped into the collector only while a snapshot of many flows, a sweep or
// a deletion reads or releases lines: a line is then one memory read, where
// a batch lookup costs ~150 ns a line, and the mapped pages (4 MiB at the
// default) count in the collector's RSS only meanwhile. A snapshot of a few
// flows looks their lines up one by one instead. Each (and Snapshot) and
// Delete run from one goroutine.
type lines struct {
	tx, rx *ebpf.Map
	slots  uint32
	mem    [2][]flowFlowLine // tx, rx while mapped
	raw    [2][]byte
	copies [2]flowFlowLine // the lines last looked up, while not mapped
	// A sweep for orphans, every sweepEvery snapshots: live lines no
	// flow entry named (its entry was evicted, or is being inserted). A
	// line still orphaned at the next sweep is released, so that its
	// socket counts in a new entry.
	reads   int
	named   map[conn]struct{}
	orphans [2]map[uint32]conn
}

func newLines(tx, rx *ebpf.Map, slots uint32) *lines {
	return &lines{tx: tx, rx: rx, slots: slots, named: map[conn]struct{}{},
		orphans: [2]map[uint32]conn{{}, {}}}
}

// begin prepares a snapshot expected to hold about n flow entries: it maps
// the arrays for a sweep or many entries; otherwise line looks lines up.
// Call unmap after.
func (l *lines) begin(n int) error {
	if l.reads%sweepEvery == 0 || n > lookupMax {
		return l.mapArrays()
	}
	return nil
}

// mapArrays maps both arrays read-write until unmap.
func (l *lines) mapArrays() error {
	size := int(l.slots) * int(unsafe.Sizeof(flowFlowLine{}))
	if page := os.Getpagesize(); size%page != 0 {
		size += page - size%page
	}
	for dir, m := range []*ebpf.Map{l.tx, l.rx} {
		b, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			l.unmap()
			return fmt.Errorf("map %s: %w", m, err)
		}
		l.raw[dir] = b
		l.mem[dir] = unsafe.Slice((*flowFlowLine)(unsafe.Pointer(&b[0])), l.slots)
	}
	return nil
}

func (l *lines) unmap() {
	for dir, b := range l.raw {
		if b != nil {
			unix.Munmap(b)
		}
		l.raw[dir], l.mem[dir] = nil, nil
	}
}

// line returns the line of c in direction dir (0 tx, 1 rx), or nil when c
// does not hold it: in the mapping, or else a copy looked up, valid until
// the next call for the same direction.
func (l *lines) line(c conn, dir int) (*flowFlowLine, error) {
	idx := uint32(c.cookie) & (l.slots - 1)
	ln := &l.copies[dir]
	if l.mem[dir] != nil {
		ln = &l.mem[dir][idx]
	} else if err := l.lookup(idx, dir); err != nil {
		return nil, err
	}
	if atomic.LoadUint64(&ln.Cookie) != c.cookie || ln.Peer != c.peer {
		return nil, nil
	}
	return ln, nil
}

// lookup copies line idx of direction dir into l.copies[dir]. The copy is
// not atomic: a copy with fewer bytes than packets (the kernel adds bytes
// first) is taken again, as read does in the mapping.
func (l *lines) lookup(idx uint32, dir int) error {
	m := l.tx
	if dir == 1 {
		m = l.rx
	}
	for range 2 {
		if err := m.Lookup(&idx, &l.copies[dir]); err != nil {
			return fmt.Errorf("look up line %d of %s: %w", idx, m, err)
		}
		if l.copies[dir].Bytes >= l.copies[dir].Packets {
			break
		}
	}
	return nil
}

// read copies a live line, packets first: the kernel adds bytes first, so
// a copy never has fewer bytes than packets unless the compiler reordered
// the two adds, which a second copy resolves.
func read(src *flowFlowLine) flowFlowLine {
	var ln flowFlowLine
	for range 2 {
		ln = *src
		ln.Packets = atomic.LoadUint64(&src.Packets)
		ln.Bytes = atomic.LoadUint64(&src.Bytes)
		if ln.Bytes >= ln.Packets {
			break
		}
	}
	return ln
}

// addTo adds the lines c holds to its flow's sample s.
func (l *lines) addTo(s *observed.FlowSample, c conn, base time.Time) error {
	if l.reads%sweepEvery == 0 {
		l.named[c] = struct{}{}
	}
	for dir := range 2 {
		src, err := l.line(c, dir)
		if err != nil {
			return err
		}
		if src != nil {
			ln := read(src)
			if err := addLine(s, &ln, dir == 0, base); err != nil {
				return err
			}
		}
	}
	return nil
}

// sweep releases lines orphaned at two sweeps in a row, every sweepEvery
// snapshots, after the snapshot's entries were all added (named). Mapped
// only.
func (l *lines) sweep() {
	defer func() { l.reads++ }()
	if l.reads%sweepEvery != 0 {
		return
	}
	defer clear(l.named)
	for dir := range 2 {
		seen := map[uint32]conn{}
		for i := range l.mem[dir] {
			ln := &l.mem[dir][i]
			cookie := atomic.LoadUint64(&ln.Cookie)
			if cookie == 0 || cookie == lineBusy || cookie&lineDead != 0 {
				continue // free, being claimed, or released
			}
			c := conn{cookie, ln.Peer}
			if _, ok := l.named[c]; ok {
				continue
			}
			if l.orphans[dir][uint32(i)] == c {
				release(ln, c)
				continue
			}
			seen[uint32(i)] = c
		}
		l.orphans[dir] = seen
	}
}

// releaseFlows releases the lines these flows hold (they were reported as
// finished and their entries are being deleted): their sockets count in new
// entries from now on.
// A few are released by lookup and update syscalls rather than through a
// mapping of the arrays (see lookupMax).
func (l *lines) releaseFlows(flows []conn) error {
	if len(flows) == 0 {
		return nil
	}
	if len(flows) <= lookupMax/2 {
		return l.releaseByUpdate(flows)
	}
	if err := l.mapArrays(); err != nil {
		return err
	}
	defer l.unmap()
	for _, c := range flows {
		for dir := range 2 {
			if ln, _ := l.line(c, dir); ln != nil { // mapped: no error
				release(ln, c)
			}
		}
	}
	return nil
}

// releaseByUpdate releases each line a flow holds by writing a released
// line over it. That is as safe as release's compare-and-swap: a live line
// is never claimed by another socket, so between the lookup and the update
// only its own socket writes it, and what that socket still counts there is
// lost with the flow's deletion either way. The counters written are zero:
// a claim resets them.
func (l *lines) releaseByUpdate(flows []conn) error {
	var errs []error
	for _, c := range flows {
		for dir, m := range []*ebpf.Map{l.tx, l.rx} {
			ln, err := l.line(c, dir)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ln == nil {
				continue
			}
			idx := uint32(c.cookie) & (l.slots - 1)
			dead := flowFlowLine{Cookie: c.cookie | lineDead, Peer: c.peer}
			if err := m.Update(&idx, &dead, ebpf.UpdateExist); err != nil {
				errs = append(errs, fmt.Errorf("release line %d of %s: %w", idx, m, err))
			}
		}
	}
	return errors.Join(errs...)
}

// release marks a live line released. Only its own socket writes a live
// line, and never its cookie: the compare-and-swap races with nothing but
// that socket's last packets, which the flow's deletion loses as well.
func release(ln *flowFlowLine, c conn) {
	atomic.CompareAndSwapUint64(&ln.Cookie, c.cookie, c.cookie|lineDead)
}
