//go:build e2e

package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// Known sizes: the oracles the exported byte counts are checked against.
const (
	blob4Size   = 1_000_003 // HTTP body over IPv4
	blob6Size   = 300_007   // HTTP body over IPv6
	udpPayload  = 1000      // bytes per datagram
	udpCount    = 25        // datagrams
	httpPort    = 8080
	udpPort     = 9000
	closedPort  = 9998 // nothing listens: connect is refused
	droppedPort = 9999 // iptables DROP in pod b
	// Client ports are pinned so records can be matched exactly.
	portHTTP4, portHTTP6, portRefused, portDropped, portUDP = 42000, 42001, 42002, 42003, 41000
)

// Header bytes per packet at the IP layer. Linux enables TCP timestamps, so
// every segment carries 12 option bytes (TCP header 32); SYN and SYN-ACK
// carry 20 (MSS, SACK-permitted, timestamps, window scale: TCP header 40).
const (
	ip4Header, ip6Header = 20, 40
	tcpHeaderTS          = 32
	synExtra             = 8 // SYN / SYN-ACK: 40 - 32
	udpHeader            = 8
	vethMTU              = 1500
)

// curlResult is what curl itself reports: the oracle for HTTP byte counts.
type curlResult struct {
	download, header, request int64
	code                      string
	// Segments pod b's TCP stack sent and received during the transfer,
	// handshake and close included (its namespace sees nothing else).
	serverOutSegs, serverInSegs int64
}

// TestEndToEnd runs the built collector (ebpfflow, 1 s flushes -> file
// exporters) while pod a talks to pod b: HTTP downloads over IPv4 and IPv6,
// UDP datagrams, a refused connect and a connect that pod b's iptables drops.
// The exported records are then checked field by field against curl's own
// byte counts, pod b's kernel segment counters and the packet header sizes.
func TestEndToEnd(t *testing.T) {
	testkit.RequireRoot(t)
	bin := collectorBinary(t)
	for _, tool := range []string{"ip", "ss", "nginx", "curl", "socat", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (run `make deps`): %v", tool, err)
		}
	}
	began := time.Now()
	dir := outDir(t)
	a, b := newPodPair(t)
	t.Logf("pods: a netns=%s uid=%s container=%s; b netns=%s uid=%s container=%s",
		a.Netns, a.UID, a.ContainerID[:12], b.Netns, b.UID, b.ContainerID[:12])

	startServers(t, dir, b)

	col := startCollector(t, bin, dir)
	time.Sleep(500 * time.Millisecond) // let the first flush establish a baseline

	trafficStart := time.Now()
	http4, http6 := generateTraffic(t, dir, a, b)
	t.Logf("traffic generated in %v", time.Since(trafficStart).Round(time.Millisecond))

	// Wait until every scenario has its final record, then a little longer
	// for idle UDP flows to be reported as ended.
	want := expectedKeys(a, b)
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs, err := readLogs(col.logsPath)
		must(t, err)
		missing := missingFinals(recs, want)
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("still missing after 30s: %v", missing)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	self, selfErr := col.ScrapeSelfMetrics()
	col.Stop(t)
	t.Logf("collector stopped %v after traffic; total so far %v", time.Since(trafficStart).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	recs, err := readLogs(col.logsPath)
	must(t, err)
	points, err := readMetrics(col.metricsPath)
	must(t, err)
	flows := aggregate(recs)
	t.Logf("output: %d log records (%d flow aggregates), %d metric points", len(recs), len(flows), len(points))
	if len(recs) == 0 {
		t.Fatalf("no log records in %s\n%s", col.logsPath, col.LogTail())
	}
	dumpTestRecords(t, dir, recs)

	t.Run("http_ipv4_client", func(t *testing.T) {
		checkTCPTransfer(t, flows, want["http4"], a, http4, false)
	})
	t.Run("http_ipv4_server", func(t *testing.T) {
		srv := checkTCPTransfer(t, flows, want["http4-server"], b, http4, false)
		compareEnds(t, flows[want["http4"]], srv)
	})
	t.Run("http_ipv6_client", func(t *testing.T) {
		checkTCPTransfer(t, flows, want["http6"], a, http6, true)
	})
	t.Run("http_ipv6_server", func(t *testing.T) {
		srv := checkTCPTransfer(t, flows, want["http6-server"], b, http6, true)
		compareEnds(t, flows[want["http6"]], srv)
	})
	t.Run("udp_client", func(t *testing.T) { checkUDP(t, flows, want["udp"], a) })
	t.Run("udp_server", func(t *testing.T) { checkUDP(t, flows, want["udp-server"], b) })
	t.Run("tcp_refused", func(t *testing.T) { checkRefused(t, flows, recs, want["refused"], a) })
	t.Run("netfilter_drop", func(t *testing.T) { checkNetfilterDrop(t, flows, recs, want["dropped"], a) })
	t.Run("metrics", func(t *testing.T) { checkMetrics(t, points, a, b) })
	t.Run("self_telemetry", func(t *testing.T) {
		if selfErr != nil {
			t.Fatalf("scrape self-telemetry: %v", selfErr)
		}
		checkSelfTelemetry(t, self)
	})
	t.Logf("end-to-end total %v", time.Since(began).Round(time.Millisecond))
}

