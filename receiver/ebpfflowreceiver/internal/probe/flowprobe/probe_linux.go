package flowprobe

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// DefaultDNSRingBytes sizes the DNS ring buffer when Config.DNSRingBytes is
// 0: some 7,500 records of typical lookups (216 bytes for a query, 216 to
// 344 for an answer), over a second of a busy node's DNS if user space
// stalls; the reader drains it every 200 ms and is woken at a quarter full.
// The kernel maps every page of the ring twice into the reader (RSS of twice
// its size), so a larger ring costs the collector's RSS: 8 MiB made 16 MB.
const DefaultDNSRingBytes = 2 << 20

// maxDNSRingBytes is the largest ring buffer the kernel maps (1 GiB).
const maxDNSRingBytes = 1 << 30

// Config sizes the kernel maps and says what the packet programs do.
type Config struct {
	// MaxFlows bounds the `flows` LRU map (272 B of kernel memory per
	// entry, and 64 B for the TCP lines; see bpf/flow/flow.bpf.c). The
	// receiver's max_flows. 0 turns
	// flow accounting off: the programs only capture DNS.
	MaxFlows uint32
	// DNS makes the same programs capture DNS packets into a ring buffer,
	// which dnsprobe reads.
	DNS bool
	// DNSRingBytes sizes that ring buffer: a power of two, at least one
	// page; 0 is DefaultDNSRingBytes.
	DNSRingBytes int
	// TCPLines is the number of per-socket counter lines per direction
	// (64 B each) that connected TCP sockets count in; rounded up to a
	// power of two. 0 is half of MaxFlows.
	TCPLines uint32
}

// Probe is the loaded flow probe.
type Probe struct {
	cfg          Config
	objs         flowObjects
	links        probe.Links
	decodeErrors atomic.Uint64
	// suspended is CLOCK_BOOTTIME - CLOCK_MONOTONIC at load: the kernel
	// stamps packets from jiffies pinned to CLOCK_MONOTONIC (no clock read
	// per packet), which stops during suspend. Taken once so the same stamp
	// always decodes to the same time.
	suspended time.Duration
	ownerErr  error // why FlowSockCreate is nil

	// Snapshot's state (it is called from one goroutine): the previous
	// entry count, and the process names seen.
	lastCount int
	comms     comms
	lines     *lines
}

// Load loads the programs and maps into the kernel without attaching them.
func Load(cfg Config) (*Probe, error) { return load(cfg, nil) }

