//go:build e2e

package e2e

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/ebpfflow/ebpfflow/internal/semconv"
	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// Ports of pod b's servers in the HTTP test (client pod a, net 10.209.0.0/24).
const (
	httpNet        = 209
	nginxPort      = 8080
	goHTTPPort     = 8081
	grpcPort       = 50051
	bigFileSize    = 10 << 20
	plantedAuth    = "planted-authz-51d7"
	plantedCookie  = "planted-cookie-0c44"
	plantedQuery   = "planted-query-a9e2"
	traceparentTID = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceparentPID = "00f067aa0ba902b7"
)

// Pinned local ports of the curl runs, so each span is matched to the run
// that made it.
const (
	portKeepAlive = 43100 + iota
	portHead
	portBig
	portSecret
	portTraceparent
	portChunked
	portContinue
)

// httpSpan is one exported span with what the checks compare.
type httpSpan struct {
	span
	TraceID, SpanID, Parent string
	Start, End              time.Time
	StatusMsg               string
}

func (s httpSpan) str(k string) string { v, _ := s.Attrs[k].(string); return v }
func (s httpSpan) int(k string) int64  { return attrInt(s.Attrs[k]) }
func (s httpSpan) res(k string) string { v, _ := s.Resource[k].(string); return v }
func (s httpSpan) String() string {
	return fmt.Sprintf("%s %v trace=%s span=%s parent=%s %s %v", s.Name, s.Kind, s.TraceID, s.SpanID, s.Parent, sortedMap(s.Resource), sortedMap(s.Attrs))
}

func readHTTPSpans(path string) ([]httpSpan, error) {
	lines, err := completeLines(path)
	if err != nil {
		return nil, err
	}
	var out []httpSpan
	var u ptrace.JSONUnmarshaler
	for n, line := range lines {
		td, err := u.UnmarshalTraces(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n+1, err)
		}
		for i := range td.ResourceSpans().Len() {
			rs := td.ResourceSpans().At(i)
			res := rs.Resource().Attributes().AsRaw()
			for j := range rs.ScopeSpans().Len() {
				sps := rs.ScopeSpans().At(j).Spans()
				for k := range sps.Len() {
					sp := sps.At(k)
					if _, ok := sp.Attributes().Get(semconv.AttrHTTPMethod); !ok {
						continue // DNS
					}
					out = append(out, httpSpan{
						span:    span{Name: sp.Name(), Kind: sp.Kind(), Status: sp.Status().Code(), Resource: res, Attrs: sp.Attributes().AsRaw()},
						TraceID: hex.EncodeToString(func() []byte { id := sp.TraceID(); return id[:] }()),
						SpanID:  hex.EncodeToString(func() []byte { id := sp.SpanID(); return id[:] }()),
						Parent: func() string {
							if sp.ParentSpanID().IsEmpty() {
								return ""
							}
							id := sp.ParentSpanID()
							return hex.EncodeToString(id[:])
						}(),
						Start: sp.StartTimestamp().AsTime(), End: sp.EndTimestamp().AsTime(), StatusMsg: sp.Status().Message(),
					})
				}
			}
		}
	}
	return out, nil
}

// curlRun is one transfer as curl reports it (-w): the oracle.
type curlRun struct {
	code, size, localPort, remotePort int
	method, path                      string
}

// curlHTTP runs curl in pod a with a pinned local port, options opts and
// the urls, and returns one curlRun per URL (curl reuses the connection).
func curlHTTP(t *testing.T, a *pod, port int, method string, opts []string, urls ...string) []curlRun {
	t.Helper()
	argv := append([]string{"-sS", "-g", "--local-port", strconv.Itoa(port), "--max-time", "20",
		"-w", "%{http_code} %{size_download} %{local_port} %{remote_port} %{url_effective}\\n"}, opts...)
	for _, u := range urls {
		argv = append(argv, "-o", "/dev/null", u)
	}
	out, rc := a.Exec(t, 30*time.Second, "curl", argv...)
	if rc != 0 {
		t.Fatalf("curl %v %v: rc %d", opts, urls, rc)
	}
	var runs []curlRun
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var r curlRun
		var u string
		if _, err := fmt.Sscan(line, &r.code, &r.size, &r.localPort, &r.remotePort, &u); err != nil {
			t.Fatalf("curl -w line %q: %v", line, err)
		}
		r.method = method
		_, rest, _ := strings.Cut(strings.TrimPrefix(u, "http://"), "/")
		r.path, _, _ = strings.Cut("/"+rest, "?")
		runs = append(runs, r)
	}
	return runs
}

