//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// Addresses of the DNS test: client pod c and resolver pod r on 10.208.0.0/24.
const (
	dnsNet         = 208
	dnsServfailIP  = "10.208.0.21" // upstream of fail.test: answers SERVFAIL
	dnsOddListenIP = "10.208.0.22" // takes queries ...
	dnsOddReplyIP  = "10.208.0.23" // ... and answers from here
	dnsSilentIP    = "10.208.0.30" // nothing answers (iptables DROP, no ICMP)
	dnsTimeout     = 2 * time.Second
)

// bigTXT is over 512 bytes: without EDNS the UDP answer is truncated and
// the client retries over TCP.
var bigTXT = []string{strings.Repeat("a", 200), strings.Repeat("b", 200), strings.Repeat("c", 200)}

const dnsmasqConf = `no-resolv
no-hosts
bind-interfaces
listen-address=%[1]s,%[2]s
user=root
log-queries
local=/dns.test/
host-record=web.dns.test,10.1.1.1,fd00:1::1
cname=alias.dns.test,web.dns.test
srv-host=_http._tcp.dns.test,web.dns.test,8080,10,5
txt-record=txt.dns.test,"hello world","second"
txt-record=big.dns.test,"%[3]s","%[4]s","%[5]s"
ptr-record=1.1.1.10.in-addr.arpa,web.dns.test
mx-host=dns.test,mail.dns.test,10
address=/many.dns.test/10.2.2.2
server=/fail.test/%[6]s
`

// digResult is what dig printed for one query: the oracle.
type digResult struct {
	args      []string
	id        uint16
	status    string
	answers   []string // RDATA of the ANSWER SECTION, as printed
	queryMs   int
	server    netip.AddrPort
	transport string // "udp" or "tcp"
	truncated bool   // dig saw TC and retried over TCP
}

// parseDig reads dig's default output. After a truncated UDP answer dig
// prints the TCP attempt's header and answer; the last header wins.
func parseDig(out string) (digResult, error) {
	var r digResult
	inAnswer := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ";; Truncated, retrying in TCP mode"):
			r.truncated = true
		case strings.HasPrefix(line, ";; ->>HEADER<<-"):
			for _, part := range strings.Split(line, ",") {
				kv := strings.SplitN(strings.TrimSpace(part), ": ", 2)
				if len(kv) != 2 {
					continue
				}
				switch kv[0] {
				case "status":
					r.status = kv[1]
				case "id":
					n, err := strconv.Atoi(kv[1])
					if err != nil {
						return r, fmt.Errorf("dig id %q: %w", kv[1], err)
					}
					r.id = uint16(n)
				}
			}
			r.answers = nil
		case strings.HasPrefix(line, ";; ANSWER SECTION:"):
			inAnswer = true
		case inAnswer && strings.TrimSpace(line) == "":
			inAnswer = false
		case inAnswer:
			f := strings.Fields(line) // name ttl class type rdata...
			if len(f) < 5 {
				return r, fmt.Errorf("dig answer line %q", line)
			}
			r.answers = append(r.answers, strings.Join(f[4:], " "))
		case strings.HasPrefix(line, ";; Query time:"):
			f := strings.Fields(line)
			if len(f) >= 4 {
				r.queryMs, _ = strconv.Atoi(f[3])
			}
		case strings.HasPrefix(line, ";; SERVER:"):
			// ";; SERVER: 10.208.0.20#53(10.208.0.20) (UDP)"
			f := strings.Fields(line)
			if len(f) < 3 {
				return r, fmt.Errorf("dig server line %q", line)
			}
			host, port, _ := strings.Cut(strings.SplitN(f[2], "(", 2)[0], "#")
			p, _ := strconv.Atoi(port)
			a, err := netip.ParseAddr(host)
			if err != nil {
				return r, fmt.Errorf("dig server %q: %w", f[2], err)
			}
			r.server = netip.AddrPortFrom(a, uint16(p))
			r.transport = strings.ToLower(strings.Trim(f[len(f)-1], "()"))
		}
	}
	if r.status == "" {
		return r, errors.New("no header in dig output")
	}
	return r, nil
}

