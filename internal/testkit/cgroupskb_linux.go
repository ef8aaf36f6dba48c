package testkit

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// NoopCgroupSKB attaches `return 1` as cgroup_skb egress and ingress on the
// cgroup root until cleanup and returns both programs: under run-time
// statistics, the cost of running any program at all, which benchmarks
// subtract from a probe's.
func NoopCgroupSKB(t testing.TB, root string) []*ebpf.Program {
	t.Helper()
	progs, detach, err := AttachNoopCgroupSKB(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(detach)
	return progs
}

// AttachNoopCgroupSKB is NoopCgroupSKB for a shorter life than a test's:
// detach unloads both programs.
func AttachNoopCgroupSKB(root string) (progs []*ebpf.Program, detach func(), err error) {
	var closers []func() error
	detach = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}
	for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInetEgress, ebpf.AttachCGroupInetIngress} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Type:         ebpf.CGroupSKB,
			License:      "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()},
		})
		if err != nil {
			detach()
			return nil, nil, err
		}
		closers = append(closers, prog.Close)
		l, err := link.AttachCgroup(link.CgroupOptions{Path: root, Attach: at, Program: prog})
		if err != nil {
			detach()
			return nil, nil, err
		}
		closers = append(closers, l.Close)
		progs = append(progs, prog)
	}
	return progs, detach, nil
}