// load is Load with a hook to alter the spec first (tests).
func load(cfg Config, edit func(*ebpf.CollectionSpec)) (*Probe, error) {
	if cfg.MaxFlows == 0 && !cfg.DNS {
		return nil, errors.New("flow probe: neither flows (MaxFlows) nor DNS")
	}
	ring := cfg.DNSRingBytes
	if ring == 0 {
		ring = DefaultDNSRingBytes
	}
	if page := os.Getpagesize(); cfg.DNS && (ring < page || ring > maxDNSRingBytes || ring&(ring-1) != 0) {
		return nil, fmt.Errorf("dns capture: RingBytes %d: must be a power of two from %d (a page) to %d", ring, page, maxDNSRingBytes)
	}
	spec, err := loadFlow()
	if err != nil {
		return nil, fmt.Errorf("load flow spec: %w", err)
	}
	if edit != nil {
		edit(spec)
	}
	maxFlows := max(cfg.MaxFlows, 1) // maps cannot be empty; unused without flows
	spec.Maps["flows"].MaxEntries = maxFlows
	slots := lineSlots(cfg)
	spec.Maps["tx_lines"].MaxEntries = slots
	spec.Maps["rx_lines"].MaxEntries = slots
	if !cfg.DNS {
		ring = os.Getpagesize()
	}
	spec.Maps["dns_events"].MaxEntries = uint32(ring)
	// The kernel stamps packets in jiffies times the tick length, which is
	// the resolution of CLOCK_MONOTONIC_COARSE (1e9/CONFIG_HZ).
	var res unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &res); err != nil || res.Nano() <= 0 {
		return nil, fmt.Errorf("flow probe tick length: clock_getres(CLOCK_MONOTONIC_COARSE) = %d: %v", res.Nano(), err)
	}
	for name, v := range map[string]any{
		"tick_ns":          uint64(res.Nano()),
		"flows_on":         cfg.MaxFlows > 0,
		"dns_on":           cfg.DNS,
		"dns_wakeup_bytes": uint64(ring / 4),
		"line_mask":        slots - 1,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("flow probe: set %s: %w", name, err)
		}
	}

	p := &Probe{cfg: cfg}
	var bt, mono unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt) == nil && unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono) == nil {
		p.suspended = time.Duration(bt.Nano() - mono.Nano()).Round(time.Millisecond)
	}
	// The packet programs and every map: without them there is no probe.
	var core struct {
		flowMaps
		flowVariables
		FlowEgress  *ebpf.Program `ebpf:"flow_egress"`
		FlowIngress *ebpf.Program `ebpf:"flow_ingress"`
	}
	if err := spec.LoadAndAssign(&core, nil); err != nil {
		return nil, fmt.Errorf("load flow probe: %w", permissionHint(verbose(err), "root, or CAP_BPF and CAP_PERFMON"))
	}
	p.objs.flowMaps, p.objs.flowVariables = core.flowMaps, core.flowVariables
	p.objs.FlowEgress, p.objs.FlowIngress = core.FlowEgress, core.FlowIngress
	p.lines = newLines(core.TxLines, core.RxLines, slots)
	if cfg.MaxFlows > 0 {
		// The owner program on the same maps. A kernel that refuses it
		// (no bpf_get_current_* or sk_storage in cgroup/sock_create) costs
		// the pid and comm of flows, not the flows.
		var owner struct {
			Prog *ebpf.Program `ebpf:"flow_sock_create"`
		}
		opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"owners": core.Owners, "stats": core.Stats}}
		if err := spec.LoadAndAssign(&owner, opts); err != nil {
			p.ownerErr = fmt.Errorf("flow probe without socket owners (pid and comm are 0): load cgroup/sock_create: %w", verbose(err))
		} else {
			p.objs.FlowSockCreate = owner.Prog
		}
	}
	return p, nil
}

// verbose includes the verifier log's tail in a load error.
func verbose(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("%+v", ve)
	}
	return err
}

// permissionHint says which privileges are missing when the kernel refused.
func permissionHint(err error, need string) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (needs %s)", err, need)
	}
	return err
}

// OwnerError says why flows carry no pid and comm (the kernel refused the
// cgroup/sock_create program), or is nil.
func (p *Probe) OwnerError() error { return p.ownerErr }

// Attach attaches the programs to the cgroup v2 root, which covers every
// socket on the node. bpf_link attachments are multi-attach: they coexist
// with other cgroup programs (systemd's, a CNI's) and never replace them.
func (p *Probe) Attach(cgroupV2Root string) error {
	progs := []struct {
		name   string
		prog   *ebpf.Program
		attach ebpf.AttachType
	}{
		{"cgroup/sock_create", p.objs.FlowSockCreate, ebpf.AttachCGroupInetSockCreate},
		{"cgroup_skb/egress", p.objs.FlowEgress, ebpf.AttachCGroupInetEgress},
		{"cgroup_skb/ingress", p.objs.FlowIngress, ebpf.AttachCGroupInetIngress},
	}
	for _, pr := range progs {
		if pr.prog == nil {
			continue // see OwnerError; DNS alone needs no owners
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupV2Root, Attach: pr.attach, Program: pr.prog})
		if err != nil {
			p.links.Close()
			if errors.Is(err, unix.EBADF) {
				err = fmt.Errorf("%w (not a cgroup v2 directory: give the cgroup2 mount point)", err)
			}
			return fmt.Errorf("attach flow %s to %s: %w", pr.name, cgroupV2Root, permissionHint(err, "root, or CAP_NET_ADMIN"))
		}
		p.links = append(p.links, l)
	}
	return nil
}