// TestHTTP runs real HTTP servers in pod b (nginx; a Go net/http server
// speaking HTTP/1.1 and h2c; a gRPC server) and real clients in pod a
// (curl, Go's client over HTTP/1.1 and h2c, a gRPC client, wrk) with the
// built collector running, and checks the spans, metrics and flow records
// against what the clients themselves report and against tshark's
// dissection of pod b's traffic: one SERVER span per request served and
// one CLIENT span per request sent, with their fields; the two spans of a
// request in one trace; a W3C traceparent honoured; every request wrk
// completed a span or a counted loss; secrets never exported.
func TestHTTP(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.RequireTools(t, "nginx", "curl", "wrk", "dumpcap", "tshark")
	bin := collectorBinary(t)
	dir := outDir(t)
	a, b := newPodPairNet(t, "ha", "hb", httpNet)
	base := func(port int) string { return fmt.Sprintf("http://%s:%d", b.IP4, port) }

	// Pod b's servers.
	www := filepath.Join(dir, "www")
	must(t, os.MkdirAll(www, 0o755))
	must(t, os.WriteFile(filepath.Join(www, "index.html"), []byte("<html>ebpfflow http test</html>\n"), 0o644))
	writeRandom(t, filepath.Join(www, "big"), bigFileSize)
	b.Start(t, filepath.Join(dir, "nginx.log"), "nginx", "-p", filepath.Join(dir, "nginx"), "-e", filepath.Join(dir, "nginx", "error.log"), "-c", writeHTTPNginxConf(t, dir, www, b))
	b.Start(t, filepath.Join(dir, "httpserver.log"), "env", helperEnv+"=httpserver", os.Args[0], fmt.Sprintf("%s:%d", b.IP4, goHTTPPort))
	b.Start(t, filepath.Join(dir, "grpcserver.log"), "env", helperEnv+"=grpcserver", os.Args[0], fmt.Sprintf("%s:%d", b.IP4, grpcPort))
	for _, p := range []int{nginxPort, goHTTPPort, grpcPort} {
		b.WaitListening(t, "tcp", p)
	}
	pcap := testkit.StartPcap(t, testkit.Netns(b.Netns), "eth0", fmt.Sprintf("tcp port %d", nginxPort), dir)
	pcap.Options = []string{"http.desegment_body:FALSE"} // a response's head in its first segment
	col := startCollector(t, bin, dir)
	time.Sleep(500 * time.Millisecond)

	// The clients, each run with what it reports.
	var curls []curlRun
	// nginx closes the connection after a 500: that request goes last, so
	// the four share one connection (a second one from the pinned port
	// could find it still taken).
	curls = append(curls, curlHTTP(t, a, portKeepAlive, "GET", nil, base(nginxPort)+"/index.html", base(nginxPort)+"/missing",
		base(nginxPort)+"/dead", base(nginxPort)+"/fail")...)
	curls = append(curls, curlHTTP(t, a, portHead, "HEAD", []string{"-I"}, base(nginxPort)+"/index.html")...)
	curls = append(curls, curlHTTP(t, a, portBig, "GET", nil, base(nginxPort)+"/big")...)
	curls = append(curls, curlHTTP(t, a, portSecret, "GET", []string{"-H", "Authorization: Bearer " + plantedAuth, "-H", "Cookie: k=" + plantedCookie},
		base(nginxPort)+"/index.html?token="+plantedQuery)...)
	curls = append(curls, curlHTTP(t, a, portTraceparent, "GET", []string{"-H", "traceparent: 00-" + traceparentTID + "-" + traceparentPID + "-01"}, base(nginxPort)+"/index.html")...)
	upload := filepath.Join(dir, "upload")
	writeRandom(t, upload, 100_000)
	curls = append(curls, curlHTTP(t, a, portChunked, "POST", []string{"-H", "Transfer-Encoding: chunked", "--data-binary", "@" + upload}, base(goHTTPPort)+"/echo")...)
	curls = append(curls, curlHTTP(t, a, portContinue, "POST", []string{"-H", "Expect: 100-continue", "--data-binary", "@" + upload}, base(goHTTPPort)+"/echo")...)
	for _, r := range curls {
		if r.code == 0 {
			t.Fatalf("curl got no response: %+v", r)
		}
	}
	nginxRequests := 0
	for _, r := range curls {
		if r.remotePort == nginxPort {
			nginxRequests++
		}
	}
	pcap.WaitFor(t, curlWire, 2*nginxRequests, 20*time.Second) // each request and its response
	pcap.Stop(t)                                               // the dissection is of curl's requests
	h1Out, rc := a.Exec(t, 30*time.Second, "env", helperEnv+"=httpclient", os.Args[0], base(goHTTPPort), "h1", "3")
	if rc != 0 {
		t.Fatalf("Go HTTP/1.1 client: rc %d", rc)
	}
	h2Out, rc := a.Exec(t, 30*time.Second, "env", helperEnv+"=httpclient", os.Args[0], base(goHTTPPort), "h2c", "3")
	if rc != 0 {
		t.Fatalf("Go h2c client: rc %d", rc)
	}
	grpcOut, rc := a.Exec(t, 30*time.Second, "env", helperEnv+"=grpcclient", os.Args[0], fmt.Sprintf("%s:%d", b.IP4, grpcPort))
	if rc != 0 {
		t.Fatalf("gRPC client: rc %d\n%s", rc, grpcOut)
	}
	lostBefore := sumSelfMetric(t, col, "otelcol_ebpfflow_events_lost", `probe="http"`)
	wrkOut, rc := a.Exec(t, 60*time.Second, "wrk", "-t1", "-c4", "-d2s", base(nginxPort)+"/index.html")
	if rc != 0 {
		t.Fatalf("wrk: rc %d\n%s", rc, wrkOut)
	}
	wrkDone, wrkRequests := time.Now(), wrkCount(t, wrkOut)

	// Every span is out a second (the span interval) after its response.
	want := 2 * (len(curls) + 3*3 + 1 + 3*3 + 3 + wrkRequests)
	var spans []httpSpan
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		spans, err = readHTTPSpans(col.tracesPath)
		must(t, err)
		if len(spans) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // flows and metrics of the last interval
	lostAfter := sumSelfMetric(t, col, "otelcol_ebpfflow_events_lost", `probe="http"`)
	self, selfErr := col.ScrapeSelfMetrics()
	must(t, os.WriteFile(filepath.Join(dir, "self-telemetry.txt"), []byte(self), 0o644))
	col.Stop(t)
	spans, err := readHTTPSpans(col.tracesPath)
	must(t, err)
	t.Logf("%d HTTP spans (%d expected if nothing was lost); wrk completed %d requests", len(spans), want, wrkRequests)
	var dump strings.Builder
	for _, s := range spans {
		dump.WriteString(s.String() + "\n")
	}
	must(t, os.WriteFile(filepath.Join(dir, "http-spans.txt"), []byte(dump.String()), 0o644))

	t.Run("curl", func(t *testing.T) {
		wire := tsharkHTTP(t, pcap)
		for _, port := range []int{portKeepAlive, portHead, portBig, portSecret, portTraceparent, portChunked, portContinue} {
			var runs []curlRun
			for _, r := range curls {
				if r.localPort == port {
					runs = append(runs, r)
				}
			}
			srv, cli := spansOfClientPort(spans, a, port)
			if len(srv) != len(runs) || len(cli) != len(runs) {
				t.Errorf("port %d: %d server and %d client spans for %d requests curl made", port, len(srv), len(cli), len(runs))
				continue
			}
			for i, r := range runs {
				s, c := srv[i], cli[i]
				checkHTTPSpan(t, s, r, a, b, "server")
				checkHTTPSpan(t, c, r, a, b, "client")
				checkJoined(t, c, s, port == portTraceparent)
				if r.remotePort == nginxPort {
					if w, ok := wire[fmt.Sprintf("%d %d", port, i)]; !ok || w.method != r.method || w.path != r.path || w.code != r.code {
						t.Errorf("port %d request %d: tshark saw %+v, curl %+v", port, i, w, r)
					}
				}
			}
		}
	})

	t.Run("go_http1", func(t *testing.T) {
		checkGoClient(t, spans, h1Out, "1.1", a, b)
	})
	t.Run("go_h2c", func(t *testing.T) {
		checkGoClient(t, spans, h2Out, "2", a, b)
	})
	t.Run("grpc", func(t *testing.T) { checkGRPC(t, spans, grpcOut) })

	t.Run("wrk", func(t *testing.T) {
		// wrk sends no User-Agent: its requests are the only ones without.
		var srv, cli int
		for _, s := range spans {
			if s.str(semconv.AttrUserAgent) != "" || s.int(semconv.AttrServerPort) != nginxPort || s.int(semconv.AttrHTTPStatus) != 200 ||
				s.End.After(wrkDone.Add(time.Second)) {
				continue
			}
			switch {
			case s.Kind == ptrace.SpanKindClient && s.res(semconv.AttrPodUID) == a.UID:
				cli++
			case s.Kind == ptrace.SpanKindServer && s.res(semconv.AttrPodUID) == b.UID:
				srv++
			}
		}
		lost := int(lostAfter - lostBefore)
		t.Logf("wrk: %d requests completed; %d client spans, %d server spans, %d losses counted meanwhile", wrkRequests, cli, srv, lost)
		// wrk counts the responses it read; a request in flight when it
		// stopped may be a span it did not count (4 connections).
		if cli+lost < wrkRequests || srv+lost < wrkRequests {
			t.Errorf("%d requests wrk completed, %d client and %d server spans, %d losses counted", wrkRequests, cli, srv, lost)
		}
		if float64(min(cli, srv)) < 0.99*float64(wrkRequests) {
			t.Errorf("span completeness %d client, %d server of %d requests: under 99%%", cli, srv, wrkRequests)
		}
		if cli > wrkRequests+4 || srv > wrkRequests+4 {
			t.Errorf("more spans (%d client, %d server) than wrk's %d requests and its 4 connections", cli, srv, wrkRequests)
		}
	})

	t.Run("secrets", func(t *testing.T) {
		entries, err := os.ReadDir(dir)
		must(t, err)
		for _, e := range entries {
			if e.IsDir() || !slices.Contains([]string{".json", ".log"}, filepath.Ext(e.Name())) || strings.HasPrefix(e.Name(), "nginx") ||
				strings.HasSuffix(e.Name(), "server.log") {
				continue // the servers' own logs are theirs
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			must(t, err)
			for _, secret := range []string{plantedAuth, plantedCookie, plantedQuery, plantedSetCookie} {
				if bytes.Contains(data, []byte(secret)) {
					t.Errorf("%s contains the planted secret %s", e.Name(), secret)
				}
			}
		}
	})

	t.Run("flows", func(t *testing.T) {
		recs, err := readLogs(col.logsPath)
		must(t, err)
		for _, side := range []string{"client", "server"} {
			found := false
			for _, r := range recs {
				if r.Event == semconv.EventFlow && r.int(semconv.AttrSrcPort) == portKeepAlive && r.str(semconv.AttrFlowLocalRole) == side {
					found = true
					if r.str(semconv.AttrProtocolName) != semconv.ProtocolHTTP && r.int(semconv.AttrFlowSrcBytes) > 0 {
						t.Errorf("%s flow record of the keep-alive connection without network.protocol.name: %v", side, r)
					}
				}
			}
			if !found {
				t.Errorf("no %s flow record of the keep-alive connection", side)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		points, err := readMetrics(col.metricsPath)
		must(t, err)
		var server, client float64
		for _, p := range points {
			if p.Metric != semconv.MetricHTTPServerDur && p.Metric != semconv.MetricHTTPClientDur {
				continue
			}
			for _, k := range []string{semconv.AttrURLPath, semconv.AttrClientAddr, semconv.AttrPeerAddr, semconv.AttrNetworkPeerPort, semconv.AttrUserAgent} {
				if _, ok := p.Attrs[k]; ok {
					t.Errorf("%s carries %s", p.Metric, k)
				}
			}
			if p.Resource[semconv.AttrPodUID] == b.UID && p.Metric == semconv.MetricHTTPServerDur && p.Attrs[semconv.AttrHTTPMethod] == "GET" &&
				attrInt(p.Attrs[semconv.AttrHTTPStatus]) == 404 && attrInt(p.Attrs[semconv.AttrServerPort]) == nginxPort {
				server = max(server, p.Value)
			}
			if p.Resource[semconv.AttrPodUID] == a.UID && p.Metric == semconv.MetricHTTPClientDur && p.Attrs[semconv.AttrErrorType] == "502" {
				client = max(client, p.Value)
			}
		}
		if server != 1 || client != 1 {
			t.Errorf("http.server.request.duration count of pod b's GET 404: %v, http.client.request.duration count of pod a's 502: %v; want 1 and 1", server, client)
		}
	})

	t.Run("self_telemetry", func(t *testing.T) {
		if selfErr != nil {
			t.Fatal(selfErr)
		}
		for _, want := range []string{`otelcol_ebpfflow_probe_up{probe="http"} 1`, `otelcol_ebpfflow_http_exchanges{outcome="ok"}`} {
			if !strings.Contains(self, want) {
				t.Errorf("self-telemetry lacks %s", want)
			}
		}
	})
}

// spansOfClientPort returns the server and client spans of the requests
// made from a's local port, in request order.
func spansOfClientPort(spans []httpSpan, a *pod, port int) (server, client []httpSpan) {
	for _, s := range spans {
		if s.Kind == ptrace.SpanKindServer && s.str(semconv.AttrClientAddr) == a.IP4.String() && s.int(semconv.AttrNetworkPeerPort) == int64(port) {
			server = append(server, s)
		}
	}
	// A client span carries the server as its peer; it joins its server
	// span by trace: the trace ids both ends derive.
	for _, sv := range server {
		for _, s := range spans {
			if s.Kind == ptrace.SpanKindClient && s.TraceID == sv.TraceID && s.res(semconv.AttrPodUID) == a.UID {
				client = append(client, s)
				break
			}
		}
	}
	slices.SortFunc(server, func(x, y httpSpan) int { return x.Start.Compare(y.Start) })
	slices.SortFunc(client, func(x, y httpSpan) int { return x.Start.Compare(y.Start) })
	return server, client
}

// checkHTTPSpan compares a span of one curl transfer with what curl
// reported and with the pods it ran between.
func checkHTTPSpan(t *testing.T, s httpSpan, r curlRun, a, b *pod, side string) {
	t.Helper()
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s span of %s %s (port %d): %s\n%v", side, r.method, r.path, r.localPort, fmt.Sprintf(format, args...), s)
	}
	local := b
	if side == "client" {
		local = a
	}
	if s.res(semconv.AttrPodUID) != local.UID || s.res(semconv.AttrContainerID) != local.ContainerID || s.res(semconv.AttrPodIP) != local.IP4.String() {
		errorf("resource %v, want pod %s container %s at %s", s.Resource, local.UID, local.ContainerID[:12], local.IP4)
	}
	if s.str(semconv.AttrHTTPMethod) != r.method || s.Name != r.method || s.str(semconv.AttrURLPath) != r.path || s.str(semconv.AttrURLScheme) != "http" {
		errorf("method/name/path/scheme, want %s %s http", r.method, r.path)
	}
	if s.int(semconv.AttrHTTPStatus) != int64(r.code) {
		errorf("status %d, curl got %d", s.int(semconv.AttrHTTPStatus), r.code)
	}
	if s.str(semconv.AttrServerAddr) != b.IP4.String() || s.int(semconv.AttrServerPort) != int64(r.remotePort) {
		errorf("server %s:%d, want the Host %s:%d", s.str(semconv.AttrServerAddr), s.int(semconv.AttrServerPort), b.IP4, r.remotePort)
	}
	if s.str(semconv.AttrProtocolVersion) != "1.1" || !strings.HasPrefix(s.str(semconv.AttrUserAgent), "curl/") {
		errorf("protocol version %q, user agent %q", s.str(semconv.AttrProtocolVersion), s.str(semconv.AttrUserAgent))
	}
	peer, peerPort := b.IP4.String(), r.remotePort
	if side == "server" {
		peer, peerPort = a.IP4.String(), r.localPort
		if s.str(semconv.AttrClientAddr) != a.IP4.String() {
			errorf("client.address %q", s.str(semconv.AttrClientAddr))
		}
	}
	if s.str(semconv.AttrPeerAddr) != peer || s.int(semconv.AttrNetworkPeerPort) != int64(peerPort) {
		errorf("peer %s:%d, want %s:%d", s.str(semconv.AttrPeerAddr), s.int(semconv.AttrNetworkPeerPort), peer, peerPort)
	}
	if r.method != "HEAD" && s.int(semconv.AttrHTTPRespBodySize) != int64(r.size) {
		errorf("response body %d bytes, curl downloaded %d", s.int(semconv.AttrHTTPRespBodySize), r.size)
	}
	if r.method == "POST" && s.int(semconv.AttrHTTPReqBodySize) != 100_000 {
		errorf("request body %d bytes, curl uploaded 100000", s.int(semconv.AttrHTTPReqBodySize))
	}
	isErr := r.code >= 500 || (side == "client" && r.code >= 400)
	if (s.Status == ptrace.StatusCodeError) != isErr || (isErr && s.str(semconv.AttrErrorType) != strconv.Itoa(r.code)) {
		errorf("status %v error.type %q for HTTP %d", s.Status, s.str(semconv.AttrErrorType), r.code)
	}
	if d := s.End.Sub(s.Start); d <= 0 || d > 20*time.Second {
		errorf("duration %v", d)
	}
}

// checkJoined: the client and server spans of one request share a trace;
// without a traceparent the client span is its root and the server span
// its child, with one both are children of its parent. The server's span
// lies within the client's (one clock; a call completing on two CPUs may
// be stamped a few microseconds apart).
func checkJoined(t *testing.T, c, s httpSpan, traceparent bool) {
	t.Helper()
	switch {
	case traceparent && (c.TraceID != traceparentTID || s.TraceID != traceparentTID || c.Parent != traceparentPID || s.Parent != traceparentPID):
		t.Errorf("traceparent not honoured:\n client %v\n server %v", c, s)
	case !traceparent && (c.TraceID != s.TraceID || c.Parent != "" || s.Parent != c.SpanID):
		t.Errorf("client and server spans not joined:\n client %v\n server %v", c, s)
	}
	const slack = time.Millisecond
	if s.Start.Before(c.Start.Add(-slack)) || s.End.After(c.End.Add(slack)) {
		t.Errorf("server span %v..%v not within client span %v..%v", s.Start, s.End, c.Start, c.End)
	}
}

// curlWire is the display filter of curl's HTTP messages in the capture.
var curlWire = fmt.Sprintf("(http.request || http.response) && tcp.port >= %d && tcp.port <= %d", portKeepAlive, portContinue)

// tsharkHTTP dissects the nginx traffic of the capture: per client port,
// the n-th request's method and URI with its response code, keyed "<port> <n>".
func tsharkHTTP(t *testing.T, p *testkit.Pcap) map[string]curlRun {
	t.Helper()
	out := map[string]curlRun{}
	reqs := map[string][]curlRun{}
	for _, row := range p.Fields(t, curlWire, "tcp.srcport", "tcp.dstport", "http.request.method", "http.request.uri", "http.response.code") {
		if len(row) < 5 {
			continue
		}
		if row[2] != "" {
			uri, _, _ := strings.Cut(row[3], "?")
			reqs[row[0]] = append(reqs[row[0]], curlRun{method: row[2], path: uri})
			continue
		}
		client := row[1]
		code, _ := strconv.Atoi(row[4])
		for i := range reqs[client] {
			if reqs[client][i].code == 0 {
				reqs[client][i].code = code
				break
			}
		}
	}
	for port, rs := range reqs {
		for i, r := range rs {
			out[fmt.Sprintf("%s %d", port, i)] = r
		}
	}
	return out
}

// checkGoClient compares the spans of the Go client's requests with its
// own report ("<path> <status> <local port>" per request).
func checkGoClient(t *testing.T, spans []httpSpan, out, version string, a, b *pod) {
	t.Helper()
	type req struct {
		path         string
		code, port   int
		server, clie int
	}
	var reqs []req
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var r req
		if _, err := fmt.Sscan(line, &r.path, &r.code, &r.port); err != nil {
			t.Fatalf("client line %q: %v", line, err)
		}
		reqs = append(reqs, r)
	}
	count := map[string]int{} // "<side> <path> <code>"
	for _, s := range spans {
		if s.str(semconv.AttrProtocolVersion) != version || s.int(semconv.AttrServerPort) != goHTTPPort || s.str(semconv.AttrUserAgent) == "" ||
			strings.HasPrefix(s.str(semconv.AttrUserAgent), "curl/") {
			continue
		}
		side := "client"
		local := a
		if s.Kind == ptrace.SpanKindServer {
			side, local = "server", b
		}
		if s.res(semconv.AttrPodUID) != local.UID || s.res(semconv.AttrContainerID) != local.ContainerID {
			t.Errorf("%s span resource %v", side, s.Resource)
		}
		if s.Kind == ptrace.SpanKindServer && !slices.ContainsFunc(reqs, func(r req) bool { return int64(r.port) == s.int(semconv.AttrNetworkPeerPort) }) {
			t.Errorf("server span from port %d, which the client did not use: %v", s.int(semconv.AttrNetworkPeerPort), s)
		}
		count[fmt.Sprintf("%s %s %d", side, s.str(semconv.AttrURLPath), s.int(semconv.AttrHTTPStatus))]++
	}
	want := map[string]int{}
	for _, r := range reqs {
		want[fmt.Sprintf("server %s %d", r.path, r.code)]++
		want[fmt.Sprintf("client %s %d", r.path, r.code)]++
	}
	if fmt.Sprint(sortedMapInt(count)) != fmt.Sprint(sortedMapInt(want)) {
		t.Errorf("spans by side, path and status %v, want %v (the client's own report)", sortedMapInt(count), sortedMapInt(want))
	}
}

func sortedMapInt(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(out)
	return out
}

// checkGRPC compares the gRPC spans with the client's report ("<method>
// <code> <messages>"): one span per call on each side, rpc.* set, the
// error status on Fail.
func checkGRPC(t *testing.T, spans []httpSpan, out string) {
	t.Helper()
	calls := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var m string
		var code, n int
		if _, err := fmt.Sscan(line, &m, &code, &n); err != nil {
			t.Fatalf("gRPC client line %q: %v", line, err)
		}
		calls[m] = code
	}
	for method, code := range calls {
		for _, kind := range []ptrace.SpanKind{ptrace.SpanKindServer, ptrace.SpanKindClient} {
			var got []httpSpan
			for _, s := range spans {
				if s.Kind == kind && s.Name == "ebpfflow.test.Echo/"+method {
					got = append(got, s)
				}
			}
			if len(got) != 1 {
				t.Errorf("%v spans of %s: %d, want 1", kind, method, len(got))
				continue
			}
			s := got[0]
			if s.str(semconv.AttrRPCSystem) != "grpc" || s.str(semconv.AttrRPCService) != "ebpfflow.test.Echo" || s.str(semconv.AttrRPCMethod) != method ||
				s.int(semconv.AttrRPCGRPCStatus) != int64(code) || s.str(semconv.AttrProtocolVersion) != "2" || s.int(semconv.AttrHTTPStatus) != 200 {
				t.Errorf("%v span of %s (client got code %d): %v", kind, method, code, s)
			}
			if (s.Status == ptrace.StatusCodeError) != (code != 0) {
				t.Errorf("%v span of %s: status %v for gRPC code %d", kind, method, s.Status, code)
			}
		}
	}
	if len(calls) != 3 {
		t.Errorf("the gRPC client reported %v", calls)
	}
}