// dnsEnv is the DNS test's pods, resolver and collector.
type dnsEnv struct {
	t    *testing.T
	dir  string
	c, r *pod
	col  *collector
	mu   sync.Mutex
	digs []digResult
}

func (e *dnsEnv) dig(args ...string) digResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, _ := e.c.Command(ctx, "dig", args...).Output() // dig's exit code is in its output
	out := string(raw)
	r, err := parseDig(out)
	if err != nil {
		e.t.Errorf("dig %v: %v\n%s", args, err, out) // not Fatal: called from goroutines too
	}
	r.args = args
	e.t.Logf("dig %s -> %s id %d %q (%s %v, %d ms)", strings.Join(args, " "), r.status, r.id, r.answers, r.transport, r.server, r.queryMs)
	e.mu.Lock()
	e.digs = append(e.digs, r)
	e.mu.Unlock()
	return r
}

// TestDNS runs the built collector while real clients — dig over UDP and
// TCP, IPv4 and IPv6, glibc's getent and Go's resolver — ask a dnsmasq
// resolver in another pod for local records, an NXDOMAIN name, a name whose
// upstream answers SERVFAIL, and a resolver address that never answers, and
// compares every dns.lookup record with what the client printed.
func TestDNS(t *testing.T) {
	testkit.RequireRoot(t)
	bin := collectorBinary(t)
	for _, tool := range []string{"ip", "ss", "iptables", "dig", "dnsmasq", "getent", "tshark", "xargs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (run `make deps`): %v", tool, err)
		}
	}
	began := time.Now()
	dir := outDir(t)
	c, r := newPodPairNet(t, "dc", "dr", dnsNet)
	e := &dnsEnv{t: t, dir: dir, c: c, r: r}
	for _, ip := range []string{dnsServfailIP, dnsOddListenIP, dnsOddReplyIP, dnsSilentIP} {
		testkit.Run(t, "ip", "-n", r.Netns, "addr", "add", ip+"/24", "dev", "eth0")
	}
	// The silent address swallows queries: no answer, no ICMP.
	testkit.Run(t, "ip", "netns", "exec", r.Netns, "iptables", "-A", "INPUT", "-d", dnsSilentIP, "-p", "udp", "--dport", "53", "-j", "DROP")
	// glibc and Go read /etc/resolv.conf: `ip netns exec` binds this one over it.
	resolvDir := filepath.Join("/etc/netns", c.Netns)
	must(t, os.MkdirAll(resolvDir, 0o755))
	t.Cleanup(func() { os.RemoveAll(resolvDir) })
	must(t, os.WriteFile(filepath.Join(resolvDir, "resolv.conf"), fmt.Appendf(nil, "nameserver %s\noptions timeout:1 attempts:1\n", r.IP4), 0o644))
	must(t, os.WriteFile(filepath.Join(resolvDir, "hosts"), []byte("127.0.0.1 localhost\n"), 0o644))

	r.Start(t, filepath.Join(dir, "servfail.log"), "env", helperEnv+"=servfail", os.Args[0], dnsServfailIP+":53")
	r.Start(t, filepath.Join(dir, "odd.log"), "env", helperEnv+"=odd", os.Args[0], dnsOddListenIP+":53", dnsOddReplyIP+":53")
	conf := filepath.Join(dir, "dnsmasq.conf")
	must(t, os.WriteFile(conf, fmt.Appendf(nil, dnsmasqConf, r.IP4, r.IP6, bigTXT[0], bigTXT[1], bigTXT[2], dnsServfailIP), 0o644))
	r.Start(t, filepath.Join(dir, "dnsmasq.log"), "dnsmasq", "--keep-in-foreground", "--conf-file="+conf, "--pid-file="+filepath.Join(dir, "dnsmasq.pid"), "--log-facility=-")
	r.WaitListening(t, "udp", 53)
	r.WaitListening(t, "tcp", 53)

	// tshark on the client's interface: the wire's own count of queries to
	// the silent address.
	capPath := filepath.Join(dir, "silent.pcap")
	c.Start(t, filepath.Join(dir, "tshark.log"), "tshark", "-n", "-i", "eth0", "-w", capPath, "-f", "udp and host "+dnsSilentIP)
	time.Sleep(time.Second) // tshark opens the interface

	col := startCollectorDNS(t, bin, dir)
	trafficStart := time.Now()

	r4, r6 := r.IP4.String(), r.IP6.String()
	cases := map[string]digResult{
		"a":         e.dig("@"+r4, "web.dns.test", "A"),
		"aaaa_v6":   e.dig("@"+r6, "web.dns.test", "AAAA"),
		"cname":     e.dig("@"+r4, "alias.dns.test", "A"),
		"tcp":       e.dig("+tcp", "@"+r4, "alias.dns.test", "A"),
		"tcp_v6":    e.dig("+tcp", "@"+r6, "web.dns.test", "AAAA"),
		"srv":       e.dig("@"+r4, "_http._tcp.dns.test", "SRV"),
		"txt":       e.dig("@"+r4, "txt.dns.test", "TXT"),
		"mx":        e.dig("@"+r4, "dns.test", "MX"),
		"ptr":       e.dig("@"+r4, "-x", "10.1.1.1"),
		"nx":        e.dig("@"+r4, "nope.dns.test", "A"),
		"servfail":  e.dig("@"+r4, "x.fail.test", "A"),
		"truncated": e.dig("+noedns", "@"+r4, "big.dns.test", "TXT"),
	}
	// Never answered: dig sends its query twice, the same id from the same
	// socket (a retransmission, one lookup); a second dig is a second lookup.
	silentStart := time.Now()
	e.c.Exec(t, 30*time.Second, "dig", "+tries=2", "+time=1", "@"+dnsSilentIP, "web.dns.test", "A")
	e.c.Exec(t, 30*time.Second, "dig", "+tries=1", "+time=1", "@"+dnsSilentIP, "alias.dns.test", "A")

	// Many names in parallel.
	var names []string
	for i := range 60 {
		names = append(names, fmt.Sprintf("n%d.many.dns.test", i))
	}
	parallelStart := time.Now()
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.dig("@"+r4, n, "A")
		}()
	}
	wg.Wait()
	t.Logf("%d parallel digs in %v", len(names), time.Since(parallelStart).Round(time.Millisecond))

	getentOut, rc := c.Exec(t, 10*time.Second, "getent", "ahosts", "web.dns.test")
	if rc != 0 {
		t.Fatalf("getent ahosts web.dns.test: rc %d", rc)
	}
	goOut, rc := c.Exec(t, 30*time.Second, "env", helperEnv+"=resolve", os.Args[0], "alias.dns.test")
	if rc != 0 {
		t.Fatalf("Go resolver: rc %d", rc)
	}
	oddOut, rc := c.Exec(t, 30*time.Second, "env", helperEnv+"=unconnected", os.Args[0], dnsOddListenIP+":53", "odd.dns.test")
	if rc != 0 {
		t.Fatalf("unconnected client: rc %d", rc)
	}

	// Every lookup is out once the silent ones time out (2 s) and a flush passes.
	time.Sleep(dnsTimeout + 3*time.Second)
	self, selfErr := col.ScrapeSelfMetrics()
	col.Stop(t)
	t.Logf("traffic and flushes took %v", time.Since(trafficStart).Round(time.Millisecond))

	recs, err := readLogs(col.logsPath)
	must(t, err)
	var lookups []logRecord
	for _, rec := range recs {
		if rec.Event == "dns.lookup" && rec.res("k8s.pod.uid") == c.UID {
			lookups = append(lookups, rec)
		}
	}
	dumpTestRecords(t, dir, lookups)
	t.Logf("%d dns.lookup records from pod %s", len(lookups), c.Name)

	find := func(t *testing.T, transport string, id uint16, name string) logRecord {
		t.Helper()
		var got []logRecord
		for _, l := range lookups {
			if l.int("ebpfflow.dns.id") == int64(id) && l.str("dns.question.name") == name && l.str("network.transport") == transport {
				got = append(got, l)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%d %s lookups of %s with id %d, want 1; all:\n%s", len(got), transport, name, id, joinRecords(lookups))
		}
		return got[0]
	}
	check := func(t *testing.T, d digResult, name, qtype string) {
		t.Helper()
		l := find(t, d.transport, d.id, name)
		want := map[string]any{
			"dns.question.name":          name,
			"ebpfflow.dns.question.type": qtype,
			"ebpfflow.dns.response_code": d.status,
			"server.address":             d.server.Addr().String(),
			"server.port":                int64(d.server.Port()),
			"network.transport":          d.transport,
			"client.address":             c.IP4.String(),
			"network.type":               "ipv4",
		}
		if d.server.Addr().Is6() {
			want["client.address"], want["network.type"] = c.IP6.String(), "ipv6"
		}
		if d.status != "NOERROR" {
			want["error.type"] = d.status
		}
		for k, v := range want {
			if l.Attrs[k] != v {
				t.Errorf("%s = %v, dig says %v (dig %v)", k, l.Attrs[k], v, d.args)
			}
		}
		if _, ok := l.Attrs["error.type"]; ok && d.status == "NOERROR" {
			t.Errorf("error.type set on a NOERROR lookup")
		}
		if got := answers(l); !slices.Equal(got, d.answers) {
			t.Errorf("ebpfflow.dns.records + dns.answers = %q, dig printed %q", got, d.answers)
		}
		for _, a := range strs(l, "dns.answers") {
			if _, err := netip.ParseAddr(a); err != nil {
				t.Errorf("dns.answers holds %q, not an address", a)
			}
		}
		for _, r := range strs(l, "ebpfflow.dns.records") {
			if _, err := netip.ParseAddr(r); err == nil {
				t.Errorf("ebpfflow.dns.records holds the address %q", r)
			}
		}
		// dig's query time is whole milliseconds, and under the parallel
		// load its send-completion stamp can lag the packet by a few.
		sec, _ := l.Attrs["ebpfflow.dns.duration"].(float64)
		if sec <= 0 || sec*1000 > float64(d.queryMs)+10 {
			t.Errorf("ebpfflow.dns.duration = %v s, dig's query time %d ms", sec, d.queryMs)
		}
		if port := l.int("client.port"); port <= 0 || port > 65535 {
			t.Errorf("client.port = %d", port)
		}
		if l.res("container.id") != c.ContainerID {
			t.Errorf("resource container.id = %q, want %q", l.res("container.id"), c.ContainerID)
		}
	}

	t.Run("dig", func(t *testing.T) {
		for name, want := range map[string]struct{ qname, qtype string }{
			"a": {"web.dns.test", "A"}, "aaaa_v6": {"web.dns.test", "AAAA"}, "cname": {"alias.dns.test", "A"},
			"tcp": {"alias.dns.test", "A"}, "tcp_v6": {"web.dns.test", "AAAA"}, "srv": {"_http._tcp.dns.test", "SRV"},
			"txt": {"txt.dns.test", "TXT"}, "mx": {"dns.test", "MX"}, "ptr": {"1.1.1.10.in-addr.arpa", "PTR"},
			"nx": {"nope.dns.test", "A"}, "servfail": {"x.fail.test", "A"},
		} {
			t.Run(name, func(t *testing.T) { check(t, cases[name], want.qname, want.qtype) })
		}
		if d := cases["nx"]; d.status != "NXDOMAIN" {
			t.Errorf("dnsmasq answered nope.dns.test with %s, the test expects NXDOMAIN", d.status)
		}
		if d := cases["servfail"]; d.status != "SERVFAIL" {
			t.Errorf("dnsmasq answered x.fail.test with %s, the test expects SERVFAIL", d.status)
		}
		if d := cases["tcp"]; d.transport != "tcp" {
			t.Errorf("dig +tcp used %s", d.transport)
		}
	})

	t.Run("truncated_then_tcp", func(t *testing.T) {
		d := cases["truncated"]
		if !d.truncated || d.transport != "tcp" {
			t.Fatalf("dig did not retry over TCP after truncation: %+v", d)
		}
		var udp []logRecord
		for _, l := range lookups {
			if l.str("dns.question.name") == "big.dns.test" && l.str("network.transport") == "udp" {
				udp = append(udp, l)
			}
		}
		if len(udp) != 1 || udp[0].Attrs["ebpfflow.dns.truncated"] != true || udp[0].str("ebpfflow.dns.response_code") != "NOERROR" {
			t.Errorf("want one truncated NOERROR UDP lookup before the TCP one, got:\n%s", joinRecords(udp))
		}
		check(t, d, "big.dns.test", "TXT")
	})

	t.Run("timeout", func(t *testing.T) {
		queries, packets := silentQueries(t, capPath)
		var timeouts []logRecord
		for _, l := range lookups {
			if l.str("server.address") == dnsSilentIP {
				timeouts = append(timeouts, l)
			}
		}
		if len(timeouts) != len(queries) {
			t.Fatalf("%d lookups to %s, the wire carried %d distinct queries (socket port, id) in %d packets: exactly one TIMEOUT each\n%s", len(timeouts), dnsSilentIP, len(queries), packets, joinRecords(timeouts))
		}
		for _, l := range timeouts {
			if l.str("ebpfflow.dns.response_code") != "TIMEOUT" || l.str("error.type") != "TIMEOUT" {
				t.Errorf("unanswered lookup reported as %s", l.str("ebpfflow.dns.response_code"))
			}
			key := fmt.Sprintf("%d/%d", l.int("client.port"), l.int("ebpfflow.dns.id"))
			if queries[key] == 0 {
				t.Errorf("TIMEOUT for port/id %s, which the wire never carried", key)
			} else if got, want := l.int("ebpfflow.dns.retransmits"), int64(queries[key]-1); got != want {
				t.Errorf("%s: ebpfflow.dns.retransmits %d, the wire carried %d repeats", key, got, want)
			}
			if sec, _ := l.Attrs["ebpfflow.dns.duration"].(float64); sec != dnsTimeout.Seconds() {
				t.Errorf("TIMEOUT duration %v s, want the configured %v", sec, dnsTimeout)
			}
			if l.Time.Before(silentStart.Add(dnsTimeout)) {
				t.Errorf("TIMEOUT record time %v is before query + timeout", l.Time)
			}
		}
	})

	t.Run("parallel", func(t *testing.T) {
		e.mu.Lock()
		defer e.mu.Unlock()
		seen := 0
		for _, d := range e.digs {
			name := d.args[1]
			if !strings.HasSuffix(name, ".many.dns.test") {
				continue
			}
			seen++
			check(t, d, name, "A")
		}
		if seen != len(names) {
			t.Errorf("%d parallel digs parsed, want %d", seen, len(names))
		}
	})

	t.Run("getent", func(t *testing.T) {
		// "10.1.1.1 STREAM web.dns.test" ...: the addresses glibc returned.
		want := map[string]bool{}
		for _, line := range strings.Split(getentOut, "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				want[f[0]] = true
			}
		}
		got := map[string]bool{}
		types := map[string]bool{}
		for _, l := range lookups {
			if l.str("dns.question.name") == "web.dns.test" && l.int("client.port") != 0 && l.str("server.address") == r4 && l.str("ebpfflow.dns.response_code") == "NOERROR" {
				for _, a := range answers(l) {
					got[a] = true
				}
				types[l.str("ebpfflow.dns.question.type")] = true
			}
		}
		for a := range want {
			if !got[a] {
				t.Errorf("getent returned %s; no lookup answered it (answers seen: %v)", a, got)
			}
		}
		if !types["A"] || !types["AAAA"] {
			t.Errorf("glibc asks A and AAAA; lookups seen: %v", types)
		}
	})

	t.Run("go_resolver", func(t *testing.T) {
		// The Go program printed the addresses its resolver returned.
		var cname, a, aaaa bool
		for _, l := range lookups {
			if l.str("dns.question.name") != "alias.dns.test" || l.str("network.transport") != "udp" {
				continue
			}
			got := answers(l)
			switch l.str("ebpfflow.dns.question.type") {
			case "A":
				a = a || slices.Contains(got, "10.1.1.1")
			case "AAAA":
				aaaa = aaaa || slices.Contains(got, "fd00:1::1")
			}
			cname = cname || slices.Contains(got, "web.dns.test.")
		}
		for _, addr := range strings.Fields(goOut) {
			if addr == "10.1.1.1" && !a || addr == "fd00:1::1" && !aaaa {
				t.Errorf("Go resolved %s; no alias.dns.test lookup answered it", addr)
			}
		}
		if !cname {
			t.Errorf("the CNAME web.dns.test. is missing from the alias.dns.test answers")
		}
	})

	t.Run("other_responder", func(t *testing.T) {
		// The client printed "from 10.208.0.23:53 id 20817 answers 10.3.3.3".
		f := strings.Fields(oddOut)
		if len(f) < 6 || f[0] != "from" {
			t.Fatalf("unconnected client printed %q", oddOut)
		}
		id, _ := strconv.Atoi(f[3])
		l := find(t, "udp", uint16(id), "odd.dns.test")
		if l.str("server.address") != dnsOddListenIP || l.str("ebpfflow.dns.responder.address") != dnsOddReplyIP || l.int("ebpfflow.dns.responder.port") != 53 {
			t.Errorf("asked %s, answered from %s: record says server %s, responder %s:%d", dnsOddListenIP, f[1], l.str("server.address"), l.str("ebpfflow.dns.responder.address"), l.int("ebpfflow.dns.responder.port"))
		}
		if got := answers(l); !slices.Equal(got, f[5:]) {
			t.Errorf("answers %q, client got %q", got, f[5:])
		}
	})

	t.Run("metrics", func(t *testing.T) {
		points, err := readMetrics(col.metricsPath)
		must(t, err)
		// The last cumulative count per series, summed per (resolver, qtype, error.type).
		last := map[string]point{}
		for _, p := range points {
			if p.Metric == "dns.lookup.duration" && p.Resource["k8s.pod.uid"] == c.UID {
				last[p.series()] = p
			}
		}
		count := map[string]float64{}
		for _, p := range last {
			if _, has := p.Attrs["dns.question.name"]; has {
				t.Errorf("dns.question.name on dns.lookup.duration by default: %v", p.Attrs)
			}
			if _, has := p.Attrs["client.address"]; has {
				t.Errorf("client.address on a metric: %v", p.Attrs)
			}
			count[fmt.Sprintf("%v/%v/%v", p.Attrs["server.address"], p.Attrs["ebpfflow.dns.question.type"], p.Attrs["error.type"])] += p.Value
		}
		want := map[string]float64{}
		for _, l := range lookups {
			et := l.Attrs["error.type"]
			want[fmt.Sprintf("%v/%v/%v", l.Attrs["server.address"], l.Attrs["ebpfflow.dns.question.type"], et)]++
		}
		for k, v := range want {
			if count[k] != v {
				t.Errorf("dns.lookup.duration count %s = %v, want %v (one per lookup record)", k, count[k], v)
			}
		}
	})

	t.Run("spans", func(t *testing.T) {
		spans, err := readSpans(col.tracesPath)
		must(t, err)
		n := 0
		for _, sp := range spans {
			if sp.Resource["k8s.pod.uid"] != c.UID {
				continue
			}
			n++
			qtype, _ := sp.Attrs["ebpfflow.dns.question.type"].(string)
			if sp.Name != "DNS "+qtype || sp.Kind != ptrace.SpanKindClient {
				t.Errorf("span %q kind %v for qtype %s", sp.Name, sp.Kind, qtype)
			}
			rcode, _ := sp.Attrs["ebpfflow.dns.response_code"].(string)
			if (rcode != "NOERROR") != (sp.Status == ptrace.StatusCodeError) {
				t.Errorf("span of a %s lookup has status %v", rcode, sp.Status)
			}
		}
		if n != len(lookups) {
			t.Errorf("%d DNS spans, %d dns.lookup records", n, len(lookups))
		}
	})

	t.Run("self_telemetry", func(t *testing.T) {
		if selfErr != nil {
			t.Fatal(selfErr)
		}
		events := false
		for _, line := range strings.Split(self, "\n") {
			events = events || strings.HasPrefix(line, "otelcol_ebpfflow_events") && !strings.HasPrefix(line, "otelcol_ebpfflow_events_lost") && strings.Contains(line, `probe="dns"`)
		}
		if !events || !strings.Contains(self, "otelcol_ebpfflow_dns_pending") {
			t.Errorf("self-telemetry lacks ebpfflow_events{probe=dns} or ebpfflow_dns_pending")
		}
		for _, line := range strings.Split(self, "\n") {
			if strings.HasPrefix(line, "otelcol_ebpfflow_events_lost") && strings.Contains(line, `probe="dns"`) &&
				(strings.Contains(line, "ring_buffer_full") || strings.Contains(line, "decode_error")) && !strings.HasSuffix(line, " 0") {
				t.Errorf("DNS events lost: %s", line)
			}
		}
	})
	t.Logf("dns end-to-end total %v", time.Since(began).Round(time.Millisecond))
}

