package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// The side-by-side benchmark (`make bench-load`, part of `make bench`): nginx
// in one pod, wrk in another, alternating runs without and with the built
// collector, medians of every figure. Flags go after -args.
var (
	loadRuns      = flag.Int("load.runs", 7, "alternating runs without/with the collector per load")
	loadSlopeRuns = flag.Int("load.slope-runs", 3, "alternating runs per point of the flow-count slope")
	loadDuration  = flag.Duration("load.duration", 8*time.Second, "measured window of every run (wrk runs a warm-up longer)")
	loadFlows     = flag.String("load.flows", "100,1000,10000,100000", "local flow counts of the slope (comma-separated; \"\" skips it)")
	loadHot       = flag.Int("load.hot-conns", 4, "wrk -c of the hot load (the issue's workload)")
)

// Goals of the packet path under load (docs of issue 11 / README "Performance").
const (
	goalNsPerPacket   = 150.0 // in-kernel ns per packet, every program that runs on it
	goalCPUPer1k      = 0.6   // ms of kernel (BPF) + collector CPU per 1k requests
	goalThroughput    = 0.98  // requests/s with the collector over without
	goalManyFlowsCost = 1.5   // ns/packet at 10k flows over ns/packet of the hot load
	goalRSSMB         = 80.0  // collector RSS with 10k active flows
	rssGoalFlows      = 10_000
	// wrkConns is the most connections one wrk (and one nginx worker, with
	// reuseport) holds: RLIMIT_NOFILE may not be raisable far (no
	// CAP_SYS_RESOURCE), so 100k flows take several of each.
	wrkConns = 15_000
	maxWrks  = 4
)

// loadRig is the fixed part: two pods, nginx in one, the collector binary.
type loadRig struct {
	srv, cli *testkit.Pod
	bin      string
	dir      string
	urls     []string // the server's addresses, one per wrk
	status   string   // nginx's request counter
	cgroup   string   // the collector runs here: its CPU from cpu.stat
	root     string   // the cgroup the collector's programs attach to
	stats    *statsSwitch
	// calib is the statistics' own cost per program run measured at the
	// first load that ran the empty programs, for the loads that do not.
	calib float64
}

// variant is one kind of run in the alternation.
type variant int

const (
	vNone    variant = iota // no collector, statistics off: the baseline
	vStats                  // the collector, statistics on: every per-program figure
	vNoStats                // the collector, statistics off, as a node runs it: machine CPU
	vEmpty                  // empty cgroup_skb programs, statistics on: the statistics' own cost
)

// BenchmarkLoad runs the side-by-side benchmark. Sub-benchmarks: "hot" is
// the workload (wrk -t1 -c4, keep-alive: a few hot flows), then one
// per flow count of the slope, flows = 2 x wrk connections (both ends of
// each connection are local sockets). Each prints its table and reports the
// medians as metrics, which `make bench` compares with the goals.
func BenchmarkLoad(b *testing.B) {
	testkit.RequireRoot(b)
	testkit.RequireTools(b, "ip", "nginx", "wrk", "sysctl", "curl")
	bin := testkit.CollectorBinary(b, "../../distribution/_build/otelcol-ebpfflow")
	raiseNoFile(uint64(wrkConns + 1000)) // inherited by wrk and nginx
	rig := newLoadRig(b, bin)
	rig.stats = newStatsSwitch(b)

	var hot *loadResult
	b.Run("hot", func(b *testing.B) {
		hot = rig.measure(b, *loadHot, *loadRuns, true)
	})
	if *loadFlows == "" {
		return
	}
	var slope []*loadResult
	for _, f := range strings.Split(*loadFlows, ",") {
		flows, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || flows < 2 {
			b.Fatalf("-load.flows: %q is not a flow count", f)
		}
		runs, full := *loadSlopeRuns, false
		if flows == rssGoalFlows {
			// The goal's own figure gets the full set, and the
			// calibration and statistics-off runs.
			runs, full = *loadRuns, true
		}
		b.Run(fmt.Sprintf("flows%d", flows), func(b *testing.B) {
			r := rig.measure(b, flows/2, runs, full)
			if hot != nil && hot.nsPerPacket > 0 {
				b.ReportMetric(r.nsPerPacket/hot.nsPerPacket, "cost-vs-hot")
			}
			slope = append(slope, r)
		})
	}
	printSlope(hot, slope)
}

