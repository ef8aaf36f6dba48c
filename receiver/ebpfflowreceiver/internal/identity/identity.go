// Package identity resolves who owns a local socket: cgroup id -> cgroup
// path -> container id / Kubernetes pod uid, pid -> executable for host
// processes, and whether a local address is a pod IP (not one of the host
// network namespace's addresses). It reads the cgroup v2 tree and /proc; it
// never talks to the Kubernetes API (k8sattributes does that downstream).
package identity

import (
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

const (
	// walkInterval rate-limits re-walking the cgroup tree on an unknown id:
	// short-lived cgroups could otherwise make every flush walk it.
	walkInterval = time.Second
	// hostAddrsInterval is how stale the host address list may get.
	hostAddrsInterval = 10 * time.Second
	// maxExeCache bounds the pid -> executable cache; it is cleared when full.
	maxExeCache = 4096
)

type cgroupInfo struct {
	path, containerID, podUID string
	// service: a container's main executable, kept for the cgroup's life
	// so its resource stays one.
	service string
}

type exeEntry struct {
	comm, exe string
}

// Resolver caches what it reads; safe for concurrent use.
type Resolver struct {
	root string

	// Injectable for tests.
	now            func() time.Time
	procRoot       string
	interfaceAddrs func() ([]net.Addr, error)

	mu       sync.Mutex
	cgroups  map[uint64]cgroupInfo
	lastWalk time.Time
	exes     map[uint32]exeEntry
	host     map[netip.Addr]struct{}
	hostAt   time.Time
}

// NewResolver resolves cgroup ids below the cgroup v2 mount at cgroupRoot.
func NewResolver(cgroupRoot string) *Resolver {
	return &Resolver{
		root:           cgroupRoot,
		now:            time.Now,
		procRoot:       "/proc",
		interfaceAddrs: net.InterfaceAddrs,
		cgroups:        make(map[uint64]cgroupInfo),
		exes:           make(map[uint32]exeEntry),
	}
}

// Workload describes the local owner of a socket. pid/comm come from the
// probes (0/"" when unknown); local is the socket's local address.
func (r *Resolver) Workload(cgroupID uint64, pid uint32, comm string, local netip.Addr) observed.Workload {
	w := observed.Workload{CgroupID: cgroupID}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cgroupID != 0 {
		if info, ok := r.cgroupLocked(cgroupID); ok {
			w.CgroupPath, w.ContainerID, w.PodUID = info.path, info.containerID, info.podUID
			if (info.containerID != "" || info.podUID != "") && info.service == "" {
				info.service = r.containerServiceLocked(info.path, pid, comm)
				r.cgroups[cgroupID] = info
			}
			w.Service = info.service
		}
	}
	if w.ContainerID == "" && w.PodUID == "" {
		// Host process: the process is the resource. In a container the
		// container is, and its pids mean nothing outside it.
		w.PID = pid
		w.Executable = r.executableLocked(pid, comm)
		w.Service = w.Executable
	}
	if r.isPodAddrLocked(local) {
		w.PodIP = local.Unmap()
	}
	return w
}

// CgroupPath returns the path of a cgroup id relative to the mount ("/" for
// the root), or false if it is unknown even after a (rate-limited) re-walk.
func (r *Resolver) CgroupPath(id uint64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	info, ok := r.cgroupLocked(id)
	return info.path, ok
}

func (r *Resolver) cgroupLocked(id uint64) (cgroupInfo, bool) {
	if info, ok := r.cgroups[id]; ok {
		return info, true
	}
	now := r.now()
	if !r.lastWalk.IsZero() && now.Sub(r.lastWalk) < walkInterval {
		return cgroupInfo{}, false
	}
	r.lastWalk = now
	r.walkLocked()
	info, ok := r.cgroups[id]
	return info, ok
}

// walkLocked maps every cgroup directory's inode (= the kernel's cgroup id,
// bpf_skb_cgroup_id) to its path. Gone cgroups are dropped.
func (r *Resolver) walkLocked() {
	seen := make(map[uint64]cgroupInfo, len(r.cgroups))
	_ = filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a cgroup removed mid-walk: skip it
		}
		if !d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		ino, ok := inode(fi)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(r.root, p)
		if err != nil {
			return nil
		}
		rel = "/" + filepath.ToSlash(rel)
		if rel == "/." {
			rel = "/"
		}
		if old, ok := r.cgroups[ino]; ok && old.path == rel {
			seen[ino] = old
			return nil
		}
		cid, uid := ParseCgroupPath(rel)
		seen[ino] = cgroupInfo{path: rel, containerID: cid, podUID: uid}
		return nil
	})
	r.cgroups = seen
}

// containerServiceLocked names a container by its main process: the lowest
// pid in its cgroup (the container's init), else the socket owner's pid
// (a container whose processes all exited), else "" (asked again later).
func (r *Resolver) containerServiceLocked(path string, pid uint32, comm string) string {
	if data, err := os.ReadFile(filepath.Join(r.root, path, "cgroup.procs")); err == nil {
		var lowest uint64
		for _, f := range strings.Fields(string(data)) {
			if p, err := strconv.ParseUint(f, 10, 32); err == nil && p != 0 && (lowest == 0 || p < lowest) {
				lowest = p
			}
		}
		if lowest != 0 {
			return r.executableLocked(uint32(lowest), "")
		}
	}
	if pid != 0 {
		return r.executableLocked(pid, comm)
	}
	return ""
}

func (r *Resolver) executableLocked(pid uint32, comm string) string {
	if pid == 0 {
		return comm
	}
	if e, ok := r.exes[pid]; ok && e.comm == comm {
		return e.exe
	}
	exe := comm
	if target, err := os.Readlink(filepath.Join(r.procRoot, strconv.FormatUint(uint64(pid), 10), "exe")); err == nil {
		// Kernel threads have no exe; a replaced binary reads "… (deleted)".
		exe = trimDeleted(filepath.Base(target))
	}
	if len(r.exes) >= maxExeCache {
		clear(r.exes)
	}
	// Keyed with comm: a reused pid almost always runs something else.
	r.exes[pid] = exeEntry{comm: comm, exe: exe}
	return exe
}

func trimDeleted(s string) string {
	const suffix = " (deleted)"
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)]
	}
	return s
}

// HostAddrs returns the addresses of this process's network namespace (the
// host's, as the collector runs with hostNetwork), refreshed every 10 s.
func (r *Resolver) HostAddrs() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshHostLocked()
	out := make([]netip.Addr, 0, len(r.host))
	for a := range r.host {
		out = append(out, a)
	}
	return out
}

// IsHostAddr reports whether a is an address of the host network namespace.
func (r *Resolver) IsHostAddr(a netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshHostLocked()
	_, ok := r.host[a.Unmap()]
	return ok
}

func (r *Resolver) refreshHostLocked() {
	now := r.now()
	if r.host != nil && now.Sub(r.hostAt) < hostAddrsInterval {
		return
	}
	r.hostAt = now
	addrs, err := r.interfaceAddrs()
	if err != nil && r.host != nil {
		return // keep the last good list
	}
	host := make(map[netip.Addr]struct{}, len(addrs))
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if na, ok := netip.AddrFromSlice(ip); ok {
			host[na.Unmap()] = struct{}{}
		}
	}
	r.host = host
}

// isPodAddrLocked: a unicast local address that the host netns does not
// have must belong to another network namespace, i.e. a pod.
func (r *Resolver) isPodAddrLocked(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast() {
		return false
	}
	r.refreshHostLocked()
	_, host := r.host[a]
	return !host
}
