package dropprobe

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// DefaultMaxEntries bounds the `drops` hash map when Config.MaxEntries is 0:
// distinct (reason, site, tuple, device) keys of about one flush interval
// (~2 MiB of kernel memory). Beyond it new keys are counted as map-full.
const DefaultMaxEntries = 16384

// Config sizes the kernel map and filters reasons.
type Config struct {
	MaxEntries uint32 // 0 = DefaultMaxEntries
	// IgnoreReasons are kernel drop reason names (SKB_DROP_REASON_* without
	// the prefix, as the receiver's config normalises them) not to report.
	IgnoreReasons []string
}

var _ probe.Probe = (*Probe)(nil)

// Probe is the loaded drop probe.
type Probe struct {
	objs         dropObjects
	link         link.Link
	reasons      *Reasons
	decodeErrors atomic.Uint64
	// absentIgnored: ignore_reasons names of other kernel lines, not this one's.
	absentIgnored []string
}

// AbsentIgnoreReasons are the configured ignore_reasons this kernel does not
// have (reasons of another kernel line): nothing to ignore, worth a warning.
func (p *Probe) AbsentIgnoreReasons() []string { return p.absentIgnored }

// Load validates the ignore list against the running kernel's BTF, then
// loads the program and maps without attaching.
func Load(cfg Config) (*Probe, error) {
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("drop probe: load kernel BTF: %w", err)
	}
	reasons, err := NewReasons(kernel)
	if err != nil {
		return nil, fmt.Errorf("drop probe: %w", err)
	}
	ignore, absent, err := reasons.ignoreValues(cfg.IgnoreReasons)
	if err != nil {
		return nil, fmt.Errorf("drop probe ignore_reasons: %w", err)
	}
	rxSk, err := kfreeSkbHasRxSk(kernel)
	if err != nil {
		return nil, fmt.Errorf("drop probe: %w", err)
	}

	spec, err := loadDrop()
	if err != nil {
		return nil, fmt.Errorf("load drop spec: %w", err)
	}
	n := cfg.MaxEntries
	if n == 0 {
		n = DefaultMaxEntries
	}
	spec.Maps[dropMapDrops].MaxEntries = n
	spec.Maps[dropMapIgnore].MaxEntries = reasons.slots()
	if err := spec.Variables[dropVarHasRxSk].Set(boolByte(rxSk)); err != nil {
		return nil, fmt.Errorf("drop probe has_rx_sk: %w", err)
	}

	p := &Probe{reasons: reasons, absentIgnored: absent}
	if err := spec.LoadAndAssign(&p.objs, &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: kernel}}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load drop probe: %+v", ve)
		}
		return nil, fmt.Errorf("load drop probe: %w", err)
	}
	for _, r := range ignore {
		if err := p.objs.Ignore.Put(r, uint8(1)); err != nil {
			p.objs.Close()
			return nil, fmt.Errorf("drop probe ignore reason %s: %w", reasons.Name(r), err)
		}
	}
	return p, nil
}

// kfreeSkbHasRxSk reports whether the kfree_skb tracepoint passes rx_sk
// (added in 6.8): the program reads its 4th argument only then.
func kfreeSkbHasRxSk(kernel *btf.Spec) (bool, error) {
	var td *btf.Typedef
	if err := kernel.TypeByName("btf_trace_kfree_skb", &td); err != nil {
		return false, fmt.Errorf("kernel BTF lacks the kfree_skb tracepoint: %w", err)
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return false, fmt.Errorf("btf_trace_kfree_skb is %T, not a function pointer", td.Type)
	}
	fp, ok := ptr.Target.(*btf.FuncProto)
	if !ok {
		return false, fmt.Errorf("btf_trace_kfree_skb points to %T, not a function", ptr.Target)
	}
	// void *__data, skb, location, reason[, rx_sk]
	switch len(fp.Params) {
	case 4:
		return false, nil
	case 5:
		return true, nil
	}
	return false, fmt.Errorf("kfree_skb tracepoint has %d arguments; need skb, location, reason (kernel >= 5.17)", len(fp.Params)-1)
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Attach attaches tp_btf/kfree_skb.
func (p *Probe) Attach() error {
	l, err := link.AttachTracing(link.TracingOptions{Program: p.objs.DropKfreeSkb})
	if err != nil {
		return fmt.Errorf("attach drop tp_btf/kfree_skb: %w", err)
	}
	p.link = l
	return nil
}

// Snapshot reads every drop aggregate (cumulative counts). Entries that fail
// to decode are counted in Counters().DecodeErrors and skipped.
func (p *Probe) Snapshot(boot time.Time) ([]observed.DropSample, error) {
	return probe.Snapshot(p.objs.Drops, func(k *dropDropKey, v *dropDropValue) (observed.DropSample, error) {
		return decodeEntry(k, v, boot)
	}, &p.decodeErrors)
}

// Delete removes the kernel entries of these samples (as Snapshot returned
// them). Entries already gone are not an error.
func (p *Probe) Delete(samples []observed.DropSample) error {
	keys := make([]dropDropKey, len(samples))
	for i, smp := range samples {
		keys[i] = key(smp)
	}
	return probe.Delete(p.objs.Drops, keys)
}

// ReasonName names a drop reason as the running kernel does, without the
// SKB_DROP_REASON_ prefix ("NETFILTER_DROP").
func (p *Probe) ReasonName(reason uint32) string { return p.reasons.Name(reason) }

// Counters returns the kernel loss counters plus user-space decode errors.
func (p *Probe) Counters() (probe.Counters, error) {
	c, err := probe.ReadStats(p.objs.Stats)
	if err != nil {
		return c, fmt.Errorf("drop counters: %w", err)
	}
	c.DecodeErrors = p.decodeErrors.Load()
	return c, nil
}

// Close detaches and unloads everything.
func (p *Probe) Close() error {
	if p.link != nil {
		p.link.Close()
		p.link = nil
	}
	return p.objs.Close()
}
