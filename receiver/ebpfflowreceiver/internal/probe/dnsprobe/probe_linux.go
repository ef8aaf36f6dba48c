package dnsprobe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// DefaultRingBytes sizes the ring buffer when Config.RingBytes is 0: some
// 30,000 records of typical lookups (216 bytes for a query, 216 to 344 for
// an answer), a few seconds of a busy node's DNS if user space stalls.
const DefaultRingBytes = 8 << 20

// maxRingBytes is the largest ring buffer the kernel maps (1 GiB).
const maxRingBytes = 1 << 30

// Config sizes the probe.
type Config struct {
	RingBytes int // ring buffer size: a power of two, at least one page
}

// Probe is the loaded dns probe.
type Probe struct {
	objs         dnsObjects
	links        probe.Links
	reader       *ringbuf.Reader
	decodeErrors atomic.Uint64
}

// Load loads the programs and the ring buffer without attaching them.
func Load(cfg Config) (*Probe, error) {
	n := cfg.RingBytes
	if n == 0 {
		n = DefaultRingBytes
	}
	if page := os.Getpagesize(); n < page || n > maxRingBytes || n&(n-1) != 0 {
		return nil, fmt.Errorf("dns probe: RingBytes %d: must be a power of two from %d (a page) to %d", n, page, maxRingBytes)
	}
	spec, err := loadDns()
	if err != nil {
		return nil, fmt.Errorf("load dns spec: %w", err)
	}
	spec.Maps["events"].MaxEntries = uint32(n)
	if err := spec.Variables["wakeup_bytes"].Set(uint64(n / 4)); err != nil {
		return nil, fmt.Errorf("dns probe: %w", err)
	}
	p := &Probe{}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			err = fmt.Errorf("%+v", ve)
		}
		return nil, fmt.Errorf("load dns probe: %w", permissionHint(err, "root, or CAP_BPF and CAP_PERFMON"))
	}
	if p.reader, err = ringbuf.NewReader(p.objs.Events); err != nil {
		return nil, errors.Join(fmt.Errorf("dns probe ring buffer: %w", err), p.objs.Close())
	}
	return p, nil
}

// Attach attaches the programs to the cgroup v2 root, which covers every
// socket on the node, as multi-attach links beside other cgroup programs.
func (p *Probe) Attach(cgroupV2Root string) error {
	for _, pr := range []struct {
		name   string
		prog   *ebpf.Program
		attach ebpf.AttachType
	}{
		{"cgroup_skb/egress", p.objs.DnsEgress, ebpf.AttachCGroupInetEgress},
		{"cgroup_skb/ingress", p.objs.DnsIngress, ebpf.AttachCGroupInetIngress},
	} {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupV2Root, Attach: pr.attach, Program: pr.prog})
		if err != nil {
			p.links.Close()
			if errors.Is(err, unix.EBADF) {
				err = fmt.Errorf("%w (not a cgroup v2 directory: give the cgroup2 mount point)", err)
			}
			return fmt.Errorf("attach dns %s to %s: %w", pr.name, cgroupV2Root, permissionHint(err, "root, or CAP_NET_ADMIN"))
		}
		p.links = append(p.links, l)
	}
	return nil
}

// pollInterval is how often a blocked Run checks for cancellation and for
// records: the kernel wakes the reader only when the ring is a quarter full.
const pollInterval = 200 * time.Millisecond

// Run reads the ring buffer and hands each packet to handle until ctx is
// done or the probe is closed; then it returns nil. The packet and its
// payload are reused: handle must copy what it keeps. A record that does not
// decode is counted (Counters().DecodeErrors) and skipped. boot is the wall
// time of CLOCK_BOOTTIME zero.
func (p *Probe) Run(ctx context.Context, boot time.Time, handle func(*observed.DNSPacket)) error {
	var (
		rec ringbuf.Record
		pkt observed.DNSPacket
	)
	wait := time.Duration(0) // records already in the ring are read at once
	for ctx.Err() == nil {
		p.reader.SetDeadline(time.Now().Add(wait))
		wait = pollInterval
		if err := p.reader.ReadInto(&rec); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
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

// Counters returns the kernel counters plus user-space decode errors.
func (p *Probe) Counters() (probe.Counters, error) {
	c, err := probe.ReadStats(p.objs.Stats)
	if err != nil {
		return c, fmt.Errorf("dns counters: %w", err)
	}
	c.DecodeErrors = p.decodeErrors.Load()
	return c, nil
}

// Close detaches and unloads everything; a Run in progress returns.
func (p *Probe) Close() error {
	p.links.Close()
	rerr := p.reader.Close()
	return errors.Join(rerr, p.objs.Close())
}

// programs lists the per-packet programs, for run-time statistics in benchmarks.
func (p *Probe) programs() []*ebpf.Program {
	return []*ebpf.Program{p.objs.DnsEgress, p.objs.DnsIngress}
}

// permissionHint says which privileges are missing when the kernel refused.
func permissionHint(err error, need string) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (needs %s)", err, need)
	}
	return err
}