// sumSelfMetric sums every series of a self-telemetry metric whose labels
// contain label.
func sumSelfMetric(t *testing.T, c *collector, name, label string) float64 {
	t.Helper()
	body, err := c.ScrapeSelfMetrics()
	must(t, err)
	var sum float64
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, label) {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				sum += v
			}
		}
	}
	return sum
}

var wrkRequestsRe = regexp.MustCompile(`(?m)^\s*(\d+) requests in`)

func wrkCount(t testing.TB, out string) int {
	t.Helper()
	m := wrkRequestsRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("wrk output without a request count:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// writeHTTPNginxConf: static files, a 404, `return 500`, a proxy to a
// port nothing listens on (502), keep-alive without a request limit.
func writeHTTPNginxConf(t testing.TB, dir, www string, b *pod) string {
	t.Helper()
	prefix := filepath.Join(dir, "nginx")
	must(t, os.MkdirAll(prefix, 0o755))
	conf := fmt.Sprintf(`daemon off;
user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
	access_log off;
	sendfile on;
	keepalive_requests 1000000;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	types { text/html html; }
	default_type application/octet-stream;
	server {
		listen %[2]s:%[3]d;
		root %[4]s;
		location = /fail { return 500; }
		location = /dead { proxy_pass http://127.0.0.1:9; }
	}
}
`, prefix, b.IP4, nginxPort, www)
	path := filepath.Join(prefix, "nginx.conf")
	must(t, os.WriteFile(path, []byte(conf), 0o644))
	return path
}
