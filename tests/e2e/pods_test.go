//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pod is a network namespace with one interface (eth0) on a veth pair, and a
// cgroup named the way the kubelet (systemd driver) and containerd name them,
// so the receiver derives k8s.pod.uid and container.id from it.
type pod struct {
	name        string // "a", "b"
	netns       string
	uid         string // k8s.pod.uid, dashed form
	containerID string // 64 hex digits
	cgroup      string // absolute path of the container's cgroup directory
	ip4, ip6    netip.Addr
}

// cgroupCreated lists directories this test made, removed in reverse order.
type cgroupTree struct {
	created []string
}

// cgroup2Root finds the cgroup v2 mount from /proc/mounts (unified on pure v2
// hosts is /sys/fs/cgroup, on hybrid hosts /sys/fs/cgroup/unified).
func cgroup2Root() (string, error) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return fields[1], nil
		}
	}
	return "", errors.New("no cgroup2 mount in /proc/mounts")
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func newUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// run executes a host command and fails the test with its output on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newPodPair builds two pods joined by a veth pair:
// a = 10.202.0.10 / fd00:202::10, b = 10.202.0.20 / fd00:202::20.
func newPodPair(t *testing.T) (a, b *pod) {
	return newPodPairNet(t, "a", "b", 202)
}

// newPodPairNet builds pods named na and nb joined by a veth pair, at
// 10.<net>.0.10 / fd00:<net>::10 and 10.<net>.0.20 / fd00:<net>::20.
func newPodPairNet(t *testing.T, na, nb string, net int) (a, b *pod) {
	t.Helper()
	root, err := cgroup2Root()
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	a = &pod{name: na, ip4: netip.MustParseAddr(fmt.Sprintf("10.%d.0.10", net)), ip6: netip.MustParseAddr(fmt.Sprintf("fd00:%d::10", net))}
	b = &pod{name: nb, ip4: netip.MustParseAddr(fmt.Sprintf("10.%d.0.20", net)), ip6: netip.MustParseAddr(fmt.Sprintf("fd00:%d::20", net))}
	tree := &cgroupTree{}
	t.Cleanup(func() { tree.remove(t) })
	for _, p := range []*pod{a, b} {
		p.netns = "ebpfflow-e2e-" + p.name + "-" + tag
		p.uid = newUUID()
		p.containerID = randomHex(32)
		// kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope
		podSlice := "kubepods-besteffort-pod" + strings.ReplaceAll(p.uid, "-", "_") + ".slice"
		p.cgroup = filepath.Join(root, "kubepods.slice", "kubepods-besteffort.slice", podSlice,
			"cri-containerd-"+p.containerID+".scope")
		if err := tree.mkdirAll(root, p.cgroup); err != nil {
			t.Fatal(err)
		}
		run(t, "ip", "netns", "add", p.netns)
		ns := p.netns
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	va, vb := "eb"+na+tag, "eb"+nb+tag // interface names: at most 15 bytes
	run(t, "ip", "link", "add", va, "type", "veth", "peer", "name", vb)
	for _, x := range []struct {
		p   *pod
		dev string
	}{{a, va}, {b, vb}} {
		n := x.p.netns
		run(t, "ip", "link", "set", x.dev, "netns", n)
		run(t, "ip", "-n", n, "link", "set", x.dev, "name", "eth0")
		run(t, "ip", "-n", n, "addr", "add", x.p.ip4.String()+"/24", "dev", "eth0")
		// nodad: usable at once, no 1-2 s of tentative address.
		run(t, "ip", "-n", n, "-6", "addr", "add", x.p.ip6.String()+"/64", "dev", "eth0", "nodad")
		run(t, "ip", "-n", n, "link", "set", "eth0", "up")
		run(t, "ip", "-n", n, "link", "set", "lo", "up")
	}
	return a, b
}

func (c *cgroupTree) mkdirAll(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return err
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err == nil {
			c.created = append(c.created, cur)
		} else if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup %s: %w", cur, err)
		}
	}
	return nil
}

// remove kills whatever still runs in the cgroups we made, then removes them
// (children first; a cgroup we did not create is left alone).
func (c *cgroupTree) remove(t *testing.T) {
	for i := len(c.created) - 1; i >= 0; i-- {
		dir := c.created[i]
		killCgroup(dir)
		var err error
		for range 50 {
			if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("cleanup: remove cgroup %s: %v", dir, err)
		}
	}
}

func killCgroup(dir string) {
	// cgroup.kill (5.14+) kills every process atomically; fall back to procs.
	if os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0) == nil {
		return
	}
	data, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(data)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// command returns a command that runs inside the pod: the shell moves itself
// into the pod's cgroup before exec, so every socket the program opens is
// owned by that cgroup, then enters the network namespace.
func (p *pod) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	const script = `echo $$ > "$1/cgroup.procs" && shift && exec ip netns exec "$@"`
	argv := append([]string{"-c", script, "sh", p.cgroup, p.netns, name}, args...)
	cmd := exec.CommandContext(ctx, "sh", argv...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// start runs a long-lived server in the pod; it is stopped at cleanup.
func (p *pod) start(t *testing.T, logPath, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := p.command(ctx, name, args...)
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("pod %s: start %s: %v", p.name, name, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		log.Close()
	})
}

// exec runs a client in the pod and returns its stdout and exit code.
func (p *pod) exec(t *testing.T, timeout time.Duration, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := p.command(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("pod %s: %s: %v", p.name, name, err)
		}
		code = ee.ExitCode()
	}
	t.Logf("pod %s: %s %s -> rc %d stdout %q stderr %q", p.name, name, strings.Join(args, " "), code, out, strings.TrimSpace(stderr.String()))
	return string(out), code
}

// waitListening polls `ss` in the pod until something listens on port.
func (p *pod) waitListening(t *testing.T, proto string, port int) {
	t.Helper()
	flag := "-tln"
	if proto == "udp" {
		flag = "-uln"
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := exec.Command("ip", "netns", "exec", p.netns, "ss", "-H", flag, fmt.Sprintf("sport = :%d", port)).Output()
		if strings.TrimSpace(string(out)) != "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pod %s: nothing listens on %s/%d", p.name, proto, port)
}

// snmp reads one counter of the pod's network namespace from /proc/net/snmp
// (e.g. "Tcp", "OutSegs"). The kernel counts TCP segments there per wire
// segment (GSO buffers count tcp_skb_pcount, GRO buffers gso_segs), and a pod
// namespace carries only the test's traffic: an exact packet oracle.
func (p *pod) snmp(t *testing.T, proto, field string) int64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", p.netns, "cat", "/proc/net/snmp").Output()
	if err != nil {
		t.Fatalf("pod %s: read /proc/net/snmp: %v", p.name, err)
	}
	var header []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != proto+":" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, h := range header {
			if h == field && i < len(f) {
				var v int64
				if _, err := fmt.Sscan(f[i], &v); err != nil {
					t.Fatalf("pod %s: snmp %s %s: %v", p.name, proto, field, err)
				}
				return v
			}
		}
	}
	t.Fatalf("pod %s: no %s %s in /proc/net/snmp", p.name, proto, field)
	return 0
}
