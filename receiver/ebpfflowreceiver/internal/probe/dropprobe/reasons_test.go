package dropprobe

import (
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// fakeKernel builds BTF with the drop reason enums as a kernel has them.
func fakeKernel(t *testing.T) *btf.Spec {
	t.Helper()
	reasons := &btf.Enum{Name: "skb_drop_reason", Size: 4, Values: []btf.EnumValue{
		{Name: "SKB_NOT_DROPPED_YET", Value: 0},
		{Name: "SKB_CONSUMED", Value: 1},
		{Name: "SKB_DROP_REASON_NOT_SPECIFIED", Value: 2},
		{Name: "SKB_DROP_REASON_NO_SOCKET", Value: 3},
		{Name: "SKB_DROP_REASON_NETFILTER_DROP", Value: 12},
		{Name: "SKB_DROP_REASON_QUEUE_PURGE", Value: 13},
		{Name: "SKB_DROP_REASON_MAX", Value: 14},
		{Name: "SKB_DROP_REASON_SUBSYS_MASK", Value: 0xffff0000},
	}}
	subsys := &btf.Enum{Name: "skb_drop_reason_subsys", Size: 4, Values: []btf.EnumValue{
		{Name: "SKB_DROP_REASON_SUBSYS_CORE", Value: 0},
		{Name: "SKB_DROP_REASON_SUBSYS_OPENVSWITCH", Value: 2},
		{Name: "SKB_DROP_REASON_SUBSYS_NUM", Value: 3},
	}}
	b, err := btf.NewBuilder([]btf.Type{reasons, subsys}, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestReasonName(t *testing.T) {
	r, err := NewReasons(fakeKernel(t))
	if err != nil {
		t.Fatal(err)
	}
	for reason, want := range map[uint32]string{
		1:          "CONSUMED",
		2:          "NOT_SPECIFIED",
		12:         "NETFILTER_DROP",
		99:         "99",
		2<<16 | 5:  "SUBSYS_OPENVSWITCH_5",
		7<<16 | 1:  "SUBSYS_7_1",
		0xffff0000: "SUBSYS_65535_0",
	} {
		if got := r.Name(reason); got != want {
			t.Errorf("Name(%#x) = %q, want %q", reason, got, want)
		}
	}
	if r.slots() != 14 {
		t.Errorf("slots %d, want SKB_DROP_REASON_MAX 14", r.slots())
	}
}

func TestIgnoreValues(t *testing.T) {
	r, err := NewReasons(fakeKernel(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		in     []string
		want   []uint32
		absent []string
		errSub []string
	}{
		// The default list and the normalisation of names (prefix, case,
		// spaces) are the receiver config's: TestDefaultConfigIsValid,
		// TestDropIgnoreReasonsNormalised.
		{name: "empty = none", in: []string{}, want: []uint32{}},
		{name: "kernel names", in: []string{"NO_SOCKET", "NETFILTER_DROP"}, want: []uint32{3, 12}},
		{name: "another kernel's reason is skipped", in: []string{"NO_SOCKET", "TCP_AOFAILURE"}, want: []uint32{3}, absent: []string{"TCP_AOFAILURE"}},
		{name: "unknown", in: []string{"NO_SOCKET", "BOGUS"}, errSub: []string{`"BOGUS"`, "NOT_DROPPED_YET, CONSUMED, NOT_SPECIFIED, NO_SOCKET, NETFILTER_DROP, QUEUE_PURGE"}},
		{name: "MAX is not a reason", in: []string{"MAX"}, errSub: []string{`"MAX"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, absent, err := r.ignoreValues(tc.in)
			if tc.errSub != nil {
				if err == nil {
					t.Fatalf("no error, got %v", got)
				}
				for _, sub := range tc.errSub {
					if !strings.Contains(err.Error(), sub) {
						t.Errorf("error %q lacks %q", err, sub)
					}
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) || !slices.Equal(absent, tc.absent) {
				t.Errorf("got %v, absent %v, %v; want %v, absent %v", got, absent, err, tc.want, tc.absent)
			}
		})
	}
}

func TestNewReasonsNeedsEnum(t *testing.T) {
	b, _ := btf.NewBuilder([]btf.Type{&btf.Int{Name: "int", Size: 4}}, nil)
	spec, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewReasons(spec); err == nil || !strings.Contains(err.Error(), "skb_drop_reason") {
		t.Errorf("err %v, want one naming skb_drop_reason", err)
	}
}

func TestKnownReasonsSorted(t *testing.T) {
	if !slices.IsSorted(knownReasons) {
		t.Fatal("knownReasons must stay sorted: KnownReason searches it")
	}
	if !KnownReason("NETFILTER_DROP") || KnownReason("NETFILTER") || KnownReason("MAX") {
		t.Fatal("KnownReason")
	}
}

// TestKnownReasonsCoverKernel: every core reason of the running kernel is one
// config validation accepts; a newer kernel's additions fail here first.
func TestKnownReasonsCoverKernel(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatalf("kernel BTF (required by the receiver): %v", err)
	}
	r, err := NewReasons(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range r.names() {
		if !KnownReason(n) {
			t.Errorf("kernel drop reason %s is missing from knownReasons", n)
		}
	}
}
