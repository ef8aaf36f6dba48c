package httpprobe

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ring reads the probe's BPF ring buffer in place: a batch of records is
// handed out straight from the kernel's mapping and released with one
// store of the consumer position, where a record-at-a-time reader copies
// each record and stores the position per record (the per-record cost of
// a few hundred thousand records a second).
//
// The reader waits for the kernel's wakeups in the Go runtime's network
// poller (the map's fd is pollable), not in a blocking epoll_wait: a
// goroutine blocked in a system call makes the runtime's monitor thread
// poll every 20 µs to hand its processor on, a cost that grows with how
// often the reader blocks.
type ring struct {
	mu      sync.Mutex // held by read; close takes it to unmap
	cons    []byte     // consumer page (read-write): the position we have read up to
	prod    []byte     // producer page, then the data pages mapped twice
	data    []byte     // the data, twice: a record that wraps is contiguous
	mask    uint64
	file    *os.File // a non-blocking duplicate of the map's fd, in the poller
	conn    syscall.RawConn
	closing atomic.Bool // set before the file is closed: a failed wait then means closed
	closed  bool
}

// Record header bits (kernel/bpf/ringbuf.c).
const (
	ringHeaderSize = 8
	ringBusyBit    = 1 << 31 // reserved, not yet submitted or discarded
	ringDiscardBit = 1 << 30
)

var errRingClosed = errors.New("ring closed")

func newRing(m *ebpf.Map) (_ *ring, err error) {
	size := int(m.MaxEntries())
	page := os.Getpagesize()
	r := &ring{mask: uint64(size - 1)}
	defer func() {
		if err != nil {
			if r.file != nil {
				r.file.Close()
			}
			r.unmap()
		}
	}()
	fd := m.FD()
	if r.cons, err = unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("mmap ring consumer page: %w", err)
	}
	if r.prod, err = unix.Mmap(fd, int64(page), page+2*size, unix.PROT_READ, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("mmap ring data: %w", err)
	}
	r.data = r.prod[page:]
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ring fd: %w", err)
	}
	if err = unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		return nil, fmt.Errorf("ring fd: %w", err)
	}
	// A non-blocking fd is registered with the runtime's poller.
	r.file = os.NewFile(uintptr(dup), "http-ring")
	if r.conn, err = r.file.SyscallConn(); err != nil {
		return nil, fmt.Errorf("ring fd: %w", err)
	}
	return r, nil
}

func (r *ring) consPos() *uint64 { return (*uint64)(unsafe.Pointer(&r.cons[0])) }
func (r *ring) prodPos() *uint64 { return (*uint64)(unsafe.Pointer(&r.prod[0])) }

// read hands each submitted record to f, in order, until the ring is
// empty, then releases them to the kernel; it returns how many records it read. A record passed to f
// is valid only during the call.
func (r *ring) read(f func([]byte)) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errRingClosed
	}
	cons := atomic.LoadUint64(r.consPos())
	prod := atomic.LoadUint64(r.prodPos())
	n := 0
	// Space is released every quarter ring within a batch, so that a
	// long batch does not starve the kernel side.
	release := cons + (r.mask+1)/4
	for cons < prod {
		// The kernel publishes the length with release semantics.
		h := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[cons&r.mask])))
		if h&ringBusyBit != 0 {
			// Reserved and being written (a program copying user
			// memory): records after it wait for it, in order.
			runtime.Gosched()
			continue
		}
		size := uint64(h &^ (ringBusyBit | ringDiscardBit))
		if size > r.mask+1-ringHeaderSize || cons+ringHeaderSize+size > prod {
			atomic.StoreUint64(r.consPos(), cons)
			return n, fmt.Errorf("ring record of %d bytes at %d of %d", size, cons, prod)
		}
		start := (cons + ringHeaderSize) & r.mask
		if h&ringDiscardBit == 0 {
			f(r.data[start : start+size])
			n++
		}
		cons += ringHeaderSize + (size+7)&^7
		if cons >= release {
			atomic.StoreUint64(r.consPos(), cons)
			release = cons + (r.mask+1)/4
		}
	}
	atomic.StoreUint64(r.consPos(), cons)
	return n, nil
}

// wait blocks until the ring holds records, the deadline passes or the
// ring is closed (errRingClosed).
func (r *ring) wait(deadline time.Time) error {
	if err := r.file.SetReadDeadline(deadline); err != nil {
		return r.waitErr(err)
	}
	// The poller calls the check, and parks the goroutine until the
	// kernel's next wakeup when it reports nothing to read.
	return r.waitErr(r.conn.Read(func(uintptr) bool { return r.pending() }))
}

func (r *ring) waitErr(err error) error {
	switch {
	case err == nil, errors.Is(err, os.ErrDeadlineExceeded):
		return nil
	case r.closing.Load():
		return errRingClosed
	}
	return fmt.Errorf("ring wait: %w", err)
}

// pending reports whether submitted records wait to be read. The mapping
// outlives every wait: close unmaps only after closing the file, which
// ends a wait in progress.
func (r *ring) pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.closed && atomic.LoadUint64(r.consPos()) != atomic.LoadUint64(r.prodPos())
}

// close interrupts a wait and unmaps the ring once no read or wait runs.
func (r *ring) close() error {
	var ferr error
	if r.file != nil && !r.closing.Swap(true) {
		ferr = r.file.Close() // ends a wait in progress
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return errors.Join(ferr, r.unmap())
}

func (r *ring) unmap() error {
	var errs []error
	for _, b := range [][]byte{r.cons, r.prod} {
		if b != nil {
			errs = append(errs, unix.Munmap(b))
		}
	}
	r.cons, r.prod, r.data = nil, nil, nil
	return errors.Join(errs...)
}