// answers is the answer section as dig prints it: the records other than
// addresses (ebpfflow.dns.records: CNAMEs come first in every answer here),
// then the addresses (dns.answers).
func answers(l logRecord) []string {
	return append(strs(l, "ebpfflow.dns.records"), strs(l, "dns.answers")...)
}

func strs(l logRecord, k string) []string {
	raw, _ := l.Attrs[k].([]any)
	out := make([]string, 0, len(raw))
	for _, a := range raw {
		s, _ := a.(string)
		out = append(out, s)
	}
	return out
}

func joinRecords(recs []logRecord) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// silentQueries counts the DNS query packets the capture saw per distinct
// query ("client port/id": a resend from the same socket repeats both), as
// tshark's dissector reads them.
func silentQueries(t *testing.T, pcap string) (map[string]int, int) {
	t.Helper()
	out, err := exec.Command("tshark", "-n", "-r", pcap, "-Y", "dns.flags.response == 0", "-T", "fields", "-e", "udp.srcport", "-e", "dns.id").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", pcap, err)
	}
	queries := map[string]int{}
	packets := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 16)
		if err != nil {
			t.Fatalf("tshark dns.id %q: %v", f[1], err)
		}
		queries[fmt.Sprintf("%s/%d", f[0], id)]++
		packets++
	}
	if packets == 0 {
		t.Fatalf("the capture has no query to %s", dnsSilentIP)
	}
	return queries, packets
}

