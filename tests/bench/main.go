// Command bench prints ebpfflow's performance figures as ratios to their
// targets (`make bench`, as root):
//
//   - in-kernel cost per packet of each probe: the probes' Go benchmarks named
//     Benchmark*Kernel (real events, BPF run-time stats), and the live BPF run-time stats
//     (kernel.bpf_stats_enabled) of the collector's own programs under load;
//   - user-space events decoded per second per core: the decoder/flow-table
//     benchmarks, run with GOMAXPROCS=1;
//   - collector RSS with 10k active flows: the built collector with UDP flows
//     held open on loopback (each connection is two local flows: client and
//     server socket);
//   - the side-by-side load (BenchmarkLoad, alone with `make bench-load`):
//     nginx and wrk in two pods, alternating runs without and with the
//     collector, medians: throughput ratio, in-kernel ns per packet of every
//     program, kernel + user CPU per 1k requests, RSS; at a few hot
//     connections, at 10k flows and along a slope up to 100k flows. The
//     BPF figures are printed raw and net of the run-time statistics' own
//     cost (an empty program measured in the same rounds), and the machine
//     CPU the collector adds is measured with statistics off.
//
// Targets: <= 150 ns/packet for the packet path, >= 200k events/s/core,
// RSS <= 80 MB at 10k flows, throughput with the collector >= 0.98 of
// without, <= 0.6 ms CPU per 1k requests, 10k flows <= 1.5x the per-packet
// cost of a few hot ones.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	targetNsPerPacket  = 150.0
	targetEventsPerSec = 200_000.0
	targetDNSQueries   = 50_000.0 // DNS lookups/s/core the pipeline keeps up with
	targetPoints       = 0.0      // anomaly points/s/core: informational
	targetSeriesBytes  = 8192.0   // anomaly detector state per series
	targetRSSMB        = 80.0
)

func main() {
	collector := flag.String("collector", "distribution/_build/otelcol-ebpfflow", "built collector binary")
	flows := flag.Int("flows", 10_000, "active flows for the RSS measurement")
	hold := flag.Duration("hold", 20*time.Second, "how long the flows are held before RSS is read")
	skipGo := flag.Bool("skip-go-bench", false, "skip the Go benchmarks (kernel and user space)")
	rss := flag.Bool("rss", true, "measure the collector's RSS with UDP flows held open")
	load := flag.Bool("load", true, "run the side-by-side load benchmark (BenchmarkLoad)")
	loadArgs := flag.String("load-args", "", "flags for BenchmarkLoad, e.g. \"-load.runs=3 -load.flows=10000\"")
	flag.Parse()

	if os.Geteuid() != 0 {
		fatalf("bench needs root: it loads eBPF programs (sudo make bench)")
	}
	var (
		rows   []row
		failed bool
	)
	if !*skipGo {
		r, err := goBenchmarks()
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: go benchmarks: %v\n", err)
			failed = true
		}
		rows = append(rows, r...)
	}
	if *rss {
		r, err := collectorLoad(*collector, *flows, *hold)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: collector under load: %v\n", err)
			failed = true
		}
		rows = append(rows, r...)
	}
	if *load {
		r, err := loadBenchmark(*collector, strings.Fields(*loadArgs))
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: side-by-side load: %v\n", err)
			failed = true
		}
		rows = append(rows, r...)
	}
	printRows(rows)
	if failed {
		// The figures printed are incomplete: a benchmark that could not
		// run must not pass for one that met its target.
		fatalf("a benchmark failed (see above)")
	}
}

// row is one printed figure; ratio = value/target for "lower is better"
// figures and target/value for "higher is better", so <= 1.00 always meets it.
type row struct {
	group, name string
	value       float64
	unit        string
	target      float64 // 0: no target, informational
	higherBest  bool
	note        string
}

func (r row) ratio() string {
	if r.target == 0 || r.value == 0 {
		return "-"
	}
	q := r.value / r.target
	if r.higherBest {
		q = r.target / r.value
	}
	verdict := "ok"
	if q > 1 {
		verdict = "MISSED"
	}
	return fmt.Sprintf("%.2f %s", q, verdict)
}