// startServers runs pod b's servers: nginx (IPv4 + IPv6) serving two files of
// known size, a UDP sink, and an iptables DROP rule for droppedPort.
func startServers(t *testing.T, dir string, b *pod) {
	t.Helper()
	www := filepath.Join(dir, "www")
	must(t, os.MkdirAll(www, 0o755))
	writeRandom(t, filepath.Join(www, "blob4"), blob4Size)
	writeRandom(t, filepath.Join(www, "blob6"), blob6Size)
	nginxConf := writeNginxConf(t, dir, www, b)
	b.Start(t, filepath.Join(dir, "nginx.log"), "nginx", "-p", filepath.Join(dir, "nginx"), "-e", filepath.Join(dir, "nginx", "error.log"), "-c", nginxConf)
	b.Start(t, filepath.Join(dir, "udp-sink.log"), "socat", "-u", fmt.Sprintf("UDP4-RECV:%d,bind=%s", udpPort, b.IP4), "OPEN:/dev/null")
	b.WaitListening(t, "tcp", httpPort)
	b.WaitListening(t, "udp", udpPort)
	// Dropped by netfilter in pod b's own namespace (removed with it).
	testkit.Run(t, "ip", "netns", "exec", b.Netns, "iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", strconv.Itoa(droppedPort), "-j", "DROP")
}

// generateTraffic runs every scenario from pod a and returns curl's own
// counts for the two downloads.
func generateTraffic(t *testing.T, dir string, a, b *pod) (http4, http6 curlResult) {
	t.Helper()
	http4 = download(t, a, b, portHTTP4, fmt.Sprintf("http://%s:%d/blob4", b.IP4, httpPort))
	http6 = download(t, a, b, portHTTP6, fmt.Sprintf("http://[%s]:%d/blob6", b.IP6, httpPort))
	if http4.download != blob4Size || http6.download != blob6Size {
		t.Fatalf("curl downloaded %d / %d bytes, want %d / %d", http4.download, http6.download, blob4Size, blob6Size)
	}
	payload := filepath.Join(dir, "udp-payload")
	writeRandom(t, payload, udpPayload*udpCount)
	// -b: one read of udpPayload bytes = one datagram.
	if _, rc := a.Exec(t, 10*time.Second, "socat", "-u", "-b", strconv.Itoa(udpPayload), "OPEN:"+payload,
		fmt.Sprintf("UDP4-SENDTO:%s:%d,sourceport=%d", b.IP4, udpPort, portUDP)); rc != 0 {
		t.Fatalf("socat udp sender: rc %d", rc)
	}
	curl(t, a, portRefused, fmt.Sprintf("http://%s:%d/", b.IP4, closedPort), 7)   // 7: connection refused
	curl(t, a, portDropped, fmt.Sprintf("http://%s:%d/", b.IP4, droppedPort), 28) // 28: timed out
	return http4, http6
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	must(t, os.WriteFile(path, b, 0o644))
}