// startCollectorDNS is startCollector with dns.timeout at dnsTimeout.
func startCollectorDNS(t *testing.T, bin, dir string) *collector {
	t.Helper()
	orig := collectorConfigOverride
	collectorConfigOverride = strings.Replace(collectorConfig, "    flush_interval: 1s\n", fmt.Sprintf("    flush_interval: 1s\n    dns: {timeout: %s}\n", dnsTimeout), 1)
	defer func() { collectorConfigOverride = orig }()
	return startCollector(t, bin, dir)
}

// span is one exported span flattened with its resource.
type span struct {
	Name     string
	Kind     ptrace.SpanKind
	Status   ptrace.StatusCode
	Resource map[string]any
	Attrs    map[string]any
}

func readSpans(path string) ([]span, error) {
	lines, err := completeLines(path)
	if err != nil {
		return nil, err
	}
	var out []span
	var u ptrace.JSONUnmarshaler
	for n, line := range lines {
		td, err := u.UnmarshalTraces(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n+1, err)
		}
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			res := rs.Resource().Attributes().AsRaw()
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				sps := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < sps.Len(); k++ {
					sp := sps.At(k)
					out = append(out, span{Name: sp.Name(), Kind: sp.Kind(), Status: sp.Status().Code(), Resource: res, Attrs: sp.Attributes().AsRaw()})
				}
			}
		}
	}
	return out, nil
}

