package httpprobe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// DefaultRingBytes sizes the ring buffer when Config.RingBytes is 0: at
// some 300 bytes per captured call, about 14k calls. The reader is woken
// at a quarter full, so a burst must outrun it by 3 MiB before a record is
// lost (and counted); TestHTTP's ~50k requests/s lose none. The kernel maps
// every page of the ring into the reader and its data twice, so each MiB
// here is 2 MB of the collector's RSS.
const DefaultRingBytes = 4 << 20

// maxRingBytes is the largest ring buffer the kernel maps (1 GiB).
const maxRingBytes = 1 << 30

// Config sizes the probe. Zero values are not defaulted except RingBytes:
// the receiver's config.go gives them.
type Config struct {
	RingBytes    int    // ring buffer size: a power of two, at least one page
	CaptureBytes int    // bytes copied per socket call, 1..CaptureMax
	MaxConns     uint32 // connections tracked in the kernel at once
	SelfPID      uint32 // a process whose sockets are not captured (the collector's own exports)
}

// Probe is the loaded http probe.
type Probe struct {
	objs         httpObjects
	links        probe.Links
	ring         *ring
	decodeErrors atomic.Uint64
	ignored      atomic.Uint64
}

// Load loads the programs and maps without attaching them.
func Load(cfg Config) (*Probe, error) {
	n := cfg.RingBytes
	if n == 0 {
		n = DefaultRingBytes
	}
	if page := os.Getpagesize(); n < page || n > maxRingBytes || n&(n-1) != 0 {
		return nil, fmt.Errorf("http probe: RingBytes %d: must be a power of two from %d (a page) to %d", n, page, maxRingBytes)
	}
	if cfg.CaptureBytes < 1 || cfg.CaptureBytes > CaptureMax {
		return nil, fmt.Errorf("http probe: CaptureBytes %d: must be from 1 to %d", cfg.CaptureBytes, CaptureMax)
	}
	if cfg.MaxConns < 1 {
		return nil, errors.New("http probe: MaxConns must be positive")
	}
	spec, err := loadHttp()
	if err != nil {
		return nil, fmt.Errorf("load http spec: %w", err)
	}
	spec.Maps["events"].MaxEntries = uint32(n)
	spec.Maps["conns"].MaxEntries = cfg.MaxConns
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("http probe: %w", err)
	}
	spec.Maps["scratch"].MaxEntries = uint32(cpus)
	for name, v := range map[string]any{
		"wakeup_bytes":  uint64(n / 4),
		"capture_bytes": uint32(cfg.CaptureBytes),
		"self_tgid":     cfg.SelfPID,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("http probe: %s: %w", name, err)
		}
	}
	p := &Probe{}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			err = fmt.Errorf("%+v", ve)
		}
		return nil, fmt.Errorf("load http probe: %w", permissionHint(err, "root, or CAP_BPF and CAP_PERFMON"))
	}
	if p.ring, err = newRing(p.objs.Events); err != nil {
		return nil, errors.Join(fmt.Errorf("http probe ring buffer: %w", err), p.objs.Close())
	}
	return p, nil
}

// Attach attaches the enter programs to their syscalls' tracepoints, the
// exit program to each of their exits, and the TCP state program.
func (p *Probe) Attach() error {
	for _, tp := range []struct {
		call string
		prog *ebpf.Program
	}{
		{"read", p.objs.HttpEnterRead},
		{"recvfrom", p.objs.HttpEnterRecvfrom},
		{"readv", p.objs.HttpEnterReadv},
		{"recvmsg", p.objs.HttpEnterRecvmsg},
		{"write", p.objs.HttpEnterWrite},
		{"sendto", p.objs.HttpEnterSendto},
		{"writev", p.objs.HttpEnterWritev},
		{"sendmsg", p.objs.HttpEnterSendmsg},
		{"sendfile64", p.objs.HttpEnterSendfile},
	} {
		// The exit first: an enter without its exit would leave a call
		// pending (harmless: the exit checks the syscall number).
		for _, at := range []struct {
			event string
			prog  *ebpf.Program
		}{{"sys_exit_" + tp.call, p.objs.HttpExit}, {"sys_enter_" + tp.call, tp.prog}} {
			l, err := link.Tracepoint("syscalls", at.event, at.prog, nil)
			if err != nil {
				p.links.Close()
				return fmt.Errorf("attach http syscalls/%s: %w", at.event, permissionHint(err, "root, or CAP_BPF and CAP_PERFMON"))
			}
			p.links = append(p.links, l)
		}
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: p.objs.HttpSetState})
	if err != nil {
		p.links.Close()
		return fmt.Errorf("attach http tp_btf/inet_sock_set_state: %w", permissionHint(err, "root, or CAP_BPF and CAP_PERFMON"))
	}
	p.links = append(p.links, l)
	return nil
}

