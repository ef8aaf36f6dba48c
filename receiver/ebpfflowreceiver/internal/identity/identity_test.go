package identity

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

const (
	hex64  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	uid    = "6c2c4d5e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
	uidUnd = "6c2c4d5e_1a2b_4c3d_8e9f_0a1b2c3d4e5f"
)

func TestParseCgroupPath(t *testing.T) {
	tests := []struct {
		path, cid, uid string
	}{
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidUnd + ".slice/cri-containerd-" + hex64 + ".scope", hex64, uid},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidUnd + ".slice/crio-" + hex64 + ".scope", hex64, uid},
		{"/kubepods.slice/kubepods-pod" + uidUnd + ".slice/docker-" + hex64 + ".scope", hex64, uid},      // guaranteed QoS
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidUnd + ".slice", "", uid}, // pod-level (pause-less sandbox)
		{"/kubepods/besteffort/pod" + uid + "/" + hex64, hex64, uid},
		{"/kubepods/pod" + uid + "/" + hex64, hex64, uid},
		{"/kubepods/burstable/pod" + uid + "/" + hex64 + "/init", hex64, uid}, // container sub-cgroup
		{"/system.slice/containerd.service/kubepods-besteffort-pod" + uidUnd + ".slice:cri-containerd:" + hex64, hex64, uid},
		{"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidUnd + ".slice/cri-containerd-" + hex64 + ".scope", hex64, uid}, // kind
		{"/kubepods/burstable/pod0123456789abcdef0123456789abcdef/" + hex64, hex64, "0123456789abcdef0123456789abcdef"},                                                                // static pod hash uid
		{"/system.slice/docker-" + hex64 + ".scope", hex64, ""},
		{"/docker/" + hex64, hex64, ""},
		{"/machine.slice/libpod-" + hex64 + ".scope/container", hex64, ""},
		{"/machine.slice/libpod-conmon-" + hex64 + ".scope", "", ""},
		{"/system.slice/crio-conmon-" + hex64 + ".scope", "", ""},
		{"/user.slice/user-1000.slice/session-2.scope", "", ""},
		{"/system.slice/sshd.service", "", ""},
		{"/", "", ""},
		{"", "", ""},
		{"/kubepods/burstable/podnotauid/" + hex64[:63], "", ""},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidUnd + "x.slice", "", ""},
		{"/system.slice/docker-" + hex64[:12] + ".scope", "", ""}, // short ids are not container ids
	}
	for _, tt := range tests {
		cid, uid := ParseCgroupPath(tt.path)
		if cid != tt.cid || uid != tt.uid {
			t.Errorf("ParseCgroupPath(%q) = %q, %q; want %q, %q", tt.path, cid, uid, tt.cid, tt.uid)
		}
	}
}

