package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BootTime is the wall-clock time of boot, as the engine passes it.
func BootTime(t testing.TB) time.Time {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}

// CookieOf returns SO_COOKIE, the id bpf_get_socket_cookie returns.
func CookieOf(t testing.TB, c syscall.Conn) uint64 {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cookie uint64
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cookie, serr = unix.GetsockoptUint64(int(fd), unix.SOL_SOCKET, unix.SO_COOKIE)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatalf("SO_COOKIE: %v", serr)
	}
	return cookie
}

// Run runs a command and fails t with its output if it fails.
func Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Netns is a network namespace made with `ip netns add`, removed at cleanup.
type Netns string

// NewNetns creates a namespace named name-<pid> with lo up.
func NewNetns(t testing.TB, name string) Netns {
	t.Helper()
	name = fmt.Sprintf("%s-%d", name, os.Getpid())
	exec.Command("ip", "netns", "del", name).Run()
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	n := Netns(name)
	n.Run(t, "ip", "link", "set", "lo", "up")
	return n
}

// Run runs a command inside the namespace.
func (n Netns) Run(t testing.TB, args ...string) {
	t.Helper()
	Run(t, append([]string{"ip", "netns", "exec", string(n)}, args...)...)
}

// Do runs fn on a thread switched into the namespace: sockets fn creates
// live there (and keep working from any thread afterwards).
func (n Netns) Do(t testing.TB, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/var/run/netns", string(n)))
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatalf("setns %s: %v", n, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			panic(fmt.Sprintf("restore netns: %v", err)) // the thread would stay in the test netns
		}
	}()
	fn()
}

// VethPair links two fresh namespaces: a=10.200.7.1/30, b=10.200.7.2/30.
func VethPair(t testing.TB) (a, b Netns) {
	t.Helper()
	a, b = NewNetns(t, "ebpfflow-veth-a"), NewNetns(t, "ebpfflow-veth-b")
	a.Run(t, "ip", "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", string(b))
	a.Run(t, "ip", "addr", "add", "10.200.7.1/30", "dev", "veth-a")
	b.Run(t, "ip", "addr", "add", "10.200.7.2/30", "dev", "veth-b")
	a.Run(t, "ip", "link", "set", "veth-a", "up")
	b.Run(t, "ip", "link", "set", "veth-b", "up")
	return a, b
}

// CgroupID is what kernfs_node.id holds: the directory's inode number.
func CgroupID(t testing.TB, dir string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// InChildCgroup moves the whole test process into a fresh cgroup until
// cleanup, and returns that cgroup's id.
func InChildCgroup(t testing.TB) uint64 {
	t.Helper()
	orig := OwnCgroup(t)
	dir := filepath.Join(CgroupV2Mount(t), fmt.Sprintf("ebpfflow-testkit-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	pid := []byte(fmt.Sprint(os.Getpid()))
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0); err != nil {
		os.Remove(dir)
		t.Fatalf("move into %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(orig, "cgroup.procs"), pid, 0); err != nil {
			t.Errorf("move back to %s: %v", orig, err)
		}
		os.Remove(dir)
	})
	return CgroupID(t, dir)
}

// OwnComm is the kernel's task comm of this process (15 bytes at most).
func OwnComm(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Counter reads one /proc/net/netstat or /proc/net/snmp counter (e.g.
// "TcpExt", "TCPSynRetrans") as the namespace sees it.
func (n Netns) Counter(t testing.TB, file, group, name string) uint64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", string(n), "cat", file).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(out), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(names) == 0 || names[0] != group+":" || len(values) != len(names) {
			continue
		}
		for j := range names {
			if names[j] == name {
				var v uint64
				fmt.Sscan(values[j], &v)
				return v
			}
		}
	}
	t.Fatalf("no %s %s in %s", group, name, file)
	return 0
}