func writeNginxConf(t *testing.T, dir, www string, b *pod) string {
	t.Helper()
	prefix := filepath.Join(dir, "nginx")
	must(t, os.MkdirAll(prefix, 0o755))
	conf := fmt.Sprintf(`daemon off;
user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	types { application/octet-stream bin; }
	default_type application/octet-stream;
	server {
		listen %[2]s:%[4]d;
		listen [%[3]s]:%[4]d;
		root %[5]s;
	}
}
`, prefix, b.IP4, b.IP6, httpPort, www)
	path := filepath.Join(prefix, "nginx.conf")
	must(t, os.WriteFile(path, []byte(conf), 0o644))
	return path
}

// download runs curl in pod a against pod b and adds pod b's segment counts.
func download(t *testing.T, a, b *pod, localPort int, url string) curlResult {
	t.Helper()
	out0, in0 := b.SNMP(t, "Tcp", "OutSegs"), b.SNMP(t, "Tcp", "InSegs")
	r := curl(t, a, localPort, url, 0)
	// curl returns once it has the body; the FIN exchange follows at once.
	time.Sleep(200 * time.Millisecond)
	r.serverOutSegs, r.serverInSegs = b.SNMP(t, "Tcp", "OutSegs")-out0, b.SNMP(t, "Tcp", "InSegs")-in0
	t.Logf("%s: pod b sent %d and received %d TCP segments", url, r.serverOutSegs, r.serverInSegs)
	return r
}

// curl fetches url from pod p with a pinned local port and returns curl's own
// byte counts; wantRC is the expected exit code (0, 7 refused, 28 timeout).
func curl(t *testing.T, p *pod, localPort int, url string, wantRC int) curlResult {
	t.Helper()
	out, rc := p.Exec(t, 30*time.Second, "curl", "-sS", "-g", "-o", "/dev/null",
		"--connect-timeout", "3", "--local-port", strconv.Itoa(localPort),
		"-w", "%{size_download} %{size_header} %{size_request} %{http_code}", url)
	if rc != wantRC {
		t.Fatalf("curl %s: rc %d, want %d", url, rc, wantRC)
	}
	var r curlResult
	if _, err := fmt.Sscan(out, &r.download, &r.header, &r.request, &r.code); err != nil {
		t.Fatalf("curl %s: parse %q: %v", url, out, err)
	}
	if wantRC == 0 && r.code != "200" {
		t.Fatalf("curl %s: HTTP %s", url, r.code)
	}
	return r
}

// flowKey identifies one connection from one end's point of view.
type flowKey struct {
	role, transport, src, dst string
}

func (k flowKey) String() string {
	return fmt.Sprintf("%s %s %s -> %s", k.role, k.transport, k.src, k.dst)
}

func expectedKeys(a, b *pod) map[string]flowKey {
	hp := func(ip fmt.Stringer, port int) string {
		s := ip.String()
		if strings.Contains(s, ":") {
			s = "[" + s + "]"
		}
		return fmt.Sprintf("%s:%d", s, port)
	}
	return map[string]flowKey{
		"http4":        {"client", "tcp", hp(a.IP4, portHTTP4), hp(b.IP4, httpPort)},
		"http4-server": {"server", "tcp", hp(a.IP4, portHTTP4), hp(b.IP4, httpPort)},
		"http6":        {"client", "tcp", hp(a.IP6, portHTTP6), hp(b.IP6, httpPort)},
		"http6-server": {"server", "tcp", hp(a.IP6, portHTTP6), hp(b.IP6, httpPort)},
		"udp":          {"client", "udp", hp(a.IP4, portUDP), hp(b.IP4, udpPort)},
		"udp-server":   {"server", "udp", hp(a.IP4, portUDP), hp(b.IP4, udpPort)},
		"refused":      {"client", "tcp", hp(a.IP4, portRefused), hp(b.IP4, closedPort)},
		"dropped":      {"client", "tcp", hp(a.IP4, portDropped), hp(b.IP4, droppedPort)},
	}
}

