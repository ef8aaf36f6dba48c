package tcpprobe

import (
	"bufio"
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

// bootTime is the wall-clock time of boot, as the engine passes it.
func bootTime(t testing.TB) time.Time {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Now().Add(-time.Duration(ts.Nano()))
}

// cookieOf returns SO_COOKIE, the id bpf_get_socket_cookie returns.
func cookieOf(t testing.TB, c syscall.Conn) uint64 {
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

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// netns is a network namespace made with `ip netns add`, removed at cleanup.
type netns string

func newNetns(t testing.TB, name string) netns {
	t.Helper()
	name = fmt.Sprintf("%s-%d", name, os.Getpid())
	exec.Command("ip", "netns", "del", name).Run()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	n := netns(name)
	n.run(t, "ip", "link", "set", "lo", "up")
	return n
}

func (n netns) run(t testing.TB, args ...string) {
	t.Helper()
	run(t, append([]string{"ip", "netns", "exec", string(n)}, args...)...)
}

// do runs fn on a thread switched into the namespace: sockets fn creates
// live there (and keep working from any thread afterwards).
func (n netns) do(t testing.TB, fn func()) {
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

// vethPair links two fresh namespaces: a=10.200.7.1/30, b=10.200.7.2/30.
func vethPair(t testing.TB) (a, b netns) {
	t.Helper()
	a, b = newNetns(t, "ebpfflow-tcp-a"), newNetns(t, "ebpfflow-tcp-b")
	a.run(t, "ip", "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", string(b))
	a.run(t, "ip", "addr", "add", "10.200.7.1/30", "dev", "veth-a")
	b.run(t, "ip", "addr", "add", "10.200.7.2/30", "dev", "veth-b")
	a.run(t, "ip", "link", "set", "veth-a", "up")
	b.run(t, "ip", "link", "set", "veth-b", "up")
	return a, b
}

// cgroupV2Mount finds the cgroup2 mount point in /proc/mounts.
func cgroupV2Mount(t testing.TB) string {
	t.Helper()
	f, err := os.Open("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 2 && fields[2] == "cgroup2" {
			return fields[1]
		}
	}
	t.Fatal("no cgroup2 mount")
	return ""
}

// ownCgroup returns the process's cgroup v2 directory.
func ownCgroup(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(cgroupV2Mount(t), p)
		}
	}
	t.Fatal("no cgroup v2 entry in /proc/self/cgroup")
	return ""
}

// cgroupID is what kernfs_node.id holds: the directory's inode number.
func cgroupID(t testing.TB, dir string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// inChildCgroup moves the whole test process into a fresh cgroup until
// cleanup, and returns that cgroup's id.
func inChildCgroup(t testing.TB) uint64 {
	t.Helper()
	orig := ownCgroup(t)
	dir := filepath.Join(cgroupV2Mount(t), fmt.Sprintf("ebpfflow-tcptest-%d", os.Getpid()))
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
	return cgroupID(t, dir)
}

// ownComm is the kernel's task comm of this process (15 bytes at most).
func ownComm(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// counter reads one /proc/net/netstat or /proc/net/snmp counter (e.g.
// "TcpExt", "TCPSynRetrans") as the namespace sees it.
func (n netns) counter(t testing.TB, file, group, name string) uint64 {
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