func ino(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	n, ok := inode(fi)
	if !ok {
		testkit.Unsupported(t, "inode numbers")
	}
	return n
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestResolver(t *testing.T) (*Resolver, string, *fakeClock) {
	t.Helper()
	root := t.TempDir()
	proc := t.TempDir()
	clock := &fakeClock{t: time.Unix(1000, 0)}
	r := NewResolver(root)
	r.now = clock.now
	r.procRoot = proc
	r.interfaceAddrs = func() ([]net.Addr, error) {
		return []net.Addr{
			&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
			&net.IPNet{IP: net.ParseIP("192.168.1.10"), Mask: net.CIDRMask(24, 32)},
			&net.IPNet{IP: net.ParseIP("2001:db8::10"), Mask: net.CIDRMask(64, 128)},
		}, nil
	}
	return r, root, clock
}

func TestWorkload(t *testing.T) {
	r, root, clock := newTestResolver(t)
	podDir := filepath.Join(root, "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"+uidUnd+".slice/cri-containerd-"+hex64+".scope")
	hostDir := filepath.Join(root, "system.slice/sshd.service")
	for _, d := range []string{podDir, hostDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A host process whose binary is /usr/sbin/sshd and another that is gone.
	if err := os.MkdirAll(filepath.Join(r.procRoot, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/sbin/sshd (deleted)", filepath.Join(r.procRoot, "42", "exe")); err != nil {
		t.Fatal(err)
	}

	podIP := netip.MustParseAddr("10.201.0.1")
	w := r.Workload(ino(t, podDir), 77, "nginx", podIP)
	if w.ContainerID != hex64 || w.PodUID != uid || w.PodIP != podIP || w.PID != 0 || w.Executable != "" ||
		w.CgroupPath != "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"+uidUnd+".slice/cri-containerd-"+hex64+".scope" {
		t.Fatalf("pod workload: %+v", w)
	}
	if w.Service != "nginx" {
		t.Fatalf("pod service = %q, want its first process seen (nginx)", w.Service)
	}
	// The container keeps its name: one resource.
	if w := r.Workload(ino(t, podDir), 78, "sh", podIP); w.Service != "nginx" {
		t.Fatalf("pod service changed to %q with another process", w.Service)
	}
	// A container whose cgroup lists its processes is named by its main
	// (lowest) pid's executable, whoever owns the socket.
	pod2 := filepath.Join(root, "kubepods.slice/kubepods-pod"+uidUnd+".slice/cri-containerd-"+strings.Repeat("b", 64)+".scope")
	if err := os.MkdirAll(pod2, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pod2, "cgroup.procs"), []byte("300\n42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(walkInterval) // let the resolver re-walk for the new cgroup
	if w := r.Workload(ino(t, pod2), 0, "", podIP); w.Service != "sshd" {
		t.Fatalf("pod service %q, want its main process's executable (pid 42: sshd)", w.Service)
	}

	w = r.Workload(ino(t, hostDir), 42, "sshd", netip.MustParseAddr("192.168.1.10"))
	if w.CgroupPath != "/system.slice/sshd.service" || w.PID != 42 || w.Executable != "sshd" || w.PodIP.IsValid() || w.ContainerID != "" {
		t.Fatalf("host workload: %+v", w)
	}
	if w.Service != "sshd" {
		t.Fatalf("host service = %q, want the executable", w.Service)
	}
	w = r.Workload(ino(t, hostDir), 43, "exited", netip.MustParseAddr("::ffff:127.0.0.1"))
	if w.Executable != "exited" || w.PodIP.IsValid() {
		t.Fatalf("exited process falls back to comm: %+v", w)
	}
	if w := r.Workload(ino(t, root), 0, "", netip.Addr{}); w.CgroupPath != "/" {
		t.Fatalf("root cgroup: %+v", w)
	}

	// A cgroup created after the walk is found only after the rate limit.
	newDir := filepath.Join(root, "kubepods/besteffort/pod"+uid+"/"+hex64)
	if err := os.MkdirAll(newDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.CgroupPath(ino(t, newDir)); ok {
		t.Fatal("walked again within a second")
	}
	clock.t = clock.t.Add(walkInterval)
	if p, ok := r.CgroupPath(ino(t, newDir)); !ok || p != "/kubepods/besteffort/pod"+uid+"/"+hex64 {
		t.Fatalf("after a second: %q %v", p, ok)
	}
	// Unknown ids stay unknown but keep the cgroup id.
	clock.t = clock.t.Add(walkInterval)
	if w := r.Workload(999999999, 0, "", netip.Addr{}); w.CgroupID != 999999999 || w.CgroupPath != "" {
		t.Fatalf("%+v", w)
	}
}

func TestPodIP(t *testing.T) {
	r, _, clock := newTestResolver(t)
	tests := []struct {
		addr string
		pod  bool
	}{
		{"10.201.0.1", true},
		{"fd00:201::1", true},
		{"::ffff:10.201.0.2", true},
		{"192.168.1.10", false}, // host
		{"2001:db8::10", false},
		{"127.0.0.1", false},
		{"::1", false},
		{"0.0.0.0", false},
		{"fe80::1", false},
		{"224.0.0.251", false},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		w := r.Workload(0, 0, "", a)
		if w.PodIP.IsValid() != tt.pod {
			t.Errorf("%s: pod IP %v", tt.addr, w.PodIP)
		}
	}
	if !r.IsHostAddr(netip.MustParseAddr("::ffff:192.168.1.10")) || r.IsHostAddr(netip.MustParseAddr("10.201.0.1")) {
		t.Fatal("IsHostAddr")
	}
	// A new host address appears after the refresh interval.
	r.interfaceAddrs = func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.ParseIP("10.201.0.1"), Mask: net.CIDRMask(24, 32)}}, nil
	}
	if r.IsHostAddr(netip.MustParseAddr("10.201.0.1")) {
		t.Fatal("refreshed too early")
	}
	clock.t = clock.t.Add(hostAddrsInterval)
	if !r.IsHostAddr(netip.MustParseAddr("10.201.0.1")) || len(r.HostAddrs()) != 1 {
		t.Fatal("not refreshed")
	}
}

// TestRealMachine resolves this test process's own cgroup on the real mount.
func TestRealMachine(t *testing.T) {
	root := testkit.CgroupV2Mount(t)
	rel := strings.TrimPrefix(testkit.OwnCgroup(t), root)
	if rel == "" {
		rel = "/" // the root cgroup
	}
	r := NewResolver(root)
	id := ino(t, filepath.Join(root, rel))
	if p, ok := r.CgroupPath(id); !ok || p != rel {
		t.Fatalf("own cgroup %d: %q %v, want %q", id, p, ok, rel)
	}
	w := r.Workload(id, uint32(os.Getpid()), "identity.test", netip.MustParseAddr("127.0.0.1"))
	if w.Executable != filepath.Base(os.Args[0]) {
		t.Fatalf("executable %q, want %q", w.Executable, filepath.Base(os.Args[0]))
	}
	if len(r.HostAddrs()) == 0 || !r.IsHostAddr(netip.MustParseAddr("127.0.0.1")) {
		t.Fatal("host addresses")
	}
}