// pollInterval is how often a blocked Run checks for cancellation and for
// records: the kernel wakes the reader only when the ring is a quarter
// full. It is also the longest gap between two Handler.Tick calls.
const pollInterval = 200 * time.Millisecond

// Run reads the ring buffer and hands each record to h until ctx is done
// or the probe is closed; then it returns nil. A record that does not
// decode is counted (Counters().DecodeErrors) and skipped. boot is the
// wall time of CLOCK_BOOTTIME zero.
func (p *Probe) Run(ctx context.Context, boot time.Time, h Handler) error {
	var r record
	handle := func(raw []byte) {
		if err := decode(raw, boot, &r); err != nil {
			p.decodeErrors.Add(1)
			return
		}
		switch r.kind {
		case kindOpen:
			h.Open(&r.conn)
		case kindClose:
			h.Close(r.cookie, r.close)
		default:
			h.Chunk(&r.chunk)
		}
	}
	for ctx.Err() == nil {
		_, err := p.ring.read(handle)
		if err == nil {
			now := time.Now()
			h.Tick(now)
			err = p.ring.wait(now.Add(pollInterval))
		}
		switch {
		case errors.Is(err, errRingClosed):
			return nil
		case err != nil:
			return fmt.Errorf("read http ring buffer: %w", err)
		}
	}
	return nil
}

// Ignore tells the kernel to stop copying a connection's bytes until it
// closes. A connection already gone is not an error.
func (p *Probe) Ignore(cookie uint64) error {
	st := httpHttpConnState{Flags: uint32(httpHttpConnFlagHTTP_CONN_IGNORED)}
	err := p.objs.Conns.Update(&cookie, &st, ebpf.UpdateExist)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("http probe: ignore connection: %w", err)
	}
	if err == nil {
		p.ignored.Add(1)
	}
	return nil
}

// SkipBody tells the kernel that the bytes of one direction of a
// connection (sent: the local process's) with TCP sequence numbers from
// from up to to (exclusive, modulo 2^32) are message body whose bytes are
// not needed: a call lying wholly inside the range is reported with its
// size and sequence number and no bytes. It replaces the direction's
// previous range; from == to clears it. The kernel forgets the range once
// a call goes past it. A connection already gone is not an error.
//
// A range must only cover bytes past what the chunks delivered so far
// have shown: the kernel may be ahead of them, and a call it made before
// the range was set is copied as usual.
func (p *Probe) SkipBody(cookie uint64, sent bool, from, to uint32) error {
	var st httpHttpConnState
	err := p.objs.Conns.Lookup(&cookie, &st)
	if err == nil {
		if st.Flags&uint32(httpHttpConnFlagHTTP_CONN_IGNORED) != 0 {
			return nil
		}
		i := 1
		if sent {
			i = 0
		}
		st.Skip[i].From, st.Skip[i].To = from, to
		err = p.objs.Conns.Update(&cookie, &st, ebpf.UpdateExist)
	}
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("http probe: skip body: %w", err)
	}
	return nil
}

// Ignored returns how many connections Ignore flagged.
func (p *Probe) Ignored() uint64 { return p.ignored.Load() }

// Counters returns the kernel counters plus user-space decode errors.
func (p *Probe) Counters() (probe.Counters, error) {
	c, err := probe.ReadStats(p.objs.Stats)
	if err != nil {
		return c, fmt.Errorf("http counters: %w", err)
	}
	c.DecodeErrors = p.decodeErrors.Load()
	return c, nil
}

// Close detaches and unloads everything; a Run in progress returns.
func (p *Probe) Close() error {
	p.links.Close()
	rerr := p.ring.close()
	return errors.Join(rerr, p.objs.Close())
}

// programs lists the programs, for run-time statistics in benchmarks.
func (p *Probe) programs() map[string]*ebpf.Program {
	return map[string]*ebpf.Program{
		"enter_read": p.objs.HttpEnterRead, "enter_recvfrom": p.objs.HttpEnterRecvfrom,
		"enter_readv": p.objs.HttpEnterReadv, "enter_recvmsg": p.objs.HttpEnterRecvmsg,
		"enter_write": p.objs.HttpEnterWrite, "enter_sendto": p.objs.HttpEnterSendto,
		"enter_writev": p.objs.HttpEnterWritev, "enter_sendmsg": p.objs.HttpEnterSendmsg,
		"enter_sendfile": p.objs.HttpEnterSendfile, "exit": p.objs.HttpExit, "set_state": p.objs.HttpSetState,
	}
}

// permissionHint says which privileges are missing when the kernel refused.
func permissionHint(err error, need string) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (needs %s)", err, need)
	}
	return err
}
