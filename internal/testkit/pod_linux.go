package testkit

import (
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

// Pod is a network namespace with one interface, eth0, on a veth pair, and
// a cgroup named the way the kubelet (systemd driver) and containerd name
// them, so the receiver derives k8s.pod.uid and container.id from it.
type Pod struct {
	Name        string
	Netns       string
	UID         string // k8s.pod.uid, dashed form
	ContainerID string // 64 hex digits
	Cgroup      string // absolute path of the container's cgroup directory
	IP4, IP6    netip.Addr
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func newUUID() string {
	h := RandomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// NewPodPair builds pods named na and nb joined by a veth pair, at
// 10.<net>.0.10 / fd00:<net>::10 and 10.<net>.0.20 / fd00:<net>::20, each
// with eth0 and lo up. Static neighbour entries keep ARP/ND out of the way:
// a lost first neighbour solicitation would delay a first SYN by a second.
// Everything is removed at cleanup, processes left in the cgroups killed.
func NewPodPair(t testing.TB, na, nb string, net int) (a, b *Pod) {
	t.Helper()
	root := CgroupV2Mount(t)
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	a = &Pod{Name: na, IP4: netip.MustParseAddr(fmt.Sprintf("10.%d.0.10", net)), IP6: netip.MustParseAddr(fmt.Sprintf("fd00:%d::10", net))}
	b = &Pod{Name: nb, IP4: netip.MustParseAddr(fmt.Sprintf("10.%d.0.20", net)), IP6: netip.MustParseAddr(fmt.Sprintf("fd00:%d::20", net))}
	for _, p := range []*Pod{a, b} {
		p.newSandbox(t, root, newUUID(), "ebpfflow-e2e-"+p.Name+"-"+tag)
	}
	const macA, macB = "02:00:0a:c9:00:01", "02:00:0a:c9:00:02"
	va, vb := "eb"+na+tag, "eb"+nb+tag // interface names: at most 15 bytes
	Run(t, "ip", "link", "add", va, "address", macA, "netns", a.Netns, "type", "veth", "peer", "name", vb, "address", macB, "netns", b.Netns)
	for _, x := range []struct {
		p, peer      *Pod
		dev, peerMAC string
	}{{a, b, va, macB}, {b, a, vb, macA}} {
		n := x.p.Netns
		Run(t, "ip", "-n", n, "link", "set", x.dev, "name", "eth0")
		Run(t, "ip", "-n", n, "addr", "add", x.p.IP4.String()+"/24", "dev", "eth0")
		// nodad: usable at once, no 1-2 s of tentative address.
		Run(t, "ip", "-n", n, "-6", "addr", "add", x.p.IP6.String()+"/64", "dev", "eth0", "nodad")
		Run(t, "ip", "-n", n, "link", "set", "eth0", "up")
		Run(t, "ip", "-n", n, "link", "set", "lo", "up")
		Run(t, "ip", "-n", n, "neigh", "replace", x.peer.IP4.String(), "lladdr", x.peerMAC, "dev", "eth0", "nud", "permanent")
		Run(t, "ip", "-n", n, "neigh", "replace", x.peer.IP6.String(), "lladdr", x.peerMAC, "dev", "eth0", "nud", "permanent")
	}
	return a, b
}

// NewPod makes the sandbox of a pod whose uid the API server gave: a
// network namespace named netns with lo up (its other links are the
// caller's) and the kubelet-style cgroup of that uid with a new container
// id. Both are removed at cleanup, processes left in the cgroup killed.
func NewPod(t testing.TB, name, uid, netns string) *Pod {
	t.Helper()
	p := &Pod{Name: name}
	p.newSandbox(t, CgroupV2Mount(t), uid, netns)
	Run(t, "ip", "-n", p.Netns, "link", "set", "lo", "up")
	return p
}

func (p *Pod) newSandbox(t testing.TB, root, uid, netns string) {
	t.Helper()
	p.Netns, p.UID, p.ContainerID = netns, uid, RandomHex(32)
	// kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope
	podSlice := "kubepods-besteffort-pod" + strings.ReplaceAll(p.UID, "-", "_") + ".slice"
	p.Cgroup = filepath.Join(root, "kubepods.slice", "kubepods-besteffort.slice", podSlice,
		"cri-containerd-"+p.ContainerID+".scope")
	tree := &cgroupTree{}
	t.Cleanup(func() { tree.remove(t) })
	if err := tree.mkdirAll(root, p.Cgroup); err != nil {
		t.Fatal(err)
	}
	_ = exec.Command("ip", "netns", "del", p.Netns).Run()
	Run(t, "ip", "netns", "add", p.Netns)
	ns := p.Netns
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
}

// cgroupTree lists directories a test made, removed in reverse order.
type cgroupTree struct {
	created []string
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

// remove kills whatever still runs in the cgroups made, then removes them
// (children first; a cgroup the test did not create is left alone).
func (c *cgroupTree) remove(t testing.TB) {
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

// Command returns a command that runs inside the pod: the shell moves itself
// into the pod's cgroup before exec, so every socket the program opens is
// owned by that cgroup, then enters the network namespace. Cancelling ctx
// sends SIGTERM.
func (p *Pod) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	const script = `echo $$ > "$1/cgroup.procs" && shift && exec ip netns exec "$@"`
	argv := append([]string{"-c", script, "sh", p.Cgroup, p.Netns, name}, args...)
	cmd := exec.CommandContext(ctx, "sh", argv...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Start runs a long-lived server in the pod, its output to logPath; it is
// stopped at cleanup.
func (p *Pod) Start(t testing.TB, logPath, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := p.Command(ctx, name, args...)
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("pod %s: start %s: %v", p.Name, name, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		log.Close()
	})
}

// Exec runs a client in the pod and returns its stdout and exit code.
func (p *Pod) Exec(t testing.TB, timeout time.Duration, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := p.Command(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("pod %s: %s: %v", p.Name, name, err)
		}
		code = ee.ExitCode()
	}
	t.Logf("pod %s: %s %s -> rc %d stdout %q stderr %q", p.Name, name, strings.Join(args, " "), code, out, strings.TrimSpace(stderr.String()))
	return string(out), code
}

// WaitListening polls `ss` in the pod until something listens on port.
func (p *Pod) WaitListening(t testing.TB, proto string, port int) {
	t.Helper()
	flag := "-tln"
	if proto == "udp" {
		flag = "-uln"
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := exec.Command("ip", "netns", "exec", p.Netns, "ss", "-H", flag, fmt.Sprintf("sport = :%d", port)).Output()
		if strings.TrimSpace(string(out)) != "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pod %s: nothing listens on %s/%d", p.Name, proto, port)
}

// SNMP reads one counter of the pod's network namespace from /proc/net/snmp
// (e.g. "Tcp", "OutSegs"). The kernel counts TCP segments there per wire
// segment (GSO buffers count tcp_skb_pcount, GRO buffers gso_segs), and a pod
// namespace carries only the test's traffic: an exact packet oracle.
func (p *Pod) SNMP(t testing.TB, proto, field string) int64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", p.Netns, "cat", "/proc/net/snmp").Output()
	if err != nil {
		t.Fatalf("pod %s: read /proc/net/snmp: %v", p.Name, err)
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
					t.Fatalf("pod %s: snmp %s %s: %v", p.Name, proto, field, err)
				}
				return v
			}
		}
	}
	t.Fatalf("pod %s: no %s %s in /proc/net/snmp", p.Name, proto, field)
	return 0
}
