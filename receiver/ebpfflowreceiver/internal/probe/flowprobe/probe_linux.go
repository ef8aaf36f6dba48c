package flowprobe

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// Config sizes the kernel maps.
type Config struct {
	// MaxFlows bounds the `flows` LRU map (~200 B of kernel memory per
	// entry; see bpf/flow/flow.bpf.c). The receiver's max_flows.
	MaxFlows uint32
}

// Probe is the loaded flow probe.
type Probe struct {
	objs         flowObjects
	links        probe.Links
	decodeErrors atomic.Uint64
	// suspended is CLOCK_BOOTTIME - CLOCK_MONOTONIC at load: the kernel
	// stamps packets from jiffies pinned to CLOCK_MONOTONIC (no clock read
	// per packet), which stops during suspend. Taken once so the same stamp
	// always decodes to the same time.
	suspended time.Duration
	ownerErr  error // why FlowSockCreate is nil
}

// Load loads the programs and maps into the kernel without attaching them.
func Load(cfg Config) (*Probe, error) { return load(cfg, nil) }

// load is Load with a hook to alter the spec first (tests).
func load(cfg Config, edit func(*ebpf.CollectionSpec)) (*Probe, error) {
	spec, err := loadFlow()
	if err != nil {
		return nil, fmt.Errorf("load flow spec: %w", err)
	}
	if edit != nil {
		edit(spec)
	}
	spec.Maps["flows"].MaxEntries = cfg.MaxFlows
	// The kernel stamps packets in jiffies times the tick length, which is
	// the resolution of CLOCK_MONOTONIC_COARSE (1e9/CONFIG_HZ).
	var res unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &res); err != nil || res.Nano() <= 0 {
		return nil, fmt.Errorf("flow probe tick length: clock_getres(CLOCK_MONOTONIC_COARSE) = %d: %v", res.Nano(), err)
	}
	if err := spec.Variables["tick_ns"].Set(uint64(res.Nano())); err != nil {
		return nil, fmt.Errorf("flow probe tick length: %w", err)
	}

	p := &Probe{}
	var bt, mono unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt) == nil && unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono) == nil {
		p.suspended = time.Duration(bt.Nano() - mono.Nano()).Round(time.Millisecond)
	}
	// The packet programs and every map: without them there is no probe.
	var core struct {
		flowMaps
		FlowEgress  *ebpf.Program `ebpf:"flow_egress"`
		FlowIngress *ebpf.Program `ebpf:"flow_ingress"`
	}
	if err := spec.LoadAndAssign(&core, nil); err != nil {
		return nil, fmt.Errorf("load flow probe: %w", verbose(err))
	}
	p.objs.flowMaps = core.flowMaps
	p.objs.FlowEgress, p.objs.FlowIngress = core.FlowEgress, core.FlowIngress
	// The owner program on the same maps. A kernel that refuses it (no
	// bpf_get_current_* or sk_storage in cgroup/sock_create) costs the pid
	// and comm of flows, not the flows.
	var owner struct {
		Prog *ebpf.Program `ebpf:"flow_sock_create"`
	}
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"owners": core.Owners, "stats": core.Stats}}
	if err := spec.LoadAndAssign(&owner, opts); err != nil {
		p.ownerErr = fmt.Errorf("flow probe without socket owners (pid and comm are 0): load cgroup/sock_create: %w", verbose(err))
	} else {
		p.objs.FlowSockCreate = owner.Prog
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
			continue // see OwnerError
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupV2Root, Attach: pr.attach, Program: pr.prog})
		if err != nil {
			p.links.Close()
			return fmt.Errorf("attach flow %s to %s: %w", pr.name, cgroupV2Root, err)
		}
		p.links = append(p.links, l)
	}
	return nil
}

// Snapshot reads every flow entry. Entries that fail to decode are counted
// in Counters().DecodeErrors and skipped. boot is the wall-clock time of boot
// (CLOCK_BOOTTIME zero).
func (p *Probe) Snapshot(boot time.Time) ([]observed.FlowSample, error) {
	base := boot.Add(p.suspended)
	return probe.Snapshot(p.objs.Flows, func(k *flowSockFlowKey, v *flowSockFlowStats) (observed.FlowSample, error) {
		return decode(k, v, base)
	}, &p.decodeErrors)
}

// Delete removes the kernel entries of these flows (already reported as
// finished). Flows the LRU already evicted are not an error.
func (p *Probe) Delete(flows []observed.FlowSample) error {
	// The owner entry is keyed by cookie alone: other flows of the same (UDP)
	// socket would lose their pid, so owners age out by LRU.
	keys := make([]flowSockFlowKey, len(flows))
	for i, f := range flows {
		keys[i] = encodeKey(f)
	}
	return probe.Delete(p.objs.Flows, keys)
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

// Close detaches and unloads everything.
func (p *Probe) Close() error {
	p.links.Close()
	return p.objs.Close()
}

// programs lists the per-packet programs, for run-time statistics in benchmarks.
func (p *Probe) programs() []*ebpf.Program {
	return []*ebpf.Program{p.objs.FlowEgress, p.objs.FlowIngress}
}