// Snapshot reads every flow entry. Entries that fail to decode are counted
// in Counters().DecodeErrors and skipped. boot is the wall-clock time of boot
// (CLOCK_BOOTTIME zero).
func (p *Probe) Snapshot(boot time.Time) ([]observed.FlowSample, error) {
	out := make([]observed.FlowSample, 0, p.lastCount+p.lastCount/8)
	err := p.Each(boot, func(batch []observed.FlowSample) { out = append(out, batch...) })
	return out, err
}

// Each is Snapshot handing the samples to each in batches of at most 1024
// as they are read (a batch is valid only during the call): the engine
// folds them into its table without holding every flow of the node at once
// (216 B a flow).
func (p *Probe) Each(boot time.Time, each func([]observed.FlowSample)) error {
	if p.cfg.MaxFlows == 0 {
		return nil
	}
	base := boot.Add(p.suspended)
	if err := p.lines.begin(p.lastCount); err != nil {
		return err
	}
	defer p.lines.unmap()
	count := 0
	err := probe.SnapshotBatches(p.objs.Flows, func(k *flowSockFlowKey, v *flowSockFlowStats) (observed.FlowSample, error) {
		s, err := decode(k, v, base, &p.comms)
		if err == nil && s.Transport == observed.TransportTCP {
			err = p.lines.addTo(&s, connOf(k), base)
		}
		return s, err
	}, &p.decodeErrors, func(batch []observed.FlowSample) {
		count += len(batch)
		each(batch)
	})
	p.lastCount = count
	if err != nil {
		return err
	}
	// After every entry was read: a line is claimed only once its entry
	// exists, so one no entry names was evicted (or is being inserted).
	p.lines.sweep()
	return nil
}

// Delete removes the kernel entries of these flows (already reported as
// finished). Flows the LRU already evicted are not an error.
func (p *Probe) Delete(flows []observed.FlowSample) error {
	// The owner entry is keyed by cookie alone: other flows of the same (UDP)
	// socket would lose their pid, so owners go with their socket.
	keys := make([]flowSockFlowKey, len(flows))
	conns := make([]conn, 0, len(flows))
	for i, f := range flows {
		keys[i] = encodeKey(f)
		if f.Transport == observed.TransportTCP {
			conns = append(conns, connOf(&keys[i]))
		}
	}
	// Lines first: a packet between the two then counts in a new entry.
	return errors.Join(p.lines.releaseFlows(conns), probe.Delete(p.objs.Flows, keys))
}

// Counters returns the kernel loss counters plus user-space decode errors.
func (p *Probe) Counters() (probe.Counters, error) {
	c, err := probe.ReadStats(p.objs.Stats)
	if err != nil {
		return c, fmt.Errorf("flow counters: %w", err)
	}
	c.DecodeErrors = p.decodeErrors.Load()
	return c, nil
}

// DNSMaps returns the ring buffer and loss counters of the DNS capture (nil
// unless loaded with Config.DNS), for dnsprobe.
func (p *Probe) DNSMaps() (events, stats *ebpf.Map) {
	if !p.cfg.DNS {
		return nil, nil
	}
	return p.objs.DnsEvents, p.objs.DnsStats
}

// Close detaches and unloads everything.
func (p *Probe) Close() error {
	p.links.Close()
	return p.objs.Close()
}

// Programs lists the per-packet programs (egress, ingress), for run-time
// statistics in benchmarks and BPF_PROG_TEST_RUN in tests.
func (p *Probe) Programs() []*ebpf.Program {
	return []*ebpf.Program{p.objs.FlowEgress, p.objs.FlowIngress}
}