func newLoadRig(b *testing.B, bin string) *loadRig {
	srv, cli := testkit.NewPodPair(b, "lsrv", "lcli", 210)
	dir, err := os.MkdirTemp("", "ebpfflow-load-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	// Room for 100k connections: accept backlog on the server, the whole
	// port range (and ports in TIME_WAIT from the previous run) on the client.
	for _, s := range []string{"net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535"} {
		testkit.Run(b, "ip", "netns", "exec", srv.Netns, "sysctl", "-qw", s)
	}
	for _, s := range []string{"net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1"} {
		testkit.Run(b, "ip", "netns", "exec", cli.Netns, "sysctl", "-qw", s)
	}
	// One server address per wrk: with tens of thousands of connections to
	// one address and port, connect() spends its time searching for a free
	// local port.
	urls := []string{fmt.Sprintf("http://%s:80/", srv.IP4)}
	for i := 1; i < maxWrks; i++ {
		a := srv.IP4.As4()
		a[3] += byte(i)
		ip := netip.AddrFrom4(a)
		testkit.Run(b, "ip", "-n", srv.Netns, "addr", "add", ip.String()+"/24", "dev", "eth0")
		urls = append(urls, fmt.Sprintf("http://%s:80/", ip))
	}
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		b.Fatal(err)
	}
	// The size of nginx's own welcome page.
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte(strings.Repeat("x", 615)), 0o644); err != nil {
		b.Fatal(err)
	}
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		b.Fatal(err)
	}
	conf := fmt.Sprintf(`daemon off;
user root;
worker_processes 4;
worker_rlimit_nofile %[3]d;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections %[3]d; multi_accept on; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	default_type text/html;
	server {
		listen 0.0.0.0:80 backlog=65535 reuseport;
		root %[2]s;
		location = /status { stub_status; }
	}
}
`, prefix, www, wrkConns+1000)
	path := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	srv.Start(b, filepath.Join(dir, "nginx.log"), "nginx", "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", path)
	srv.WaitListening(b, "tcp", 80)

	cg := filepath.Join(testkit.CgroupV2Mount(b), fmt.Sprintf("ebpfflow-bench-collector-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil && !os.IsExist(err) {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.Remove(cg) })
	return &loadRig{srv: srv, cli: cli, bin: bin, dir: dir, urls: urls, status: urls[0] + "status", cgroup: cg, root: testkit.CgroupV2Mount(b)}
}

// runFigures is one run's measurements.
type runFigures struct {
	requests         float64
	rps              float64
	errors           string // wrk's socket errors / non-2xx, "" when none
	progs            map[string]progDelta
	packets          float64 // packets the packet hooks saw: egress + ingress runs
	bpfNs            float64 // every program of the collector
	bpfRuns          float64 // runs of every program: each paid the statistics once
	machineNs        float64 // CPU of the whole machine over the window (/proc/stat)
	userNs, sysNs    float64 // the collector's own CPU
	rssAnon, rssFl   float64 // MB at the end of the run
	rssExe, rssRings float64 // of rssFl: the binary's pages, mmap'ed BPF ring buffers
	flowsActive      float64
}

type progDelta struct {
	typ      string
	runs, ns float64
}

// loadResult is the medians of one load.
type loadResult struct {
	conns, flows             int
	rpsWithout, rpsWith      float64
	nsPerPacket, packetsPerR float64
	cpuPer1k, bpfPer1k       float64
	userPer1k, sysPer1k      float64
	rssAnon, rssFile         float64
	rssExe, rssRings         float64
	flowsActive              float64

	// The statistics' own cost, from the empty programs (vEmpty runs).
	calib          float64 // ns per program run
	calibOwn       bool    // measured at this load, not taken from an earlier one
	runsPerPacket  float64 // program runs per packet, all programs
	nsPerPacketNet float64 // nsPerPacket less runsPerPacket x calib
	cpuPer1kNet    float64 // cpuPer1k less the statistics' cost of every run
	rpsEmpty       float64

	// Statistics off (vNone and vNoStats runs): machine CPU, /proc/stat.
	full                 bool
	rpsNoStats           float64
	machineNone          float64 // ms per 1k requests without the collector
	machineNoStats       float64 // with it, statistics off
	machineStats         float64 // with it, statistics on
	added                float64 // median of the per-iteration differences with (off) - without
	addedMin, addedMax   float64
	addedMAD             float64 // median absolute deviation of those differences
	addedPositive, pairs int
}

// measure runs wrk with conns connections: runs alternating rounds, the
// order rotating every round so that no variant always goes first. A full
// measure adds the empty programs (calibration) and the collector with
// statistics off to the round.
func (r *loadRig) measure(b *testing.B, conns, runs int, full bool) *loadResult {
	b.Helper()
	flows := 2 * conns
	// The packet path is measured as the issue defines it (flows, drops,
	// DNS): the HTTP probe, on by default, hooks the syscalls of the very
	// requests wrk makes, and its cost is make bench-http's to measure.
	settings := "    http: {enabled: false}"
	if flows > 32768 {
		// Default max_flows (65536) holds 32k connections' worth of
		// flows on each map with room for churn; beyond, size it as an
		// operator would.
		settings += fmt.Sprintf("\n    max_flows: %d", 2*flows)
	}
	variants := []variant{vNone, vStats}
	if full {
		variants = append(variants, vNoStats, vEmpty)
	}
	figs := map[variant][]runFigures{}
	for i := range runs {
		r.drain(b)
		for k := range variants {
			v := variants[(i+k)%len(variants)]
			r.stats.set(b, v == vStats || v == vEmpty)
			var f runFigures
			switch v {
			case vNone:
				f = r.runWrk(b, conns, nil, nil)
			case vStats, vNoStats:
				f = r.runWith(b, conns, fmt.Sprintf("%d-%d", i, v), settings, v == vStats)
			case vEmpty:
				f = r.runEmpty(b, conns)
			}
			figs[v] = append(figs[v], f)
			r.drain(b)
		}
	}
	r.stats.set(b, false)
	calib, own := r.calib, false
	if e := figs[vEmpty]; len(e) > 0 {
		calib = medianOf(e, func(f runFigures) float64 { return f.bpfNs / f.bpfRuns })
		own = true
		if r.calib == 0 {
			r.calib = calib
		}
	}
	res := summarize(conns, flows, figs, calib)
	res.calibOwn = own
	with := figs[vStats]
	printLoad(res, with, runs, conns)
	b.ReportMetric(res.rpsWith/res.rpsWithout, "throughput-ratio")
	b.ReportMetric(res.nsPerPacket, "kernel-ns/packet")
	b.ReportMetric(res.cpuPer1k, "cpu-ms/1k-requests")
	b.ReportMetric(res.rssAnon+res.rssFile, "rss-MB")
	b.ReportMetric(res.rssAnon, "rss-anon-MB")
	b.ReportMetric(res.rssFile, "rss-file-MB")
	b.ReportMetric(float64(flows), "flows")
	if own {
		b.ReportMetric(res.calib, "stats-ns/run")
	}
	if res.calib > 0 {
		b.ReportMetric(res.nsPerPacketNet, "kernel-net-ns/packet")
		b.ReportMetric(res.cpuPer1kNet, "cpu-net-ms/1k-requests")
	}
	if full {
		b.ReportMetric(res.rpsNoStats/res.rpsWithout, "throughput-ratio-stats-off")
		b.ReportMetric(res.added, "cpu-added-ms/1k-stats-off")
	}
	return res
}

// runWith starts the collector, measures one wrk run and stops it; with
// progStats, its programs' run-time statistics too (they must be on).
func (r *loadRig) runWith(b *testing.B, conns int, run, settings string, progStats bool) runFigures {
	b.Helper()
	dir := filepath.Join(r.dir, fmt.Sprintf("collector-c%d-%s", conns, run))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	hp, mp := testkit.FreePort(b), testkit.FreePort(b)
	c := testkit.StartCollector(b, r.bin, dir, fmt.Sprintf(loadConfig, hp, mp, settings), hp, mp)
	defer c.Stop(b)
	pid := c.Cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(r.cgroup, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		b.Fatalf("move the collector into %s: %v", r.cgroup, err)
	}
	time.Sleep(time.Second) // start-up work done, first flush scheduled
	return r.runWrk(b, conns, &collectorProc{pid: pid, metricsURL: c.MetricsURL, cgroup: r.cgroup, progStats: progStats}, nil)
}

// runEmpty measures one wrk run with an empty cgroup_skb program on each
// direction of the cgroup the collector attaches to: under run-time
// statistics, its ns per run is what the statistics themselves add to every
// program run (two clock reads), which a node with them off does not pay.
func (r *loadRig) runEmpty(b *testing.B, conns int) runFigures {
	b.Helper()
	progs, detach, err := testkit.AttachNoopCgroupSKB(r.root)
	if err != nil {
		b.Fatalf("attach empty cgroup_skb programs to %s: %v", r.root, err)
	}
	defer detach()
	ids := make([]uint32, 0, len(progs))
	for _, p := range progs {
		info, err := p.Info()
		if err != nil {
			b.Fatal(err)
		}
		id, ok := info.ID()
		if !ok {
			b.Fatal("empty cgroup_skb program: the kernel gave no program id")
		}
		ids = append(ids, uint32(id))
	}
	return r.runWrk(b, conns, nil, ids)
}

type collectorProc struct {
	pid        int
	metricsURL string
	cgroup     string
	progStats  bool // read its programs' run-time statistics
}

var (
	wrkErrors = regexp.MustCompile(`(Socket errors: .*|Non-2xx or 3xx responses: \d+)`)
)

// runWrk runs wrk in the client pod and measures a window of it: after a
// warm-up (every connection open and busy), for -load.duration. Requests
// in the window come from nginx's own counter (stub_status); with a
// collector, its programs, CPU and memory are read at both ends of the
// window, and so are the programs in progIDs; the machine's CPU always.
func (r *loadRig) runWrk(b *testing.B, conns int, col *collectorProc, progIDs []uint32) runFigures {
	b.Helper()
	window := *loadDuration
	// Opening tens of thousands of connections takes seconds; nothing of it
	// is measured.
	warmup := time.Second + time.Duration(conns)*100*time.Microsecond
	ctx, cancel := context.WithTimeout(context.Background(), warmup+window+2*time.Minute)
	defer cancel()
	timeout := "2s"
	if conns > 1000 {
		timeout = "10s"
	}
	// One wrk (one thread) per wrkConns connections: a process holds at
	// most RLIMIT_NOFILE sockets.
	procs := (conns + wrkConns - 1) / wrkConns
	if procs > len(r.urls) {
		b.Fatalf("%d connections need %d wrk processes, the rig has %d server addresses", conns, procs, len(r.urls))
	}
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	wrkFor := (warmup + window + time.Second).Round(time.Second)
	for i := range procs {
		n := conns / procs
		if i < conns%procs {
			n++
		}
		cmd := r.cli.Command(ctx, "wrk", "-t1", "-c"+strconv.Itoa(n), "-d"+wrkFor.String(), "--timeout", timeout, r.urls[i])
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}

	var (
		f      runFigures
		before map[uint32]progCounters
		cpu0   cpuStat
	)
	time.Sleep(warmup)
	if col != nil && col.progStats {
		ids, err := programsOf(col.pid)
		if err != nil {
			b.Fatal(err)
		}
		progIDs = append(progIDs, ids...)
	}
	if len(progIDs) > 0 {
		before = readProgStats(b, progIDs)
	}
	if col != nil {
		cpu0 = readCPUStat(b, col.cgroup)
	}
	m0 := readMachineCPU(b)
	req0, t0 := r.nginxRequests(b), time.Now()
	time.Sleep(window)
	req1, t1 := r.nginxRequests(b), time.Now()
	f.machineNs = float64(readMachineCPU(b)-m0) * 1e9 / userHZ
	if col != nil {
		cpu1 := readCPUStat(b, col.cgroup)
		f.rssAnon, _ = procStatus(col.pid, "RssAnon")
		f.rssFl, _ = procStatus(col.pid, "RssFile")
		f.rssExe, f.rssRings, _ = fileRSS(col.pid)
		f.flowsActive = selfMetric(col.metricsURL, "ebpfflow_flows_active")
		f.userNs, f.sysNs = float64(cpu1.userUs-cpu0.userUs)*1e3, float64(cpu1.sysUs-cpu0.sysUs)*1e3
	}
	if len(progIDs) > 0 {
		after := readProgStats(b, progIDs)
		f.progs = map[string]progDelta{}
		var egress, ingress float64
		for id, a := range after {
			p := before[id]
			d := progDelta{typ: a.typ, runs: float64(a.runs - p.runs), ns: float64(a.ns - p.ns)}
			if x, dup := f.progs[a.name]; dup { // same name twice (two objects): add up
				d.runs += x.runs
				d.ns += x.ns
			}
			f.progs[a.name] = d
			f.bpfNs += float64(a.ns - p.ns)
			f.bpfRuns += float64(a.runs - p.runs)
			if a.typ == "CGroupSKB" {
				// Every program on a hook runs for each packet crossing it.
				switch {
				case strings.HasSuffix(a.name, "egress"):
					egress = max(egress, d.runs)
				case strings.HasSuffix(a.name, "ingress"):
					ingress = max(ingress, d.runs)
				}
			}
		}
		f.packets = egress + ingress
	}
	wg.Wait()

	f.requests = float64(req1 - req0 - 1) // less the status request itself
	f.rps = f.requests / t1.Sub(t0).Seconds()
	var errors []string
	for i, out := range outs {
		if errs[i] != nil {
			b.Fatalf("wrk -c%d: %v\n%s", conns, errs[i], out)
		}
		for _, e := range wrkErrors.FindAll(out, -1) {
			errors = append(errors, string(e))
		}
	}
	f.errors = strings.Join(errors, "; ")
	if f.requests <= 0 {
		b.Fatalf("no request in the window of wrk -c%d:\n%s", conns, outs[0])
	}
	return f
}

// drain waits until the previous run's connections are gone on both ends
// (the client's TIME-WAIT ports are reused, tcp_tw_reuse): a SYN reusing a
// port whose server end is still closing would be answered with the old
// connection's ACK, reset and retried a second later.
func (r *loadRig) drain(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n := 0
		for _, p := range []*testkit.Pod{r.srv, r.cli} {
			out, err := exec.Command("ip", "netns", "exec", p.Netns, "ss", "-Htn", "state", "connected", "exclude", "time-wait").Output()
			if err != nil {
				b.Fatalf("ss in %s: %v", p.Netns, err)
			}
			n += strings.Count(string(out), "\n")
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d connections still open 2 minutes after the run", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// nginxRequests reads the requests nginx has handled (stub_status).
func (r *loadRig) nginxRequests(b *testing.B) uint64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := r.cli.Command(ctx, "curl", "-sS", "--max-time", "5", r.status).Output()
	if err != nil {
		b.Fatalf("nginx status: %v", err)
	}
	// "server accepts handled requests\n 16630948 16630948 31070465"
	_, rest, ok := strings.Cut(string(out), "requests\n")
	if f := strings.Fields(rest); ok && len(f) >= 3 {
		if n, err := strconv.ParseUint(f[2], 10, 64); err == nil {
			return n
		}
	}
	b.Fatalf("nginx status not understood: %q", out)
	return 0
}

type progCounters struct {
	name, typ string
	runs, ns  uint64
}

func readProgStats(b *testing.B, ids []uint32) map[uint32]progCounters {
	b.Helper()
	m := make(map[uint32]progCounters, len(ids))
	for _, id := range ids {
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			b.Fatalf("program %d: %v", id, err)
		}
		info, err := p.Info()
		if err == nil {
			var st *ebpf.ProgramStats
			if st, err = p.Stats(); err == nil {
				m[id] = progCounters{name: info.Name, typ: info.Type.String(), runs: st.RunCount, ns: uint64(st.Runtime)}
			}
		}
		p.Close()
		if err != nil {
			b.Fatalf("program %d: %v", id, err)
		}
	}
	return m
}

type cpuStat struct{ userUs, sysUs uint64 }

// readCPUStat reads user_usec and system_usec of a cgroup (every cgroup v2
// directory has them, whatever controllers are enabled): the CPU of all the
// collector's threads at µs resolution.
func readCPUStat(b *testing.B, dir string) cpuStat {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		b.Fatal(err)
	}
	var s cpuStat
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "user_usec":
			s.userUs = v
		case "system_usec":
			s.sysUs = v
		}
	}
	return s
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianOf(fs []runFigures, f func(runFigures) float64) float64 {
	xs := make([]float64, len(fs))
	for i, x := range fs {
		xs[i] = f(x)
	}
	return median(xs)
}