// helperEnv selects a helper mode: TestDNS and TestHTTP run this test
// binary inside their pods as servers and clients of their own (see
// TestMain).
const helperEnv = "EBPFFLOW_E2E_DNS_HELPER"

// helper runs the test binary as a helper process: the mode is in the
// environment, the arguments are the binary's own.
func helper(mode string, args []string) {
	var err error
	switch mode {
	case "servfail":
		err = serveDNS(args[0], "", func(q dnsmessage.Question, h *dnsmessage.Header) []dnsmessage.Resource {
			h.RCode = dnsmessage.RCodeServerFailure
			return nil
		})
	case "odd":
		err = serveDNS(args[0], args[1], func(q dnsmessage.Question, h *dnsmessage.Header) []dnsmessage.Resource {
			return []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 30},
				Body:   &dnsmessage.AResource{A: [4]byte{10, 3, 3, 3}},
			}}
		})
	case "resolve":
		var addrs []string
		r := &net.Resolver{PreferGo: true}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		addrs, err = r.LookupHost(ctx, args[0])
		fmt.Println(strings.Join(addrs, " "))
	case "unconnected":
		err = askUnconnected(args[0], args[1])
	default:
		var ok bool
		if ok, err = httpHelper(mode, args); !ok {
			err = fmt.Errorf("unknown helper mode %q", mode)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveDNS answers every query on listen (UDP) with answer(); from replyFrom
// when set (a second socket), else from the listening one.
func serveDNS(listen, replyFrom string, answer func(dnsmessage.Question, *dnsmessage.Header) []dnsmessage.Resource) error {
	in, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	out := in
	if replyFrom != "" {
		if out, err = net.ListenPacket("udp", replyFrom); err != nil {
			return err
		}
	}
	buf := make([]byte, 4096)
	for {
		n, from, err := in.ReadFrom(buf)
		if err != nil {
			return err
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		rh := dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
		rrs := answer(q, &rh)
		msg := dnsmessage.Message{Header: rh, Questions: []dnsmessage.Question{q}, Answers: rrs}
		b, err := msg.Pack()
		if err != nil {
			return err
		}
		if _, err := out.WriteTo(b, from); err != nil {
			return err
		}
	}
}

// askUnconnected sends one A query from an unconnected UDP socket, which
// accepts an answer from any address, and prints where it came from.
func askUnconnected(server, name string) error {
	conn, err := net.ListenPacket("udp", ":0")
	if err != nil {
		return err
	}
	defer conn.Close()
	to, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return err
	}
	id := uint16(time.Now().UnixNano()) | 1
	q := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name + "."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
	}
	b, err := q.Pack()
	if err != nil {
		return err
	}
	if _, err := conn.WriteTo(b, to); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, from, err := conn.ReadFrom(buf)
	if err != nil {
		return err
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:n]); err != nil {
		return err
	}
	var ans []string
	for _, rr := range m.Answers {
		if a, ok := rr.Body.(*dnsmessage.AResource); ok {
			ans = append(ans, netip.AddrFrom4(a.A).String())
		}
	}
	fmt.Printf("from %s id %d answers %s\n", from, m.Header.ID, strings.Join(ans, " "))
	return nil
}
