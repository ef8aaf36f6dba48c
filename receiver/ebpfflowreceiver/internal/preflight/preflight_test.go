package preflight

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

const (
	capsAll      = "000001ffffffffff"
	capsSysAdmin = "0000000000201000" // CAP_SYS_ADMIN + CAP_NET_ADMIN: BPF/PERFMON implied
	capsNoBPF    = "0000004000001000" // PERFMON + NET_ADMIN
	capsNone     = "0000000000000000"

	mountsUnified = `sysfs /sys sysfs rw 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0
nodev /sys/kernel/tracing tracefs rw 0 0
bpf /sys/fs/bpf bpf rw 0 0
`
	mountsHybrid = `tmpfs /sys/fs/cgroup tmpfs rw 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0
tracefs /sys/kernel/debug/tracing tracefs rw 0 0
`
	mountsV1 = `tmpfs /sys/fs/cgroup tmpfs rw 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0
`
	mountsSpace = `cgroup2 /run/my\040cgroup cgroup2 rw 0 0
`
)

func fakeRoot(t *testing.T, capEff, uid, mounts string, btf bool) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if capEff != "" {
		write("proc/self/status", "Name:\totelcol\nUid:\t"+uid+"\t"+uid+"\t"+uid+"\t"+uid+"\nCapInh:\t0000000000000000\nCapPrm:\t"+capEff+"\nCapEff:\t"+capEff+"\n")
	}
	write("proc/mounts", mounts)
	if btf {
		write("sys/kernel/btf/vmlinux", "BTF")
	}
	return root
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name        string
		caps, uid   string
		mounts      string
		btf         bool
		mount       bool
		mountErr    error
		wantErrs    []error
		wantFix     []string
		wantCgroup  string
		wantWarn    []error
		wantMounted []string
		cgroupRoot  string
	}{
		{name: "all good, unified", caps: capsAll, uid: "0", mounts: mountsUnified, btf: true, wantCgroup: "/sys/fs/cgroup"},
		{name: "hybrid: cgroup2 at unified, bpffs mounted for us", caps: capsAll, uid: "0", mounts: mountsHybrid, btf: true, mount: true,
			wantCgroup: "/sys/fs/cgroup/unified", wantMounted: []string{BPFFSPath}},
		{name: "CAP_SYS_ADMIN implies BPF and PERFMON", caps: capsSysAdmin, uid: "0", mounts: mountsUnified, btf: true, wantCgroup: "/sys/fs/cgroup"},
		{name: "escaped mount point", caps: capsAll, uid: "0", mounts: mountsSpace + mountsHybrid, btf: true, wantCgroup: "/run/my cgroup",
			wantWarn: []error{ErrNoBPFFS}},
		{name: "missing CAP_BPF", caps: capsNoBPF, uid: "0", mounts: mountsUnified, btf: true, wantCgroup: "/sys/fs/cgroup",
			wantErrs: []error{ErrNotPrivileged}, wantFix: []string{"add CAP_BPF to securityContext.capabilities.add", "--cap-add BPF", "setcap cap_bpf+ep", "root, but the container runtime dropped them"}},
		{name: "not root, no caps", caps: capsNone, uid: "1000", mounts: mountsUnified, btf: true, wantCgroup: "/sys/fs/cgroup",
			wantErrs: []error{ErrNotPrivileged}, wantFix: []string{"CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN", "uid 1000", "setcap cap_bpf,cap_perfmon,cap_net_admin+ep"}},
		{name: "no status file", caps: "", mounts: mountsUnified, btf: true, wantCgroup: "/sys/fs/cgroup", wantErrs: []error{ErrNotPrivileged}},
		{name: "no BTF", caps: capsAll, uid: "0", mounts: mountsUnified, btf: false, wantCgroup: "/sys/fs/cgroup",
			wantErrs: []error{ErrNoBTF}, wantFix: []string{"CONFIG_DEBUG_INFO_BTF=y"}},
		{name: "cgroup v1 only, everything else missing too", caps: capsNone, uid: "1000", mounts: mountsV1, btf: false,
			wantErrs: []error{ErrNotPrivileged, ErrNoBTF, ErrNoCgroup2}, wantFix: []string{"mount -t cgroup2 none /sys/fs/cgroup"},
			wantWarn: []error{ErrNoTracefs, ErrNoBPFFS}},
		{name: "cgroup_root: the host's cgroup2 mounted into a pod", caps: capsAll, uid: "0", btf: true, cgroupRoot: "/host/sys/fs/cgroup/",
			mounts: mountsUnified + "cgroup2 /host/sys/fs/cgroup cgroup2 rw 0 0\n", wantCgroup: "/host/sys/fs/cgroup"},
		{name: "cgroup_root that is no cgroup2 mount", caps: capsAll, uid: "0", btf: true, cgroupRoot: "/host/sys/fs/cgroup",
			mounts: mountsUnified, wantErrs: []error{ErrNoCgroup2}, wantFix: []string{`cgroup_root "/host/sys/fs/cgroup"`}},
		{name: "mount not allowed", caps: capsAll, uid: "0", mounts: mountsV1 + "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n", btf: true, mount: true,
			mountErr: errors.New("operation not permitted"), wantCgroup: "/sys/fs/cgroup/unified", wantWarn: []error{ErrNoTracefs, ErrNoBPFFS},
			wantFix: []string{"mount -t tracefs tracefs /sys/kernel/tracing", "mount -t bpf bpf /sys/fs/bpf", "operation not permitted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeRoot(t, tt.caps, tt.uid, tt.mounts, tt.btf)
			var mounted []string
			res, err := Check(Options{Root: root, CgroupV2Root: tt.cgroupRoot, MountMissing: tt.mount, Mount: func(src, target, fstype string) error {
				if tt.mountErr != nil {
					return tt.mountErr
				}
				mounted = append(mounted, strings.TrimPrefix(target, root))
				return nil
			}})
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("error %v does not include %v", err, want)
				}
			}
			if len(tt.wantErrs) == 0 && err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			var all strings.Builder
			if err != nil {
				all.WriteString(err.Error())
			}
			for _, w := range res.Warnings {
				all.WriteString("\n" + w.Error())
			}
			for _, fix := range tt.wantFix {
				if !strings.Contains(all.String(), fix) {
					t.Errorf("messages lack %q:\n%s", fix, all.String())
				}
			}
			if res.CgroupV2Root != tt.wantCgroup {
				t.Errorf("cgroup root %q, want %q", res.CgroupV2Root, tt.wantCgroup)
			}
			if len(res.Warnings) != len(tt.wantWarn) {
				t.Errorf("warnings %v, want %v", res.Warnings, tt.wantWarn)
			}
			for i, w := range tt.wantWarn {
				if i < len(res.Warnings) && !errors.Is(res.Warnings[i], w) {
					t.Errorf("warning %d: %v, want %v", i, res.Warnings[i], w)
				}
			}
			if strings.Join(mounted, ",") != strings.Join(tt.wantMounted, ",") || strings.Join(res.Mounted, ",") != strings.Join(tt.wantMounted, ",") {
				t.Errorf("mounted %v / %v, want %v", mounted, res.Mounted, tt.wantMounted)
			}
		})
	}
}

// TestCheckThisMachine runs the real check: as root on a BTF kernel it passes.
func TestCheckThisMachine(t *testing.T) {
	testkit.RequireRoot(t)
	res, err := Check(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.CgroupV2Root == "" {
		t.Fatal("no cgroup v2 root")
	}
	t.Logf("%+v", res)
}