// flowAgg is every record of one connection, with counters summed over the
// per-interval records.
type flowAgg struct {
	key                                  flowKey
	records                              []logRecord
	srcBytes, srcPkts, dstBytes, dstPkts int64
}

func keyOf(r logRecord) flowKey {
	hp := func(addr string, port int64) string {
		if strings.Contains(addr, ":") {
			addr = "[" + addr + "]"
		}
		return fmt.Sprintf("%s:%d", addr, port)
	}
	return flowKey{
		role:      r.str("ebpfflow.flow.local_role"),
		transport: r.str("network.transport"),
		src:       hp(r.str("source.address"), r.int("source.port")),
		dst:       hp(r.str("destination.address"), r.int("destination.port")),
	}
}

func aggregate(recs []logRecord) map[flowKey]*flowAgg {
	out := map[flowKey]*flowAgg{}
	for _, r := range recs {
		if r.Event != "network.flow" {
			continue
		}
		k := keyOf(r)
		f := out[k]
		if f == nil {
			f = &flowAgg{key: k}
			out[k] = f
		}
		f.records = append(f.records, r)
		f.srcBytes += r.int("ebpfflow.flow.source.bytes")
		f.srcPkts += r.int("ebpfflow.flow.source.packets")
		f.dstBytes += r.int("ebpfflow.flow.destination.bytes")
		f.dstPkts += r.int("ebpfflow.flow.destination.packets")
	}
	return out
}

// missingFinals lists the expected connections that have not yet had their
// final record (TCP: a close cause; UDP: any record so far).
func missingFinals(recs []logRecord, want map[string]flowKey) []string {
	flows := aggregate(recs)
	var missing []string
	for name, k := range want {
		f := flows[k]
		if f == nil {
			missing = append(missing, name)
			continue
		}
		if k.transport == "tcp" && len(f.closeRecords()) == 0 {
			missing = append(missing, name+" (not closed)")
		}
	}
	var drop bool
	for _, r := range recs {
		drop = drop || (r.Event == "network.drop" && r.int("destination.port") == droppedPort)
	}
	if !drop {
		missing = append(missing, "netfilter drop record")
	}
	slices.Sort(missing)
	return missing
}

func (f *flowAgg) closeRecords() []logRecord {
	var out []logRecord
	for _, r := range f.records {
		if r.str("ebpfflow.flow.close_cause") != "" {
			out = append(out, r)
		}
	}
	return out
}

// lookup returns the aggregate or fails, listing records that share a port
// with the expected connection to show what was exported instead.
func lookup(t *testing.T, flows map[flowKey]*flowAgg, k flowKey) *flowAgg {
	t.Helper()
	if f := flows[k]; f != nil {
		t.Logf("%s: %d records, src %d B / %d pkts, dst %d B / %d pkts", k, len(f.records), f.srcBytes, f.srcPkts, f.dstBytes, f.dstPkts)
		return f
	}
	var near []string
	srcPort := k.src[strings.LastIndexByte(k.src, ':'):]
	for fk := range flows {
		if strings.HasSuffix(fk.src, srcPort) || strings.HasSuffix(fk.dst, srcPort) {
			near = append(near, fk.String())
		}
	}
	slices.Sort(near)
	t.Fatalf("no network.flow records for %s; records with port %s: %v", k, srcPort[1:], near)
	return nil
}

