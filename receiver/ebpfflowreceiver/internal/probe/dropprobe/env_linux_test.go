package dropprobe

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
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

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// netns is a network namespace made with `ip netns add`, removed at cleanup.
// Each test gets its own, so the drops it provokes are its alone.
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
// live there.
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

// inChildCgroup moves the whole test process into a fresh cgroup v2 until
// cleanup and returns its id (kernfs_node.id = the directory's inode).
func inChildCgroup(t testing.TB) uint64 {
	t.Helper()
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var root string
	for line := range strings.SplitSeq(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "cgroup2" {
			root = f[1]
			break
		}
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if root == "" || err != nil {
		t.Fatalf("no cgroup v2 (mount %q, %v)", root, err)
	}
	var orig string
	for line := range strings.SplitSeq(string(self), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			orig = filepath.Join(root, p)
		}
	}
	dir := filepath.Join(root, fmt.Sprintf("ebpfflow-droptest-%d", os.Getpid()))
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
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
