package testkit

import (
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

// DNSRecord is a name a DNSServer answers for and its A / AAAA addresses.
type DNSRecord struct {
	Name  string // e.g. "web.probe.test"
	Addrs []netip.Addr
}

// DNSServer is dnsmasq answering for fixed records on port 53, UDP and TCP,
// inside a namespace. It has no upstream: other names are refused.
type DNSServer struct {
	Netns Netns
	Addrs []netip.Addr // addresses it listens on
	dir   string
}

// StartDNSServer runs dnsmasq in ns on listen (addresses already configured
// there) until cleanup, and returns once it accepts UDP and TCP queries.
func StartDNSServer(t testing.TB, ns Netns, listen []netip.Addr, records ...DNSRecord) *DNSServer {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Fatalf("dnsmasq not installed (run `make deps`): %v", err)
	}
	s := &DNSServer{Netns: ns, Addrs: listen, dir: t.TempDir()}
	conf := []string{
		"no-resolv", "no-hosts", "bind-interfaces", "port=53", "user=root", "log-queries",
		"log-facility=" + s.path("log"),
	}
	for _, a := range listen {
		conf = append(conf, "listen-address="+a.String())
	}
	for _, r := range records {
		for _, a := range r.Addrs {
			// One line per address: a line takes one IPv4 and one IPv6.
			conf = append(conf, "host-record="+r.Name+","+a.String())
		}
	}
	if err := os.WriteFile(s.path("conf"), []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", string(ns), "dnsmasq", "--no-daemon",
		"--conf-file="+s.path("conf"), "--pid-file="+s.path("pid"))
	out, err := os.Create(s.path("out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	// Ready when every address has its UDP and TCP socket.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("dnsmasq exited: %s\n%s", cmd.ProcessState, s.Log())
		default:
		}
		ss, _ := exec.Command("ip", "netns", "exec", string(ns), "ss", "-Htuln", "sport = :53").Output()
		if strings.Count(string(ss), "\n") >= 2*len(listen) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq not listening after 5s:\n%s\n%s", ss, s.Log())
		}
	}
}

func (s *DNSServer) path(name string) string { return filepath.Join(s.dir, "dnsmasq."+name) }

// Log returns what dnsmasq wrote so far, queries included, for failure messages.
func (s *DNSServer) Log() string {
	out, _ := os.ReadFile(s.path("out"))
	log, _ := os.ReadFile(s.path("log"))
	return string(out) + string(log)
}

// Addresses of DNSPods: a /24 and a /64 shared by the client and the server.
var (
	DNSClientV4 = netip.MustParseAddr("10.203.0.1")
	DNSClientV6 = netip.MustParseAddr("fd00:203::1")
	DNSServerV4 = netip.MustParseAddr("10.203.0.2")
	DNSServerV6 = netip.MustParseAddr("fd00:203::2")
)

// DNSPods makes two namespace "pods" linked by a veth pair, the client at
// DNSClientV4 / DNSClientV6, the server at DNSServerV4 / DNSServerV6 running
// a DNSServer with records.
func DNSPods(t testing.TB, records ...DNSRecord) (client Netns, server *DNSServer) {
	t.Helper()
	client, srv := NewNetns(t, "ebpfflow-dns-client"), NewNetns(t, "ebpfflow-dns-server")
	client.Run(t, "ip", "link", "add", "dns-c", "type", "veth", "peer", "name", "dns-s", "netns", string(srv))
	for _, end := range []struct {
		ns     Netns
		dev    string
		v4, v6 netip.Addr
	}{{client, "dns-c", DNSClientV4, DNSClientV6}, {srv, "dns-s", DNSServerV4, DNSServerV6}} {
		// nodad: the v6 address is usable at once, not after duplicate detection.
		end.ns.Run(t, "ip", "addr", "add", fmt.Sprintf("%s/24", end.v4), "dev", end.dev)
		end.ns.Run(t, "ip", "-6", "addr", "add", fmt.Sprintf("%s/64", end.v6), "dev", end.dev, "nodad")
		end.ns.Run(t, "ip", "link", "set", end.dev, "up")
	}
	return client, StartDNSServer(t, srv, []netip.Addr{DNSServerV4, DNSServerV6}, records...)
}