// checkCommon checks what every record of a connection must carry: the
// 5-tuple, role, transport, network type and the local pod as resource.
func checkCommon(t *testing.T, f *flowAgg, p *pod, v6 bool) {
	t.Helper()
	netType, localIP := "ipv4", p.IP4.String()
	if v6 {
		netType, localIP = "ipv6", p.IP6.String()
	}
	for i, r := range f.records {
		bad := func(format string, args ...any) {
			t.Errorf("record %d: "+format+"\n  %v", append(append([]any{i}, args...), r)...)
		}
		if got := r.str("network.type"); got != netType {
			bad("network.type = %q, want %q", got, netType)
		}
		if got := r.str("event.name"); got != "network.flow" {
			bad("attribute event.name = %q, want network.flow (mirror of EventName)", got)
		}
		if got := r.res("k8s.pod.uid"); got != p.UID {
			bad("resource k8s.pod.uid = %q, want pod %s's %q", got, p.Name, p.UID)
		}
		if got := r.res("container.id"); got != p.ContainerID {
			bad("resource container.id = %q, want %q", got, p.ContainerID)
		}
		if got := r.res("k8s.pod.ip"); got != localIP {
			bad("resource k8s.pod.ip = %q, want %q", got, localIP)
		}
		if got := r.res("k8s.node.name"); got != nodeName {
			bad("resource k8s.node.name = %q, want %q (from K8S_NODE_NAME)", got, nodeName)
		}
		if got := r.res("service.name"); got == "" || strings.HasPrefix(got, "unknown_service") {
			bad("resource service.name = %q, want the pod's executable", got)
		}
		if r.Time.IsZero() {
			bad("no timestamp")
		}
	}
}

// checkTCPTransfer checks one end of an HTTP download against curl's counts
// and the per-packet header sizes.
func checkTCPTransfer(t *testing.T, flows map[flowKey]*flowAgg, k flowKey, p *pod, c curlResult, v6 bool) *flowAgg {
	t.Helper()
	f := lookup(t, flows, k)
	checkCommon(t, f, p, v6)
	for i, r := range f.records {
		if got := r.str("ebpfflow.flow.verdict"); got != "forwarded" {
			t.Errorf("record %d: ebpfflow.flow.verdict = %q, want forwarded\n  %v", i, got, r)
		}
	}
	closes := f.closeRecords()
	if len(closes) != 1 {
		t.Errorf("want exactly one record with a close cause (the final one), got %d", len(closes))
	}
	for _, r := range closes {
		if got := r.str("ebpfflow.flow.close_cause"); got != "fin" {
			t.Errorf("close_cause = %q, want fin\n  %v", got, r)
		}
		if got := r.str("network.connection.state"); got != "closed" {
			t.Errorf("network.connection.state on the final record = %q, want closed\n  %v", got, r)
		}
	}

	ipHdr := int64(ip4Header)
	if v6 {
		ipHdr = ip6Header
	}
	perPkt := ipHdr + tcpHeaderTS
	mss := int64(vethMTU) - perPkt

	// destination -> source: the HTTP response.
	down := c.download + c.header
	if f.dstBytes < c.download {
		t.Errorf("destination.bytes %d < body size %d", f.dstBytes, c.download)
	}
	if minPkts := (down + mss - 1) / mss; f.dstPkts < minPkts {
		t.Errorf("destination.packets %d < %d (%d response bytes at MSS %d): GSO segments counted as one packet?",
			f.dstPkts, minPkts, down, mss)
	}
	if f.dstPkts != c.serverOutSegs || f.srcPkts != c.serverInSegs {
		t.Errorf("packets: destination %d, source %d; the server's TCP stack sent %d and received %d segments (/proc/net/snmp)",
			f.dstPkts, f.srcPkts, c.serverOutSegs, c.serverInSegs)
	}
	wantDown := down + f.dstPkts*perPkt + synExtra
	checkWithin(t, "destination.bytes", f.dstBytes, wantDown, 0.01,
		fmt.Sprintf("%d body + %d header bytes + %d pkts x %d B + %d (SYN-ACK options)", c.download, c.header, f.dstPkts, perPkt, synExtra))

	// source -> destination: the HTTP request plus ACKs.
	if f.srcPkts < 4 {
		t.Errorf("source.packets %d, want >= 4 (SYN, ACK, request, FIN)", f.srcPkts)
	}
	wantUp := c.request + f.srcPkts*perPkt + synExtra
	checkWithin(t, "source.bytes", f.srcBytes, wantUp, 0.01,
		fmt.Sprintf("%d request bytes + %d pkts x %d B + %d (SYN options)", c.request, f.srcPkts, perPkt, synExtra))
	return f
}

