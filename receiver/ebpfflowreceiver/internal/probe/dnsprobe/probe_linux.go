package dnsprobe

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/flowprobe"
)

// DefaultRingBytes sizes the ring buffer when Config.RingBytes is 0.
const DefaultRingBytes = flowprobe.DefaultDNSRingBytes

// Config sizes the probe.
type Config struct {
	RingBytes int // ring buffer size: a power of two, at least one page
}

// Probe reads the DNS capture of the packet programs (flowprobe: one
// program per packet and direction counts flows and captures DNS).
type Probe struct {
	fp           *flowprobe.Probe
	owned        bool // loaded by Load for DNS alone: Attach and Close are ours
	stats        *ebpf.Map
	reader       *ringbuf.Reader
	decodeErrors atomic.Uint64
	running      atomic.Bool
	drained      chan struct{} // Run read every record up to a Flush of the reader
}

// Load loads the packet programs for DNS capture alone (no flow accounting),
// without attaching them.
func Load(cfg Config) (*Probe, error) {
	fp, err := flowprobe.Load(flowprobe.Config{DNS: true, DNSRingBytes: cfg.RingBytes})
	if err != nil {
		return nil, err
	}
	p, err := newProbe(fp, true)
	if err != nil {
		return nil, errors.Join(err, fp.Close())
	}
	return p, nil
}

// Of reads the DNS capture of a flow probe loaded with DNS on. The flow
// probe attaches and closes the programs; Close here stops the reader.
func Of(fp *flowprobe.Probe) (*Probe, error) { return newProbe(fp, false) }

func newProbe(fp *flowprobe.Probe, owned bool) (*Probe, error) {
	events, stats := fp.DNSMaps()
	if events == nil {
		return nil, errors.New("dns probe: the flow probe was loaded without DNS capture")
	}
	reader, err := ringbuf.NewReader(events)
	if err != nil {
		return nil, fmt.Errorf("dns probe ring buffer: %w", err)
	}
	return &Probe{fp: fp, owned: owned, stats: stats, reader: reader, drained: make(chan struct{}, 1)}, nil
}

// Attach attaches the programs to the cgroup v2 root, which covers every
// socket on the node, as multi-attach links beside other cgroup programs.
// A probe made with Of is attached by its flow probe.
func (p *Probe) Attach(cgroupV2Root string) error {
	if !p.owned {
		return errors.New("dns probe: attached with its flow probe")
	}
	return p.fp.Attach(cgroupV2Root)
}

// Run reads the ring buffer and hands each packet to handle until ctx is
// done or the probe is closed; then it returns nil. The packet and its
// payload are reused: handle must copy what it keeps. A record that does not
// decode is counted (Counters().DecodeErrors) and skipped. boot is the wall
// time of CLOCK_BOOTTIME zero.
//
// Run sleeps until the kernel wakes it (the programs ask only once the
// ring is a quarter full), Drain asks for the records, ctx ends or the probe
// closes. Lookups are emitted at flushes, which Drain, so nothing is lost
// by waiting: polling the ring five times a second was a quarter of an idle
// collector's CPU.
func (p *Probe) Run(ctx context.Context, boot time.Time, handle func(*observed.DNSPacket)) error {
	var (
		rec ringbuf.Record
		pkt observed.DNSPacket
	)
	p.running.Store(true)
	defer p.running.Store(false)
	stop := context.AfterFunc(ctx, func() { p.reader.Flush() })
	defer stop()
	for ctx.Err() == nil {
		if err := p.reader.ReadInto(&rec); err != nil {
			switch {
			case errors.Is(err, ringbuf.ErrFlushed):
				select {
				case p.drained <- struct{}{}:
				default: // already told
				}
				continue
			case errors.Is(err, ringbuf.ErrClosed):
				return nil
			}
			return fmt.Errorf("read dns ring buffer: %w", err)
		}
		if err := decode(rec.RawSample, boot, &pkt); err != nil {
			p.decodeErrors.Add(1)
			continue
		}
		handle(&pkt)
	}
	return nil
}

// Drain returns once a running Run has handed over every record the ring
// held when Drain was called, or after timeout (false). Call it from one
// goroutine at a time.
func (p *Probe) Drain(timeout time.Duration) bool {
	if !p.running.Load() {
		return true
	}
	select {
	case <-p.drained: // a flush nobody waited for
	default:
	}
	if err := p.reader.Flush(); err != nil {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.drained:
		return true
	case <-t.C:
		return false
	}
}

// Counters returns the kernel counters plus user-space decode errors.
func (p *Probe) Counters() (probe.Counters, error) {
	c, err := probe.ReadStats(p.stats)
	if err != nil {
		return c, fmt.Errorf("dns counters: %w", err)
	}
	c.DecodeErrors = p.decodeErrors.Load()
	return c, nil
}

// Close stops the reader (a Run in progress returns) and, for a probe made
// by Load, detaches and unloads the programs.
func (p *Probe) Close() error {
	rerr := p.reader.Close()
	if !p.owned {
		return rerr
	}
	return errors.Join(rerr, p.fp.Close())
}

// programs lists the per-packet programs, for run-time statistics in benchmarks.
func (p *Probe) programs() []*ebpf.Program { return p.fp.Programs() }
