package main

import (
	"fmt"
	"math"
	"testing"
)

// Sample lines in the shapes the probe, flow-table and translate benchmarks print.
func TestClassify(t *testing.T) {
	cases := []struct {
		pkg, line string
		group     string
		value     float64
		target    float64
	}{
		{"flowprobe", "BenchmarkFlowProbeKernel \t  150031\t     11578 ns/op\t       229.4 kernel-ns/packet", "kernel", 229.4, targetNsPerPacket},
		{"dropprobe", "BenchmarkDropProbeKernel/60k-keys  \t  167944\t 13474 ns/op\t 1.000 events/op\t 964.4 ns/event", "kernel", 964.4, 0},
		{"tcpprobe", "BenchmarkDecode-2 \t15126536\t 147.8 ns/op\t 16 B/op\t 1 allocs/op", "user", 1e9 / 147.8, targetEventsPerSec},
		{"flowtable", "BenchmarkUpdate/10k-all-active \t 78\t 16315877 ns/op\t 1231931 events/s\t 3709387 B/op", "user", 1231931, targetEventsPerSec},
		{"pdatabuild", "BenchmarkLogs10kFlows \t 20\t 71460692 ns/op\t 7146 ns/flow", "user", 1e9 / 7146.0, 0},
		{"flowprobe", "BenchmarkFlowProbeKernelManyFlows \t 10\t 99 ns/op\t 301.5 egress-ns/packet\t 250.1 ingress-ns/packet", "kernel", 301.5, targetNsPerPacket},
	}
	for _, c := range cases {
		m := benchLine.FindStringSubmatch(c.line)
		if m == nil {
			t.Fatalf("%q: no match", c.line)
		}
		rows := classify(c.pkg, m[1], parseMetrics(m[2]))
		if len(rows) < 1 {
			t.Fatalf("%q: %d rows", c.line, len(rows))
		}
		r := rows[0]
		if r.group != c.group || math.Abs(r.value-c.value) > 1e-6*c.value || r.target != c.target {
			t.Errorf("%q: got %s %v target %v, want %s %v target %v", c.line, r.group, r.value, r.target, c.group, c.value, c.target)
		}
	}
}

// Several per-program figures give one row each, always in the order printed.
func TestClassifyManyPrograms(t *testing.T) {
	line := "BenchmarkFlowProbeKernelManyFlows \t 10\t 99 ns/op\t 301.5 egress-ns/packet\t 250.1 ingress-ns/packet"
	for range 20 {
		m := benchLine.FindStringSubmatch(line)
		rows := classify("flowprobe", m[1], parseMetrics(m[2]))
		if len(rows) != 2 || rows[0].value != 301.5 || rows[1].value != 250.1 ||
			rows[0].name != "flowprobe.BenchmarkFlowProbeKernelManyFlows egress" || rows[1].name != "flowprobe.BenchmarkFlowProbeKernelManyFlows ingress" {
			t.Fatalf("rows %+v", rows)
		}
	}
}

// BenchmarkLoad's lines become rows with the goals; the RSS and cost-vs-hot
// goals apply at 10k flows only.
func TestLoadRows(t *testing.T) {
	line := "BenchmarkLoad/flows10000-2 \t 1\t 24370118921 ns/op\t 1.20 cost-vs-hot\t 0.41 cpu-ms/1k-requests\t 10000 flows\t 141.5 kernel-ns/packet\t 76.5 rss-MB\t 0.985 throughput-ratio"
	m := benchLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatal("no match")
	}
	rows := loadRows(m[1], parseMetrics(m[2]))
	want := map[string]struct{ value, target float64 }{
		"ratio/1.2":       {1.20, 1.5},
		"ms/1k req/0.41":  {0.41, 0.6},
		"ns/packet/141.5": {141.5, targetNsPerPacket},
		"MB/76.5":         {76.5, targetRSSMB},
		"ratio/0.985":     {0.985, 0.98},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	for _, r := range rows {
		w, ok := want[fmt.Sprintf("%s/%v", r.unit, r.value)]
		if !ok || w.target != r.target {
			t.Errorf("row %+v: want %+v", r, w)
		}
	}
	hot := loadRows("BenchmarkLoad/hot", parseMetrics("1 ns/op\t 8 flows\t 90 rss-MB"))
	if len(hot) != 1 || hot[0].target != 0 {
		t.Errorf("hot rows %+v: RSS has no goal below 10k flows", hot)
	}
}

// The figures net of the statistics' cost, with statistics off and of RSS
// by kind are rows of their own, without a goal: the verdicts stay on the
// raw figures; throughput gets its verdict with statistics on and off.
func TestLoadRowsNetAndStatisticsOff(t *testing.T) {
	line := "BenchmarkLoad/hot-2 \t 1\t 9 ns/op\t 0.02 cpu-added-ms/1k-stats-off\t 0.84 cpu-ms/1k-requests\t 0.61 cpu-net-ms/1k-requests\t 8 flows\t 119 kernel-net-ns/packet\t 193 kernel-ns/packet\t 40 rss-MB\t 28 rss-anon-MB\t 12 rss-file-MB\t 38.5 stats-ns/run\t 0.95 throughput-ratio\t 0.97 throughput-ratio-stats-off"
	m := benchLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatal("no match")
	}
	want := map[string]float64{
		"hot total CPU added, statistics off": 0,
		"hot kernel + user CPU":               0.6,
		"hot kernel + user CPU, net":          0,
		"hot in-kernel per packet, net":       0,
		"hot in-kernel per packet":            targetNsPerPacket,
		"hot collector RSS":                   0,
		"hot collector RSS anon":              0,
		"hot collector RSS file":              0,
		"hot statistics' own cost":            0,
		"hot throughput with/without":         0.98,
		"hot throughput, statistics off":      0.98,
	}
	rows := loadRows(m[1], parseMetrics(m[2]))
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for _, r := range rows {
		target, ok := want[r.name]
		if !ok || target != r.target {
			t.Errorf("row %+v: want target %v (known %v)", r, target, ok)
		}
	}
}