// compareEnds: both ends of a local connection see the same packets.
func compareEnds(t *testing.T, client, server *flowAgg) {
	t.Helper()
	if client == nil || server == nil {
		return
	}
	if client.srcBytes != server.srcBytes || client.srcPkts != server.srcPkts ||
		client.dstBytes != server.dstBytes || client.dstPkts != server.dstPkts {
		t.Errorf("client and server ends disagree: client src %d B/%d p dst %d B/%d p; server src %d B/%d p dst %d B/%d p (diff src %+d B/%+d p, dst %+d B/%+d p)",
			client.srcBytes, client.srcPkts, client.dstBytes, client.dstPkts,
			server.srcBytes, server.srcPkts, server.dstBytes, server.dstPkts,
			server.srcBytes-client.srcBytes, server.srcPkts-client.srcPkts,
			server.dstBytes-client.dstBytes, server.dstPkts-client.dstPkts)
	}
}

func checkWithin(t *testing.T, what string, got, want int64, tol float64, how string) {
	t.Helper()
	diff := float64(got-want) / float64(want)
	if diff < -tol || diff > tol {
		t.Errorf("%s = %d, want %d ± %.0f%% (%s); off by %+d (%+.2f%%)", what, got, want, tol*100, how, got-want, diff*100)
	} else {
		t.Logf("%s = %d, expected %d (%s): off by %+d", what, got, want, how, got-want)
	}
}

func checkUDP(t *testing.T, flows map[flowKey]*flowAgg, k flowKey, p *pod) {
	t.Helper()
	f := lookup(t, flows, k)
	checkCommon(t, f, p, false)
	want := int64(udpCount * (udpPayload + ip4Header + udpHeader))
	if f.srcBytes != want || f.srcPkts != udpCount {
		t.Errorf("source bytes/packets = %d/%d, want exactly %d/%d (%d datagrams x (%d payload + 28 header))",
			f.srcBytes, f.srcPkts, want, udpCount, udpCount, udpPayload)
	}
	if f.dstBytes != 0 || f.dstPkts != 0 {
		t.Errorf("destination bytes/packets = %d/%d, want 0/0 (the sink never answers)", f.dstBytes, f.dstPkts)
	}
	for _, r := range f.records {
		if cc := r.str("ebpfflow.flow.close_cause"); cc != "" {
			t.Errorf("UDP record has close_cause %q\n  %v", cc, r)
		}
		if got := r.str("ebpfflow.flow.verdict"); got != "forwarded" {
			t.Errorf("verdict = %q, want forwarded\n  %v", got, r)
		}
	}
}

func checkRefused(t *testing.T, flows map[flowKey]*flowAgg, recs []logRecord, k flowKey, a *pod) {
	t.Helper()
	f := lookup(t, flows, k)
	checkCommon(t, f, a, false)
	closes := f.closeRecords()
	if len(closes) != 1 {
		t.Fatalf("want exactly one final record, got %d", len(closes))
	}
	if got := closes[0].str("ebpfflow.flow.close_cause"); got != "refused" {
		t.Errorf("close_cause = %q, want refused\n  %v", got, closes[0])
	}
	// SYN (IP 20 + TCP 40) out, RST (IP 20 + TCP 20) back.
	if f.srcPkts < 1 || f.srcBytes != f.srcPkts*(ip4Header+tcpHeaderTS+synExtra) {
		t.Errorf("source %d B / %d pkts, want SYNs of %d B each", f.srcBytes, f.srcPkts, ip4Header+tcpHeaderTS+synExtra)
	}
	if f.dstPkts != 1 || f.dstBytes != 40 {
		t.Errorf("destination %d B / %d pkts, want the single 40-byte RST", f.dstBytes, f.dstPkts)
	}
	// The refused SYN itself is freed in pod b with reason NO_SOCKET.
	var n int64
	for _, r := range recs {
		if r.Event == "network.drop" && r.int("destination.port") == closedPort && r.int("source.port") == portRefused {
			n += r.int("ebpfflow.drop.count")
			if got := r.str("ebpfflow.drop.reason"); got != "NO_SOCKET" {
				t.Errorf("drop of the refused SYN: reason %q, want NO_SOCKET\n  %v", got, r)
			}
		}
	}
	if n != f.srcPkts {
		t.Errorf("NO_SOCKET drops for the refused connect = %d, want %d (one per SYN)", n, f.srcPkts)
	}
}

