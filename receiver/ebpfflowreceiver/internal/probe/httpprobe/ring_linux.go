package httpprobe

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
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
type ring struct {
	mu      sync.Mutex // held by wait and read; close takes it to unmap
	cons    []byte     // consumer page (read-write): the position we have read up to
	prod    []byte     // producer page, then the data pages mapped twice
	data    []byte     // the data, twice: a record that wraps is contiguous
	mask    uint64
	epfd    int
	closefd int // eventfd that interrupts wait
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
	r := &ring{mask: uint64(size - 1), epfd: -1, closefd: -1}
	defer func() {
		if err != nil {
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
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("ring epoll: %w", err)
	}
	if r.closefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("ring eventfd: %w", err)
	}
	for _, f := range []int{fd, r.closefd} {
		if err = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, f, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(f)}); err != nil {
			return nil, fmt.Errorf("ring epoll add: %w", err)
		}
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

// wait blocks until the kernel wakes the reader, the deadline passes or
// the ring is closed (errRingClosed).
func (r *ring) wait(deadline time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errRingClosed
	}
	var ev [2]unix.EpollEvent
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			return nil
		}
		k, err := unix.EpollWait(r.epfd, ev[:], ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ring epoll wait: %w", err)
		}
		for _, e := range ev[:k] {
			if int(e.Fd) == r.closefd {
				return errRingClosed
			}
		}
		return nil
	}
}

// close interrupts a wait and unmaps the ring once no read or wait runs.
func (r *ring) close() error {
	if r.closefd >= 0 {
		var one [8]byte
		one[0] = 1
		unix.Write(r.closefd, one[:])
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.unmap()
}

func (r *ring) unmap() error {
	var errs []error
	for _, b := range [][]byte{r.cons, r.prod} {
		if b != nil {
			errs = append(errs, unix.Munmap(b))
		}
	}
	for _, fd := range []int{r.epfd, r.closefd} {
		if fd >= 0 {
			errs = append(errs, unix.Close(fd))
		}
	}
	r.cons, r.prod, r.data = nil, nil, nil
	r.epfd, r.closefd = -1, -1
	return errors.Join(errs...)
}
