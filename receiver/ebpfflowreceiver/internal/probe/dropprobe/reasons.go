package dropprobe

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
)

const (
	reasonPrefix = "SKB_DROP_REASON_"
	subsysPrefix = "SKB_DROP_REASON_SUBSYS_"
	subsysShift  = 16 // SKB_DROP_REASON_SUBSYS_SHIFT
	// maxIgnoreSlots caps the ignore array should a kernel report an absurd
	// SKB_DROP_REASON_MAX (6.18 has 128).
	maxIgnoreSlots = 1024
)

// Reasons names the running kernel's drop reasons, from its BTF
// `enum skb_drop_reason` (names without the SKB_DROP_REASON_ prefix).
type Reasons struct {
	byValue map[uint32]string
	byName  map[string]uint32
	subsys  map[uint32]string // enum skb_drop_reason_subsys, for reasons with high bits
	max     uint32            // SKB_DROP_REASON_MAX: core reasons are below it
}

// NewReasons reads the drop reason enums from a BTF spec (the kernel's).
func NewReasons(spec *btf.Spec) (*Reasons, error) {
	var e *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &e); err != nil {
		return nil, fmt.Errorf("kernel BTF has no enum skb_drop_reason (kernel < 5.17?): %w", err)
	}
	r := &Reasons{byValue: map[uint32]string{}, byName: map[string]uint32{}, subsys: map[uint32]string{}}
	for _, v := range e.Values {
		name, ok := strings.CutPrefix(v.Name, reasonPrefix)
		if !ok {
			// SKB_NOT_DROPPED_YET, SKB_CONSUMED
			name, ok = strings.CutPrefix(v.Name, "SKB_")
		}
		if !ok || v.Value > 0xffffffff {
			continue
		}
		val := uint32(v.Value)
		switch name {
		case "MAX":
			r.max = val
			continue
		case "SUBSYS_MASK":
			continue
		}
		r.byName[name] = val
		if _, dup := r.byValue[val]; !dup {
			r.byValue[val] = name
		}
	}
	if r.max == 0 {
		return nil, errors.New("kernel BTF enum skb_drop_reason has no SKB_DROP_REASON_MAX")
	}
	var sub *btf.Enum
	if spec.TypeByName("skb_drop_reason_subsys", &sub) == nil {
		for _, v := range sub.Values {
			name, ok := strings.CutPrefix(v.Name, subsysPrefix)
			if ok && name != "NUM" && v.Value <= 0xffff {
				r.subsys[uint32(v.Value)] = name
			}
		}
	}
	return r, nil
}

// Name returns the reason's name ("NETFILTER_DROP"). Subsystem reasons
// (openvswitch, mac80211) live in module BTF; they are named
// SUBSYS_<subsystem>_<code>. Unknown values are returned as numbers.
func (r *Reasons) Name(reason uint32) string {
	if n, ok := r.byValue[reason]; ok {
		return n
	}
	if sub := reason >> subsysShift; sub != 0 {
		name, ok := r.subsys[sub]
		if !ok {
			name = strconv.FormatUint(uint64(sub), 10)
		}
		return "SUBSYS_" + name + "_" + strconv.FormatUint(uint64(reason&0xffff), 10)
	}
	return strconv.FormatUint(uint64(reason), 10)
}

// slots is the size of the ignore array: every core reason has a slot.
func (r *Reasons) slots() uint32 {
	return min(max(r.max, 1), maxIgnoreSlots)
}

// ignoreValues resolves reason names (without the SKB_DROP_REASON_
// prefix) to reason values.
// ignoreValues maps names to this kernel's values. A reason of another
// supported kernel line that this one lacks is returned in absent (there is
// nothing to ignore); a name no supported kernel has is an error.
func (r *Reasons) ignoreValues(names []string) (values []uint32, absent []string, _ error) {
	out := make([]uint32, 0, len(names))
	for _, n := range names {
		v, ok := r.byName[n]
		if !ok && KnownReason(n) {
			absent = append(absent, n)
			continue
		}
		if !ok {
			return nil, nil, fmt.Errorf("unknown drop reason %q; this kernel knows: %s", n, strings.Join(r.names(), ", "))
		}
		if v >= r.slots() {
			return nil, nil, fmt.Errorf("drop reason %q (%d) cannot be ignored: only reasons below %d can", n, v, r.slots())
		}
		out = append(out, v)
	}
	return out, absent, nil
}

func (r *Reasons) names() []string {
	names := make([]string, 0, len(r.byName))
	for n, v := range r.byName {
		if v < r.max {
			names = append(names, n)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return int(r.byName[a]) - int(r.byName[b]) })
	return names
}