func checkNetfilterDrop(t *testing.T, flows map[flowKey]*flowAgg, recs []logRecord, k flowKey, a *pod) {
	t.Helper()
	f := lookup(t, flows, k)
	checkCommon(t, f, a, false)
	var dropped bool
	for _, r := range f.records {
		dropped = dropped || r.str("ebpfflow.flow.verdict") == "dropped"
	}
	if !dropped {
		t.Errorf("no record of the flow has ebpfflow.flow.verdict=dropped")
	}
	closes := f.closeRecords()
	if len(closes) != 1 {
		t.Errorf("want exactly one final record, got %d", len(closes))
	} else if got := closes[0].str("ebpfflow.flow.close_cause"); got != "timeout" {
		t.Errorf("close_cause = %q, want timeout (curl gave up in SYN_SENT)\n  %v", got, closes[0])
	}
	if f.srcPkts < 2 || f.srcBytes != f.srcPkts*(ip4Header+tcpHeaderTS+synExtra) {
		t.Errorf("source %d B / %d pkts, want >= 2 SYNs (retransmitted) of %d B", f.srcBytes, f.srcPkts, ip4Header+tcpHeaderTS+synExtra)
	}
	if f.dstPkts != 0 {
		t.Errorf("destination packets = %d, want 0 (every SYN was dropped)", f.dstPkts)
	}

	var count int64
	var matched []logRecord
	for _, r := range recs {
		if r.Event != "network.drop" || r.int("destination.port") != droppedPort {
			continue
		}
		matched = append(matched, r)
		count += r.int("ebpfflow.drop.count")
		checks := []struct{ key, want string }{
			{"ebpfflow.drop.reason", "NETFILTER_DROP"},
			{"network.transport", "tcp"},
			{"network.type", "ipv4"},
			{"source.address", a.IP4.String()},
			{"destination.address", "10.202.0.20"},
			{"network.interface.name", "eth0"},
			{"event.name", "network.drop"},
		}
		for _, c := range checks {
			if got := r.str(c.key); got != c.want {
				t.Errorf("drop record: %s = %q, want %q\n  %v", c.key, got, c.want, r)
			}
		}
		if got := r.int("source.port"); got != portDropped {
			t.Errorf("drop record: source.port = %d, want %d", got, portDropped)
		}
		// xtables (iptables-legacy) returns NF_DROP and nf_hook_slow frees the
		// packet; nf_tables (iptables-nft, Debian's default) frees it itself
		// in nft_do_chain with the same reason on recent kernels.
		if loc := r.str("ebpfflow.drop.location"); loc != "nf_hook_slow" && loc != "nft_do_chain" {
			t.Errorf("drop record: ebpfflow.drop.location = %q, want nf_hook_slow or nft_do_chain\n  %v", loc, r)
		}
	}
	if len(matched) == 0 {
		t.Fatalf("no network.drop record for destination port %d", droppedPort)
	}
	if count != f.srcPkts {
		t.Errorf("sum of ebpfflow.drop.count = %d, want %d (every SYN the client sent)", count, f.srcPkts)
	}
}

// dumpTestRecords writes the records that involve the test pods to a file
// next to the raw output, for reading after a failure.
func dumpTestRecords(t *testing.T, dir string, recs []logRecord) {
	var b strings.Builder
	for _, r := range recs {
		s := r.String()
		if strings.Contains(s, "10.202.0.") || strings.Contains(s, "fd00:202::") {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	_ = os.WriteFile(filepath.Join(dir, "test-records.txt"), []byte(b.String()), 0o644)
}
