package clusterview

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// fillView adds n pods of n/10 Deployments in 20 namespaces on n/30 nodes,
// as a list, and returns their addresses.
func fillView(tb testing.TB, v *View, n int) []netip.AddrPort {
	tb.Helper()
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	list := make([]any, 0, n)
	addrs := make([]netip.AddrPort, 0, n)
	for i := range n {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		deploy := fmt.Sprintf("service-%04d", i/10)
		hash := "7d9c5b8f4"
		p := makePod(podSpec{
			name:    fmt.Sprintf("%s-%s-%05x", deploy, hash, i),
			ns:      fmt.Sprintf("team-%02d", i%20),
			uid:     fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i),
			node:    fmt.Sprintf("node-%04d", i/30),
			ip:      ip.String(),
			created: created,
			owner:   controller("ReplicaSet", deploy+"-"+hash),
			labels:  map[string]string{podTemplateHash: hash, "app": deploy},
		})
		list = append(list, p)
		addrs = append(addrs, netip.AddrPortFrom(ip, 8080))
	}
	if err := storeOf(v, ResourcePods).Replace(list, "1"); err != nil {
		tb.Fatal(err)
	}
	return addrs
}

// BenchmarkResolve is the cost of naming one address (a flow's peer) in a
// view of 10k pods.
func BenchmarkResolve(b *testing.B) {
	v := New(Config{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	addrs := fillView(b, v, 10000)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if !v.Resolve(6, addrs[i%len(addrs)], now).Found() {
			b.Fatal("not found")
		}
		i++
	}
}

// BenchmarkResolveMiss is the cost for an address the view does not know
// (egress to the internet).
func BenchmarkResolveMiss(b *testing.B) {
	v := New(Config{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	fillView(b, v, 10000)
	a := netip.MustParseAddrPort("93.184.216.34:443")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if v.Resolve(6, a, now).Found() {
			b.Fatal("found")
		}
	}
}

// BenchmarkViewMemory reports the heap the view holds per pod (the decoded
// objects are garbage once applied) as bytes/pod. The figure for a live API
// server, reflectors and decoding included, comes from tests/kube/viewbench.
func BenchmarkViewMemory(b *testing.B) {
	const n = 20000
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var per float64
	for b.Loop() {
		v := New(Config{})
		before := heap()
		fillView(b, v, n)
		after := heap()
		per = float64(after-before) / n
		runtime.KeepAlive(v)
	}
	b.ReportMetric(per, "bytes/pod")
}