func summarize(conns, flows int, figs map[variant][]runFigures, calib float64) *loadResult {
	without, with := figs[vNone], figs[vStats]
	per1k := func(ns float64, r runFigures) float64 { return ns / 1e6 / r.requests * 1000 }
	rps := func(r runFigures) float64 { return r.rps }
	res := &loadResult{
		conns:       conns,
		flows:       flows,
		rpsWithout:  medianOf(without, rps),
		rpsWith:     medianOf(with, rps),
		nsPerPacket: medianOf(with, func(r runFigures) float64 { return r.bpfNs / r.packets }),
		packetsPerR: medianOf(with, func(r runFigures) float64 { return r.packets / r.requests }),
		cpuPer1k:    medianOf(with, func(r runFigures) float64 { return per1k(r.bpfNs+r.userNs+r.sysNs, r) }),
		bpfPer1k:    medianOf(with, func(r runFigures) float64 { return per1k(r.bpfNs, r) }),
		userPer1k:   medianOf(with, func(r runFigures) float64 { return per1k(r.userNs, r) }),
		sysPer1k:    medianOf(with, func(r runFigures) float64 { return per1k(r.sysNs, r) }),
		rssAnon:     medianOf(with, func(r runFigures) float64 { return r.rssAnon }),
		rssFile:     medianOf(with, func(r runFigures) float64 { return r.rssFl }),
		rssExe:      medianOf(with, func(r runFigures) float64 { return r.rssExe }),
		rssRings:    medianOf(with, func(r runFigures) float64 { return r.rssRings }),
		flowsActive: medianOf(with, func(r runFigures) float64 { return r.flowsActive }),

		calib:         calib,
		runsPerPacket: medianOf(with, func(r runFigures) float64 { return r.bpfRuns / r.packets }),
		rpsEmpty:      medianOf(figs[vEmpty], rps),
	}
	if calib > 0 {
		// Every run of every program paid the statistics once, whatever
		// its type: the same two clock reads around it.
		net := func(r runFigures) float64 { return r.bpfNs - r.bpfRuns*calib }
		res.nsPerPacketNet = medianOf(with, func(r runFigures) float64 { return net(r) / r.packets })
		res.cpuPer1kNet = medianOf(with, func(r runFigures) float64 { return per1k(net(r)+r.userNs+r.sysNs, r) })
	}
	off := figs[vNoStats]
	if len(off) == 0 {
		return res
	}
	res.full = true
	machine := func(r runFigures) float64 { return per1k(r.machineNs, r) }
	res.rpsNoStats = medianOf(off, rps)
	res.machineNone = medianOf(without, machine)
	res.machineNoStats = medianOf(off, machine)
	res.machineStats = medianOf(with, machine)
	// Each round's pair ran back to back: their difference cancels what
	// drifts between rounds (other work on the machine).
	d := make([]float64, 0, len(off))
	for i := range min(len(off), len(without)) {
		d = append(d, machine(off[i])-machine(without[i]))
	}
	res.added, res.pairs = median(d), len(d)
	res.addedMin, res.addedMax = slices.Min(d), slices.Max(d)
	dev := make([]float64, len(d))
	for i, x := range d {
		dev[i] = math.Abs(x - res.added)
		if x > 0 {
			res.addedPositive++
		}
	}
	res.addedMAD = median(dev)
	return res
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func verdict(ratio float64, higherBetter bool) string {
	if (higherBetter && ratio >= 1) || (!higherBetter && ratio <= 1) {
		return "ok"
	}
	return "MISSED"
}

// printLoad prints the table of one load. Figures from bpf_stats are
// printed raw (statistics on, as measured) and net of the statistics' own
// cost side by side; the goal verdicts are on the raw figures.
func printLoad(r *loadResult, with []runFigures, runs, conns int) {
	variants := "without/with the collector"
	if r.full {
		variants = "without the collector / with it (statistics on) / with it (statistics off) / empty programs (statistics on)"
	}
	fmt.Printf("\n== wrk -t1 -c%d, nginx in another pod, %s measured after a warm-up: %d alternating rounds %s, medians (load average %s)\n",
		conns, *loadDuration, runs, variants, loadAvg())
	for _, w := range with {
		if w.errors != "" {
			fmt.Printf("   wrk reported (a run with the collector): %s\n", w.errors)
		}
	}
	ratio := r.rpsWith / r.rpsWithout
	fmt.Printf("%-50s %12.0f without, %.0f with: ratio %.3f (goal >= %.2f: %s)\n", "requests/s (statistics on)", r.rpsWithout, r.rpsWith, ratio, goalThroughput, verdict(ratio/goalThroughput, true))
	if r.full {
		off := r.rpsNoStats / r.rpsWithout
		fmt.Printf("%-50s %12.0f without, %.0f with: ratio %.3f (goal >= %.2f: %s); empty programs: ratio %.3f\n", "requests/s (statistics off)",
			r.rpsWithout, r.rpsNoStats, off, goalThroughput, verdict(off/goalThroughput, true), r.rpsEmpty/r.rpsWithout)
	}
	if r.calib > 0 {
		from := "this load's empty-program runs"
		if !r.calibOwn {
			from = "taken from the first load that ran them"
		}
		fmt.Printf("%-50s %12.1f ns/run (an empty cgroup_skb pair on the same cgroup, statistics on; %s)\n", "statistics' own cost per run", r.calib, from)
	}
	names := map[string]bool{}
	for _, w := range with {
		for n := range w.progs {
			names[n] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	fmt.Printf("%-28s %-12s %14s %10s %14s %12s\n", "program", "type", "runs/request", "ns/run", "ns/request", "net ns/run")
	for _, n := range sorted {
		runsPerReq := medianOf(with, func(w runFigures) float64 { return w.progs[n].runs / w.requests })
		nsPerRun := medianOf(with, func(w runFigures) float64 {
			if w.progs[n].runs == 0 {
				return 0
			}
			return w.progs[n].ns / w.progs[n].runs
		})
		nsPerReq := medianOf(with, func(w runFigures) float64 { return w.progs[n].ns / w.requests })
		typ := ""
		for _, w := range with {
			if p, ok := w.progs[n]; ok {
				typ = p.typ
				break
			}
		}
		net := "-"
		if r.calib > 0 && nsPerRun > 0 {
			net = fmt.Sprintf("%.1f", nsPerRun-r.calib)
		}
		fmt.Printf("%-28s %-12s %14.3f %10.1f %14.1f %12s\n", n, typ, runsPerReq, nsPerRun, nsPerReq, net)
	}
	fmt.Printf("%-50s %12.1f ns (%.2f packets/request; goal <= %.0f: ratio %.2f %s)\n", "in-kernel per packet, all programs, raw",
		r.nsPerPacket, r.packetsPerR, goalNsPerPacket, r.nsPerPacket/goalNsPerPacket, verdict(r.nsPerPacket/goalNsPerPacket, false))
	if r.calib > 0 {
		fmt.Printf("%-50s %12.1f ns = raw less %.2f runs/packet x %.1f ns (ratio to the goal %.2f; the verdict is the raw one's)\n",
			"in-kernel per packet, net of statistics' cost", r.nsPerPacketNet, r.runsPerPacket, r.calib, r.nsPerPacketNet/goalNsPerPacket)
	}
	fmt.Printf("%-50s %12.3f ms = BPF %.3f + collector user %.3f + sys %.3f (goal <= %.1f: ratio %.2f %s)\n", "kernel + user CPU per 1k requests, raw",
		r.cpuPer1k, r.bpfPer1k, r.userPer1k, r.sysPer1k, goalCPUPer1k, r.cpuPer1k/goalCPUPer1k, verdict(r.cpuPer1k/goalCPUPer1k, false))
	if r.calib > 0 {
		fmt.Printf("%-50s %12.3f ms = BPF net of statistics' cost + collector user + sys (ratio to the goal %.2f; the verdict is the raw one's)\n",
			"kernel + user CPU per 1k requests, net", r.cpuPer1kNet, r.cpuPer1kNet/goalCPUPer1k)
	}
	if r.full {
		fmt.Printf("%-50s %12.3f ms without, %.3f with (statistics off), %.3f with (statistics on): machine CPU (/proc/stat user+nice+system+irq+softirq)\n",
			"machine CPU per 1k requests", r.machineNone, r.machineNoStats, r.machineStats)
		var noise string
		switch {
		case r.pairs < 3:
			noise = "too few rounds to tell the noise"
		case r.addedMAD >= math.Abs(r.added):
			noise = "NOISE AS LARGE AS THE EFFECT: this figure does not resolve the collector's cost"
		default:
			noise = fmt.Sprintf("noise (MAD) %.0f%% of the effect", 100*r.addedMAD/math.Abs(r.added))
			if r.addedMin < 0 && r.addedMax > 0 {
				noise += "; single rounds differ in sign: only the median means something"
			}
		}
		fmt.Printf("%-50s %12.3f ms median of %d paired rounds (spread: %.3f .. %.3f, MAD %.3f; %d of %d pairs cost more with the collector): %s\n",
			"total CPU added per 1k requests (statistics off)", r.added, r.pairs, r.addedMin, r.addedMax, r.addedMAD, r.addedPositive, r.pairs, noise)
	}
	rss := r.rssAnon + r.rssFile
	goal := ""
	if r.flows == rssGoalFlows {
		goal = fmt.Sprintf(" (goal <= %.0f MB at %d flows: ratio %.2f %s)", goalRSSMB, rssGoalFlows, rss/goalRSSMB, verdict(rss/goalRSSMB, false))
	}
	fmt.Printf("%-50s %12.1f MB = anon %.1f + file %.1f (binary %.1f + BPF ring buffers %.1f); flows_active %.0f%s\n", "collector RSS at the end of a run",
		rss, r.rssAnon, r.rssFile, r.rssExe, r.rssRings, r.flowsActive, goal)
}

// printSlope prints the per-packet cost against the flow count.
func printSlope(hot *loadResult, slope []*loadResult) {
	if hot == nil || len(slope) == 0 {
		return
	}
	fmt.Printf("\n== cost against concurrent flows (hot: -c%d, %.1f ns/packet)\n", hot.conns, hot.nsPerPacket)
	fmt.Printf("%10s %10s %12s %10s %12s %14s %12s %10s %10s\n", "flows", "wrk -c", "ns/packet", "net", "vs hot", "throughput", "CPU/1k req", "RSS anon", "RSS file")
	for _, r := range slope {
		vs := r.nsPerPacket / hot.nsPerPacket
		note := ""
		if r.flows == rssGoalFlows {
			note = fmt.Sprintf("  (goal <= %.1fx: %s)", goalManyFlowsCost, verdict(vs/goalManyFlowsCost, false))
		}
		fmt.Printf("%10d %10d %12.1f %10.1f %11.2fx %14.3f %12.3f %10.1f %10.1f%s\n", r.flows, r.conns, r.nsPerPacket, r.nsPerPacketNet, vs,
			r.rpsWith/r.rpsWithout, r.cpuPer1k, r.rssAnon, r.rssFile, note)
	}
	fmt.Println("(ns/packet: raw, statistics on; net: less the statistics' own cost per run; ratios on the raw figures)")
	if len(slope) > 1 {
		first, last := slope[0], slope[len(slope)-1]
		fmt.Printf("slope: %+.2f ns/packet per decade of flows (%d -> %d flows)\n",
			(last.nsPerPacket-first.nsPerPacket)/math.Log10(float64(last.flows)/float64(first.flows)), first.flows, last.flows)
	}
}

// statsSwitch turns BPF run-time statistics on and off between runs: on
// while it holds a stats fd (BPF_ENABLE_STATS), off once that is closed and
// the sysctl is 0, which it is made for the benchmark and restored after.
type statsSwitch struct {
	fd io.Closer
}

const statsSysctl = "/proc/sys/kernel/bpf_stats_enabled"

func newStatsSwitch(b *testing.B) *statsSwitch {
	b.Helper()
	old, err := os.ReadFile(statsSysctl)
	if err != nil {
		b.Fatal(err)
	}
	if strings.TrimSpace(string(old)) != "0" {
		if err := os.WriteFile(statsSysctl, []byte("0"), 0); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.WriteFile(statsSysctl, old, 0) })
	}
	// Another process holding statistics on would make the "off" runs pay them.
	if holders := statsHolders(); len(holders) > 0 {
		b.Fatalf("processes %v hold BPF run-time statistics on: the statistics-off runs would not be off", holders)
	}
	s := &statsSwitch{}
	b.Cleanup(func() { s.set(b, false) })
	return s
}

func (s *statsSwitch) set(b *testing.B, on bool) {
	b.Helper()
	switch {
	case on && s.fd == nil:
		fd, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			b.Fatalf("enable BPF run-time stats: %v", err)
		}
		s.fd = fd
	case !on && s.fd != nil:
		s.fd.Close()
		s.fd = nil
	}
}

// statsHolders lists the pids holding a BPF_ENABLE_STATS fd.
func statsHolders() []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if l, err := os.Readlink(fd); err == nil && l == "anon_inode:bpf-stats" {
			pids = append(pids, strings.Split(fd, "/")[2])
		}
	}
	return slices.Compact(pids)
}

// userHZ is the unit of /proc/stat (USER_HZ, 100 on every Linux ABI).
const userHZ = 100

// readMachineCPU is the busy time of every CPU in /proc/stat: user + nice +
// system + irq + softirq, in USER_HZ ticks (guest time is within user).
func readMachineCPU(b *testing.B) uint64 {
	b.Helper()
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		b.Fatalf("/proc/stat: unexpected first line %q", line)
	}
	var sum uint64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system (idle iowait) irq softirq
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			b.Fatalf("/proc/stat: %q: %v", line, err)
		}
		sum += v
	}
	return sum
}