func printRows(rows []row) {
	fmt.Println()
	fmt.Println("ratio = measured/target (lower is better) or target/measured (higher is better); <= 1.00 meets the target")
	fmt.Printf("%-10s %-52s %14s %-12s %10s  %s\n", "group", "figure", "value", "unit", "ratio", "note")
	for _, r := range rows {
		fmt.Printf("%-10s %-52s %14s %-12s %10s  %s\n", r.group, r.name, fmtNum(r.value), r.unit, r.ratio(), r.note)
	}
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

// ---- Go benchmarks ---------------------------------------------------------

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// goBenchmarks runs every benchmark of the receiver and the anomaly
// detection with one CPU and sorts the results: Benchmark*Kernel are
// in-kernel costs, the rest user space.
func goBenchmarks() ([]row, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchtime", "1s", "-cpu", "1", "-count", "1",
		"./receiver/...", "./internal/...")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	fmt.Println("== go test -bench . -cpu 1 ./receiver/... ./internal/...")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var rows []row
	pkg := ""
	s := bufio.NewScanner(out)
	for s.Scan() {
		line := s.Text()
		fmt.Println(line)
		if strings.HasPrefix(line, "pkg: ") {
			pkg = filepath.Base(strings.TrimPrefix(line, "pkg: "))
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		rows = append(rows, classify(pkg, m[1], parseMetrics(m[2]))...)
	}
	if err := cmd.Wait(); err != nil {
		return rows, fmt.Errorf("go test -bench: %w", err)
	}
	if !hasGroup(rows, "kernel") {
		fmt.Println("(no Benchmark*Kernel found: in-kernel figures come from the live run below)")
	}
	return rows, nil
}

func hasGroup(rows []row, g string) bool {
	for _, r := range rows {
		if r.group == g {
			return true
		}
	}
	return false
}

// metric is one "value unit" pair of a benchmark line.
type metric struct {
	unit  string
	value float64
}

// parseMetrics reads "123 ns/op  45.6 ns/pkt  0 B/op" in the order printed.
func parseMetrics(s string) []metric {
	f := strings.Fields(s)
	var m []metric
	for i := 0; i+1 < len(f); i += 2 {
		if v, err := strconv.ParseFloat(f[i], 64); err == nil {
			m = append(m, metric{f[i+1], v})
		}
	}
	return m
}

func classify(pkg, name string, m []metric) []row {
	full := pkg + "." + name
	top, _, _ := strings.Cut(name, "/")  // BenchmarkXKernel/sub-case
	if strings.Contains(top, "Kernel") { // BenchmarkXKernel, BenchmarkXKernelManyFlows
		// Prefer a per-packet/per-event metric the benchmark reports itself;
		// one row per program when it reports several
		// ("egress-ns/packet", "ingress-ns/packet"), in the order printed.
		ms := pickAll(m, "ns/packet", "ns/pkt", "ns/event", "ns/run", "ns/op")
		target := 0.0
		if strings.Contains(strings.ToLower(pkg+top), "flow") {
			target = targetNsPerPacket
		}
		var rows []row
		for _, x := range ms {
			n := full
			if prog, ok := strings.CutSuffix(x.unit, "-ns/packet"); ok && len(ms) > 1 {
				n += " " + prog
			}
			rows = append(rows, row{group: "kernel", name: n, value: x.value, unit: "ns/packet", target: target, note: "real events, BPF run-time stats (" + x.unit + ")"})
		}
		return rows
	}
	if unit, v := pick(m, "queries/s"); unit != "" {
		return []row{{group: "user", name: full, value: v, unit: "queries/s/core", target: targetDNSQueries, higherBest: true, note: "DNS lookups without loss"}}
	}
	if unit, v := pick(m, "points/s"); unit != "" {
		out := []row{{group: "anomaly", name: full, value: v, unit: "points/s/core", target: targetPoints, higherBest: true, note: "scored points"}}
		if _, b := pick(m, "B/series"); b > 0 {
			out = append(out, row{group: "anomaly", name: full, value: b, unit: "B/series", target: targetSeriesBytes, note: "state per series"})
		}
		return out
	}
	if pkg == "pdatabuild" {
		// Records -> pdata: per flow record, not per kernel event; no target.
		if unit, v := pick(m, "ns/flow"); unit != "" && v > 0 {
			return []row{{group: "user", name: full, value: 1e9 / v, unit: "flows/s/core", note: "pdata translation, informational"}}
		}
		return nil
	}
	if unit, v := pick(m, "events/s", "samples/s", "entries/s", "records/s"); unit != "" {
		return []row{{group: "user", name: full, value: v, unit: "events/s/core", target: targetEventsPerSec, higherBest: true, note: "GOMAXPROCS=1 (" + unit + ")"}}
	}
	if unit, v := pick(m, "ns/event", "ns/sample", "ns/record"); unit != "" && v > 0 {
		return []row{{group: "user", name: full, value: 1e9 / v, unit: "events/s/core", target: targetEventsPerSec, higherBest: true, note: "1e9/(" + unit + ")"}}
	}
	// A decoder benchmark decodes one event per op.
	if _, v := pick(m, "ns/op"); v > 0 && strings.Contains(name, "Decode") {
		return []row{{group: "user", name: full, value: 1e9 / v, unit: "events/s/core", target: targetEventsPerSec, higherBest: true, note: "1e9/(ns/op)"}}
	}
	return nil
}

// pick returns the first metric whose unit ends with one of the suffixes
// (so "kernel-ns/packet" matches "ns/packet"), in suffix order, then in the
// order the benchmark printed them.
func pick(m []metric, suffixes ...string) (string, float64) {
	if ms := pickAll(m, suffixes...); len(ms) > 0 {
		return ms[0].unit, ms[0].value
	}
	return "", 0
}

// pickAll returns every metric matching the first suffix that matches any,
// in the order printed.
func pickAll(m []metric, suffixes ...string) []metric {
	for _, suf := range suffixes {
		var out []metric
		for _, x := range m {
			if x.unit == suf || strings.HasSuffix(x.unit, "-"+suf) {
				out = append(out, x)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// ---- the side-by-side load --------------------------------------------------

// loadBenchmark runs BenchmarkLoad (load_linux_test.go) against the built
// collector, streams its tables and turns the medians it reports into rows.
func loadBenchmark(bin string, args []string) ([]row, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	goArgs := []string{"test", "-run", "^$", "-bench", "^BenchmarkLoad$", "-benchtime", "1x", "-count", "1", "-timeout", "90m", "./tests/bench"}
	if len(args) > 0 {
		goArgs = append(append(goArgs, "-args"), args...)
	}
	cmd := exec.Command("go", goArgs...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "EBPFFLOW_COLLECTOR="+bin)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	fmt.Println("\n== go test -bench ^BenchmarkLoad$ ./tests/bench", strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var rows []row
	s := bufio.NewScanner(out)
	for s.Scan() {
		line := s.Text()
		fmt.Println(line)
		if m := benchLine.FindStringSubmatch(line); m != nil {
			rows = append(rows, loadRows(m[1], parseMetrics(m[2]))...)
		}
	}
	if err := cmd.Wait(); err != nil {
		return rows, fmt.Errorf("BenchmarkLoad: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("BenchmarkLoad reported nothing")
	}
	return rows, nil
}

// loadRows turns one BenchmarkLoad/<load> line into rows with the goals.
func loadRows(name string, m []metric) []row {
	_, load, _ := strings.Cut(name, "/")
	_, flows := pick(m, "flows")
	var rows []row
	for _, x := range m {
		spec, ok := loadMetrics[x.unit]
		if !ok {
			continue
		}
		r := spec.row
		r.group, r.name, r.value = "load", load+" "+r.name, x.value
		if spec.at10kOnly && flows != 10_000 {
			r.target = 0
		}
		rows = append(rows, r)
	}
	return rows
}

// loadMetrics turns BenchmarkLoad's metric units into rows: name (after the
// load's), unit, goal, note. The figures net of the statistics' cost and
// the machine CPU with statistics off have no goal: the verdicts are on the
// raw figures (throughput gets one with statistics on and one off).
var loadMetrics = map[string]struct {
	row
	at10kOnly bool // the goal applies at 10k flows only
}{
	"throughput-ratio":           {row: row{name: "throughput with/without", unit: "ratio", target: 0.98, higherBest: true, note: "wrk requests/s, medians"}},
	"throughput-ratio-stats-off": {row: row{name: "throughput, statistics off", unit: "ratio", target: 0.98, higherBest: true, note: "wrk requests/s, medians; as a node runs"}},
	"kernel-ns/packet":           {row: row{name: "in-kernel per packet", unit: "ns/packet", target: targetNsPerPacket, note: "every program, bpf_stats"}},
	"kernel-net-ns/packet":       {row: row{name: "in-kernel per packet, net", unit: "ns/packet", note: "less the statistics' own cost per run; goal judged raw"}},
	"stats-ns/run":               {row: row{name: "statistics' own cost", unit: "ns/run", note: "empty cgroup_skb pair, statistics on"}},
	"cpu-ms/1k-requests":         {row: row{name: "kernel + user CPU", unit: "ms/1k req", target: 0.6, note: "BPF + collector user + sys"}},
	"cpu-net-ms/1k-requests":     {row: row{name: "kernel + user CPU, net", unit: "ms/1k req", note: "BPF net of statistics + user + sys; goal judged raw"}},
	"cpu-added-ms/1k-stats-off":  {row: row{name: "total CPU added, statistics off", unit: "ms/1k req", note: "/proc/stat, median of paired rounds"}},
	"rss-MB":                     {row: row{name: "collector RSS", unit: "MB", target: targetRSSMB, note: "RssAnon + RssFile at the end of the window"}, at10kOnly: true},
	"rss-anon-MB":                {row: row{name: "collector RSS anon", unit: "MB", note: "RssAnon at the end of the window"}},
	"rss-file-MB":                {row: row{name: "collector RSS file", unit: "MB", note: "RssFile: binary pages, BPF ring buffers"}},
	"cost-vs-hot":                {row: row{name: "ns/packet vs hot", unit: "ratio", target: 1.5, note: "per-packet cost against the hot load"}, at10kOnly: true},
}

// ---- the collector under load ---------------------------------------------

// loadConfig is the collector under test in every load benchmark: the
// receiver's defaults except a 2 s flush, so that a run of a few seconds
// covers several flushes; %[3]s adds receiver settings (the side-by-side
// load turns HTTP capture off, and sets max_flows above its default). The debug exporter prints a line per batch.
const loadConfig = `receivers:
  ebpfflow:
    flush_interval: 2s
%[3]s
exporters:
  debug:
    verbosity: basic
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
service:
  extensions: [health_check]
  telemetry:
    logs: {level: warn}
    metrics:
      level: detailed
      readers:
        - pull: {exporter: {prometheus: {host: 127.0.0.1, port: %[2]d}}}
  pipelines:
    logs: {receivers: [ebpfflow], exporters: [debug]}
    metrics: {receivers: [ebpfflow], exporters: [debug]}
    traces: {receivers: [ebpfflow], exporters: [debug]}
`

// collectorLoad starts the collector, holds flows/2 UDP connections on
// loopback (= flows local flows) and then twice as many, and reads VmRSS and
// VmHWM, the self-reported active flow count and the BPF run-time stats.
func collectorLoad(bin string, flows int, hold time.Duration) ([]row, error) {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("collector binary: %w (run make build)", err)
	}
	raiseNoFile(uint64(flows + 256)) // one socket per connection, at most `flows` connections

	dir, err := os.MkdirTemp("", "ebpfflow-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	hp, mp := freePort(), freePort()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, loadConfig, hp, mp, ""), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "collector.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config="+cfg)
	cmd.Stdout, cmd.Stderr = io.Discard, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	if err := waitHealthy(fmt.Sprintf("http://127.0.0.1:%d/", hp), exited); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "collector.log"))
		return nil, fmt.Errorf("%w\n%s", err, b)
	}
	pid := cmd.Process.Pid
	fmt.Printf("\n== collector pid %d started; idle 5s\n", pid)
	time.Sleep(5 * time.Second)
	idleRSS, _ := procStatus(pid, "VmRSS")
	idleAnon, _ := procStatus(pid, "RssAnon")

	restoreStats := enableBPFStats()
	defer restoreStats()
	before, _ := progStats(pid)

	var rows []row
	rows = append(rows, row{group: "rss", name: "collector idle", value: idleRSS, unit: "MB", note: fmt.Sprintf("VmRSS after start; anon %.1f MB (the rest is the mapped binary)", idleAnon)})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink, err := newSink(ctx)
	if err != nil {
		return rows, err
	}
	// A closed loopback port: datagrams sent there are freed as NO_SOCKET
	// drops, so the drop probe has events to be measured on.
	closed, err := closedUDPPort()
	if err != nil {
		return rows, err
	}
	dropper, err := net.DialUDP("udp4", nil, closed)
	if err != nil {
		return rows, err
	}
	defer dropper.Close()
	go func() {
		b := make([]byte, 32)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_, _ = dropper.Write(b)
			}
		}
	}()

	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Phase 1: flows/2 connections = flows local flows (target); phase 2
	// doubles them for a view of the slope.
	for phase, nconn := range []int{flows / 2, flows} {
		for len(conns) < nconn {
			c, err := net.DialUDP("udp4", nil, sink.LocalAddr().(*net.UDPAddr))
			if err != nil {
				return rows, fmt.Errorf("open flow %d: %w", len(conns), err)
			}
			conns = append(conns, c)
		}
		fmt.Printf("== %d UDP connections (%d local flows) held for %v, one 64-byte datagram per connection per second (+1000/s to a closed port: drops)\n",
			nconn, 2*nconn, hold)
		sent := keepAlive(ctx, conns, hold)
		rss, _ := procStatus(pid, "VmRSS")
		hwm, _ := procStatus(pid, "VmHWM")
		anon, _ := procStatus(pid, "RssAnon")
		file, _ := procStatus(pid, "RssFile")
		exe, rings, _ := fileRSS(pid)
		active := selfMetric(fmt.Sprintf("http://127.0.0.1:%d/metrics", mp), "ebpfflow_flows_active")
		fmt.Printf("   sent %d datagrams; VmRSS %.1f MB (anon %.1f, file %.1f = binary %.1f + BPF ring buffers %.1f), VmHWM %.1f MB, ebpfflow_flows_active %.0f\n",
			sent, rss, anon, file, exe, rings, hwm, active)
		target := 0.0
		if phase == 0 {
			target = targetRSSMB
		}
		rows = append(rows,
			row{group: "rss", name: fmt.Sprintf("collector VmRSS, %d active flows", 2*nconn), value: rss, unit: "MB", target: target,
				note: fmt.Sprintf("anon %.1f + file %.1f MB (binary %.1f, rings %.1f); flows_active=%.0f", anon, file, exe, rings, active)},
			row{group: "rss", name: fmt.Sprintf("collector VmHWM, %d active flows", 2*nconn), value: hwm, unit: "MB", target: target, note: "peak RSS so far"})
	}

	after, err := progStats(pid)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: bpf run stats: %v\n", err)
	}
	names := make([]string, 0, len(after))
	for n := range after {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a, b := after[n], before[n]
		runs, ns := a.runs-b.runs, a.ns-b.ns
		if runs == 0 {
			continue
		}
		target := 0.0
		if a.typ == "cgroup_skb" {
			target = targetNsPerPacket
		}
		rows = append(rows, row{group: "kernel", name: fmt.Sprintf("live %s (%s)", n, a.typ), value: float64(ns) / float64(runs),
			unit: "ns/run", target: target, note: fmt.Sprintf("bpf_stats: %d runs", runs)})
	}
	return rows, nil
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to n, or as far as the hard limit
// allows when raising that is not permitted (no CAP_SYS_RESOURCE).
func raiseNoFile(n uint64) {
	var l syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	if l.Cur >= n {
		return
	}
	want := l
	want.Cur = n
	if want.Max < n {
		want.Max = n
	}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
		return
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Max < n {
		fatalf("RLIMIT_NOFILE: need %d open files, the hard limit is %d (%v)", n, l.Max, err)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitHealthy(url string, exited <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("collector exited during start-up: %v", err)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("collector not healthy after 60s")
}

// newSink is the server end: one unconnected UDP socket that discards.
func newSink(ctx context.Context) (*net.UDPConn, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(8 << 20)
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	return c, nil
}

// closedUDPPort returns a loopback UDP address nothing listens on.
func closedUDPPort() (*net.UDPAddr, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	addr := c.LocalAddr().(*net.UDPAddr)
	return addr, c.Close()
}

// keepAlive sends one datagram per connection per second for d (bounded in
// count and time; loopback only).
func keepAlive(ctx context.Context, conns []*net.UDPConn, d time.Duration) int {
	payload := make([]byte, 64)
	sent := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.After(d)
	for {
		for _, c := range conns {
			if _, err := c.Write(payload); err == nil {
				sent++
			}
		}
		select {
		case <-ctx.Done():
			return sent
		case <-end:
			return sent
		case <-tick.C:
		}
	}
}

// procStatus reads a "VmRSS:   1234 kB" style field in MB.
func procStatus(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, err := strconv.ParseFloat(f[1], 64)
				return kb / 1024, err
			}
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

// selfMetric sums the samples of one metric on the Prometheus endpoint.
func selfMetric(url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		l := s.Text()
		if strings.HasPrefix(l, "#") || !strings.Contains(l, name) {
			continue
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// enableBPFStats turns on kernel.bpf_stats_enabled (run_time_ns/run_cnt per
// program) and returns a function that restores the previous value.
func enableBPFStats() func() {
	const p = "/proc/sys/kernel/bpf_stats_enabled"
	old, err := os.ReadFile(p)
	if err != nil {
		return func() {}
	}
	_ = os.WriteFile(p, []byte("1"), 0)
	return func() { _ = os.WriteFile(p, old, 0) }
}

type progStat struct {
	typ      string
	runs, ns uint64
}

// programsOf lists the ids of the BPF programs pid holds, directly or
// through links (/proc/<pid>/fdinfo).
func programsOf(pid int) ([]uint32, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	seen := map[uint32]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil || (link != "anon_inode:bpf-prog" && link != "anon_inode:bpf_link") {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(info), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "prog_id:" {
				if id, err := strconv.ParseUint(f[1], 10, 32); err == nil && id > 0 {
					seen[uint32(id)] = true
				}
			}
		}
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("no BPF programs held by pid %d", pid)
	}
	ids := make([]uint32, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// progStats reads the run stats of the BPF programs pid holds (programsOf):
// name, type, run_time_ns and run_cnt from bpftool. Keyed by "name#id".
func progStats(pid int) (map[string]progStat, error) {
	ids, err := programsOf(pid)
	if err != nil {
		return nil, err
	}
	m := map[string]progStat{}
	for _, id := range ids {
		out, err := exec.Command("bpftool", "prog", "show", "id", strconv.Itoa(int(id)), "--json").Output()
		if err != nil {
			continue
		}
		var p struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			RunTime  uint64 `json:"run_time_ns"`
			RunCount uint64 `json:"run_cnt"`
		}
		if json.Unmarshal(out, &p) == nil {
			m[fmt.Sprintf("%s#%d", p.Name, id)] = progStat{typ: p.Type, runs: p.RunCount, ns: p.RunTime}
		}
	}
	if len(m) == 0 {
		return m, fmt.Errorf("no BPF programs held by pid %d", pid)
	}
	return m, nil
}

// fileRSS splits a process's file-backed RSS (RssFile) in MB: pages of its
// own executable, and pages of BPF maps it has mmap'ed (ring buffers: the
// kernel maps all of a ring's pages, its data area twice).
func fileRSS(pid int) (binary, bpfMaps float64, err error) {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return 0, 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0, 0, err
	}
	var path string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			path = ""
			if len(f) >= 6 {
				path = strings.Join(f[5:], " ")
			}
		case len(f) >= 2 && f[0] == "Rss:":
			kb, _ := strconv.ParseFloat(f[1], 64)
			switch path {
			case exe:
				binary += kb / 1024
			case "anon_inode:bpf-map":
				bpfMaps += kb / 1024
			}
		}
	}
	return binary, bpfMaps, nil
}
