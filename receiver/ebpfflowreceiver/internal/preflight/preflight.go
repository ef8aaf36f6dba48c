// Package preflight checks, before anything is loaded, that this process can
// run the probes: privileges, kernel BTF, the cgroup v2 mount the flow probe
// attaches to, and tracefs / bpffs (mounted when allowed). Every problem says
// how to fix it.
package preflight

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Problems Check reports; errors.Is works on the returned errors.
var (
	ErrNotPrivileged = errors.New("missing privileges")
	ErrNoBTF         = errors.New("kernel BTF not found")
	ErrNoCgroup2     = errors.New("no cgroup v2 mount found")
	ErrNoTracefs     = errors.New("tracefs not mounted")
	ErrNoBPFFS       = errors.New("bpffs not mounted")
)

// Capability numbers (include/uapi/linux/capability.h).
const (
	capNetAdmin = 12
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// Default mount points, used when the filesystem is missing and mounting is allowed.
const (
	TracefsPath = "/sys/kernel/tracing"
	BPFFSPath   = "/sys/fs/bpf"
)

// Options makes the checked files injectable for tests.
type Options struct {
	// Root prefixes every path read or mounted ("" = "/").
	Root string
	// MountMissing mounts tracefs / bpffs when absent.
	MountMissing bool
	// Mount performs a mount; nil uses mount(2) (Linux only).
	Mount func(source, target, fstype string) error
	// CgroupV2Root, when set, is the cgroup v2 mount to attach to instead of
	// the one found in /proc/mounts: in a container with its own cgroup
	// namespace that one is the pod's, so the host's is mounted elsewhere.
	CgroupV2Root string
}

// Result is what the engine needs from a successful check.
type Result struct {
	CgroupV2Root string // absolute path of the cgroup v2 mount to attach to
	Tracefs      string // "" if not mounted
	BPFFS        string // "" if not mounted
	Mounted      []string
	// Warnings are problems that do not stop the probes (ours attach through
	// BTF and never pin), each saying how to fix it.
	Warnings []error
}

// Check verifies everything the probes need. The error joins every fatal
// problem, so a user fixes them all in one go.
func Check(opts Options) (Result, error) {
	if opts.Root == "" {
		opts.Root = "/"
	}
	if opts.Mount == nil {
		opts.Mount = sysMount
	}
	var res Result
	var errs []error

	if err := checkPrivileges(filepath.Join(opts.Root, "proc/self/status")); err != nil {
		errs = append(errs, err)
	}
	if _, err := os.Stat(filepath.Join(opts.Root, "sys/kernel/btf/vmlinux")); err != nil {
		errs = append(errs, fmt.Errorf("%w at /sys/kernel/btf/vmlinux: use a kernel built with CONFIG_DEBUG_INFO_BTF=y (the default of current distribution kernels); in a container, make sure /sys is the host's (%v)", ErrNoBTF, err))
	}

	mounts, err := readMounts(filepath.Join(opts.Root, "proc/mounts"))
	if err != nil {
		errs = append(errs, fmt.Errorf("read mounts: %w", err))
	}
	res.CgroupV2Root = cgroup2Root(mounts)
	if opts.CgroupV2Root != "" {
		res.CgroupV2Root = ""
		if m := findMountAt(mounts, "cgroup2", opts.CgroupV2Root); m != "" {
			res.CgroupV2Root = m
		} else {
			errs = append(errs, fmt.Errorf("%w at cgroup_root %q: it must be a cgroup2 mount point listed in /proc/mounts (in Kubernetes: a hostPath volume of the host's /sys/fs/cgroup)", ErrNoCgroup2, opts.CgroupV2Root))
		}
	} else if res.CgroupV2Root == "" {
		errs = append(errs, fmt.Errorf("%w in /proc/mounts: mount it with `mount -t cgroup2 none /sys/fs/cgroup` (or boot with systemd.unified_cgroup_hierarchy=1); in Kubernetes mount the host's /sys/fs/cgroup into the pod", ErrNoCgroup2))
	}

	res.Tracefs = findMount(mounts, "tracefs", TracefsPath)
	if res.Tracefs == "" {
		if err := mountMissing(opts, "tracefs", "tracefs", TracefsPath); err != nil {
			res.Warnings = append(res.Warnings, fmt.Errorf("%w: run `mount -t tracefs tracefs %s` (in Kubernetes: a hostPath volume for %s): %v", ErrNoTracefs, TracefsPath, TracefsPath, err))
		} else {
			res.Tracefs = TracefsPath
			res.Mounted = append(res.Mounted, TracefsPath)
		}
	}
	res.BPFFS = findMount(mounts, "bpf", BPFFSPath)
	if res.BPFFS == "" {
		if err := mountMissing(opts, "bpf", "bpf", BPFFSPath); err != nil {
			res.Warnings = append(res.Warnings, fmt.Errorf("%w: run `mount -t bpf bpf %s` (in Kubernetes: a hostPath volume for %s): %v", ErrNoBPFFS, BPFFSPath, BPFFSPath, err))
		} else {
			res.BPFFS = BPFFSPath
			res.Mounted = append(res.Mounted, BPFFSPath)
		}
	}
	return res, errors.Join(errs...)
}

func mountMissing(opts Options, source, fstype, target string) error {
	if !opts.MountMissing {
		return errors.New("mounting not enabled")
	}
	dir := filepath.Join(opts.Root, target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := opts.Mount(source, dir, fstype); err != nil {
		return fmt.Errorf("mount %s: %w (needs CAP_SYS_ADMIN)", target, err)
	}
	return nil
}

// checkPrivileges reads the effective capability set. Root normally has all
// of them, but a container runtime may strip them, so capabilities decide.
func checkPrivileges(statusPath string) error {
	raw, err := os.ReadFile(statusPath)
	if err != nil {
		return fmt.Errorf("%w: cannot read %s: %v", ErrNotPrivileged, statusPath, err)
	}
	var capEff uint64
	uid := -1
	found := false
	for line := range strings.SplitSeq(string(raw), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "CapEff":
			if capEff, err = strconv.ParseUint(val, 16, 64); err != nil {
				return fmt.Errorf("%w: bad CapEff %q in %s", ErrNotPrivileged, val, statusPath)
			}
			found = true
		case "Uid":
			if f := strings.Fields(val); len(f) >= 2 {
				uid, _ = strconv.Atoi(f[1]) // effective uid
			}
		}
	}
	if !found {
		return fmt.Errorf("%w: no CapEff in %s", ErrNotPrivileged, statusPath)
	}
	has := func(c uint) bool { return capEff&(1<<c) != 0 }
	var missing []string
	// CAP_SYS_ADMIN still grants what CAP_BPF and CAP_PERFMON split out of it.
	if !has(capBPF) && !has(capSysAdmin) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capPerfmon) && !has(capSysAdmin) {
		missing = append(missing, "CAP_PERFMON")
	}
	if !has(capNetAdmin) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if len(missing) == 0 {
		return nil
	}
	who := fmt.Sprintf("running as uid %d", uid)
	if uid == 0 {
		who = "root, but the container runtime dropped them"
	}
	var docker, setcap []string
	for _, m := range missing {
		docker = append(docker, "--cap-add "+strings.TrimPrefix(m, "CAP_"))
		setcap = append(setcap, strings.ToLower(m))
	}
	return fmt.Errorf("%w: lacking %s (%s): add %s to securityContext.capabilities.add in Kubernetes, `%s` for docker, or `setcap %s+ep` on the binary",
		ErrNotPrivileged, strings.Join(missing, ", "), who, strings.Join(missing, ", "), strings.Join(docker, " "), strings.Join(setcap, ","))
}

type mount struct{ target, fstype string }

func readMounts(path string) ([]mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 3 {
			continue
		}
		out = append(out, mount{target: unescape(string(fields[1])), fstype: string(fields[2])})
	}
	return out, sc.Err()
}

// unescape decodes the octal escapes /proc/mounts uses for spaces and tabs.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroup2Root prefers /sys/fs/cgroup (unified hierarchy), else any cgroup2
// mount (hybrid: /sys/fs/cgroup/unified).
func cgroup2Root(mounts []mount) string {
	return findMount(mounts, "cgroup2", "/sys/fs/cgroup")
}

// findMount returns preferred if it is mounted with fstype, else the first
// mount of that type.
func findMount(mounts []mount, fstype, preferred string) string {
	first := ""
	for _, m := range mounts {
		if m.fstype != fstype {
			continue
		}
		if m.target == preferred {
			return m.target
		}
		if first == "" {
			first = m.target
		}
	}
	return first
}

// findMountAt returns target if a filesystem of fstype is mounted exactly there.
func findMountAt(mounts []mount, fstype, target string) string {
	target = filepath.Clean(target)
	for _, m := range mounts {
		if m.fstype == fstype && m.target == target {
			return target
		}
	}
	return ""
}
