//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// podNet wires pods to this machine's network namespace the way a routed
// CNI plugin does: a veth per pod, the pod's /32 routed to it on the host,
// the pod's default route through a link-local gateway. The host forwards
// between pods, so a Service's DNAT (kube-proxy's job) happens here, in the
// host namespace, as on a real node.
type podNet struct {
	t       *testing.T
	n       int
	tag     string
	forward string // ip_forward before the test, restored at cleanup
}

const (
	podGateway = "169.254.1.1"
	// filterChain accepts the test's forwarded traffic should FORWARD drop.
	filterChain = "EBPFFLOW-E2E-FWD"
)

func newPodNet(t *testing.T, cidrs ...string) *podNet {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	must(t, err)
	pn := &podNet{t: t, tag: strconv.Itoa(os.Getpid() % 10000), forward: strings.TrimSpace(string(b))}
	must(t, os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0))
	t.Cleanup(func() { _ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(pn.forward), 0) })
	ipt := func(args ...string) error { return exec.Command("iptables", append([]string{"-w"}, args...)...).Run() }
	_ = ipt("-N", filterChain)
	_ = ipt("-F", filterChain)
	for _, c := range cidrs {
		testkit.Run(t, "iptables", "-w", "-A", filterChain, "-s", c, "-j", "ACCEPT")
		testkit.Run(t, "iptables", "-w", "-A", filterChain, "-d", c, "-j", "ACCEPT")
	}
	testkit.Run(t, "iptables", "-w", "-I", "FORWARD", "-j", filterChain)
	t.Cleanup(func() {
		_ = ipt("-D", "FORWARD", "-j", filterChain)
		_ = ipt("-F", filterChain)
		_ = ipt("-X", filterChain)
	})
	return pn
}

// attach gives the pod eth0 with ip/32 on a veth to the host.
func (pn *podNet) attach(p *testkit.Pod, ip netip.Addr) {
	t := pn.t
	t.Helper()
	pn.n++
	host := fmt.Sprintf("ebk%s_%d", pn.tag, pn.n)
	testkit.Run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", p.Netns)
	testkit.Run(t, "ip", "link", "set", host, "up")
	hostMAC := readTrim(t, "/sys/class/net/"+host+"/address")
	out, err := exec.Command("ip", "netns", "exec", p.Netns, "cat", "/sys/class/net/eth0/address").Output()
	must(t, err)
	podMAC := strings.TrimSpace(string(out))
	n := p.Netns
	testkit.Run(t, "ip", "-n", n, "addr", "add", ip.String()+"/32", "dev", "eth0")
	testkit.Run(t, "ip", "-n", n, "link", "set", "eth0", "up")
	testkit.Run(t, "ip", "-n", n, "route", "add", podGateway, "dev", "eth0", "scope", "link")
	testkit.Run(t, "ip", "-n", n, "route", "add", "default", "via", podGateway, "dev", "eth0")
	// Static neighbours: no ARP delay on a first packet.
	testkit.Run(t, "ip", "-n", n, "neigh", "replace", podGateway, "lladdr", hostMAC, "dev", "eth0", "nud", "permanent")
	testkit.Run(t, "ip", "route", "replace", ip.String()+"/32", "dev", host)
	testkit.Run(t, "ip", "neigh", "replace", ip.String(), "lladdr", podMAC, "dev", host, "nud", "permanent")
	p.IP4 = ip
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return strings.TrimSpace(string(b))
}

// proxy programs Services into iptables as kube-proxy's iptables mode
// does: in the host namespace's nat table, PREROUTING (traffic from pods)
// and OUTPUT (from the host) jump to a chain matching each ClusterIP and
// port, which DNATs to one ready endpoint of its EndpointSlices, picked at
// random with equal probability.
type proxy struct {
	t      *testing.T
	chains map[string]bool
}

const proxyChain = "EBPFFLOW-E2E-SVC"

func newProxy(t *testing.T) *proxy {
	t.Helper()
	px := &proxy{t: t, chains: map[string]bool{}}
	nat := func(args ...string) error {
		return exec.Command("iptables", append([]string{"-w", "-t", "nat"}, args...)...).Run()
	}
	_ = nat("-N", proxyChain)
	_ = nat("-F", proxyChain)
	for _, hook := range []string{"PREROUTING", "OUTPUT"} {
		testkit.Run(t, "iptables", "-w", "-t", "nat", "-I", hook, "-j", proxyChain)
	}
	t.Cleanup(func() {
		for _, hook := range []string{"PREROUTING", "OUTPUT"} {
			_ = nat("-D", hook, "-j", proxyChain)
		}
		_ = nat("-F", proxyChain)
		_ = nat("-X", proxyChain)
		for c := range px.chains {
			_ = nat("-F", c)
			_ = nat("-X", c)
		}
	})
	return px
}

// sync programs svc from its slices, replacing what was there; it returns
// the endpoints it used per port.
func (px *proxy) sync(svc *corev1.Service, slices_ []discoveryv1.EndpointSlice) map[string][]netip.AddrPort {
	t := px.t
	t.Helper()
	used := map[string][]netip.AddrPort{}
	for i, sp := range svc.Spec.Ports {
		chain := fmt.Sprintf("EBF-%s-%d", svc.Name, i)
		if len(chain) > 28 {
			chain = chain[:28]
		}
		proto := strings.ToLower(string(sp.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		if !px.chains[chain] {
			testkit.Run(t, "iptables", "-w", "-t", "nat", "-N", chain)
			px.chains[chain] = true
			testkit.Run(t, "iptables", "-w", "-t", "nat", "-A", proxyChain, "-d", svc.Spec.ClusterIP+"/32", "-p", proto,
				"--dport", strconv.Itoa(int(sp.Port)), "-j", chain)
		}
		testkit.Run(t, "iptables", "-w", "-t", "nat", "-F", chain)
		var eps []netip.AddrPort
		for _, sl := range slices_ {
			for _, p := range sl.Ports {
				if p.Name == nil || *p.Name != sp.Name || p.Port == nil {
					continue
				}
				for _, ep := range sl.Endpoints {
					if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
						continue
					}
					for _, a := range ep.Addresses {
						eps = append(eps, netip.AddrPortFrom(netip.MustParseAddr(a), uint16(*p.Port)))
					}
				}
			}
		}
		slices.SortFunc(eps, func(a, b netip.AddrPort) int { return a.Compare(b) })
		for j, ep := range eps {
			args := []string{"iptables", "-w", "-t", "nat", "-A", chain, "-p", proto}
			if rest := len(eps) - j; rest > 1 {
				args = append(args, "-m", "statistic", "--mode", "random", "--probability", fmt.Sprintf("%.5f", 1/float64(rest)))
			}
			testkit.Run(t, append(args, "-j", "DNAT", "--to-destination", ep.String())...)
		}
		used[sp.Name] = eps
	}
	return used
}
