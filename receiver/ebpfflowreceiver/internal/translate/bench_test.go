package translate

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/record"
)

// benchReport is one flush of 10k active flows spread over 100 pods, each
// client talking to one of 50 server ports.
func benchReport(at time.Time) record.Report {
	r := record.Report{Time: at, Flows: make([]record.Flow, 0, 10000)}
	for i := range 10000 {
		pod := i % 100
		w := record.Workload{
			CgroupID:    uint64(1000 + pod),
			CgroupPath:  fmt.Sprintf("/kubepods/pod%04d/c%04d", pod, pod),
			ContainerID: fmt.Sprintf("c%04d", pod),
			PodUID:      fmt.Sprintf("pod%04d", pod),
			PodIP:       netip.AddrFrom4([4]byte{10, 244, 0, byte(pod)}),
		}
		r.Flows = append(r.Flows, record.Flow{
			Local: w, Transport: record.TransportTCP, LocalRole: record.RoleClient,
			Source:      netip.AddrPortFrom(w.PodIP, uint16(30000+i)),
			Dest:        netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 96, 0, byte(i % 7)}), uint16(8000+i%50)),
			SourceBytes: 1000, SourcePackets: 10, DestBytes: 5000, DestPackets: 8,
			State: record.TCPEstablished, SRTT: time.Duration(100+i%1000) * time.Microsecond,
			Scope: record.ScopeCluster, Start: at.Add(-time.Minute), End: at,
		})
	}
	return r
}

func BenchmarkLogs10kFlows(b *testing.B) {
	tr := New(t0, "node", "host")
	r := benchReport(t1)
	b.ReportAllocs()
	for b.Loop() {
		_ = tr.Logs(r)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/flow")
}

func BenchmarkMetrics10kFlows(b *testing.B) {
	tr := New(t0, "node", "host")
	r := benchReport(t1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r.Time = t1.Add(time.Duration(i) * time.Second)
		_ = tr.Metrics(r)
	}
	b.ReportMetric(float64(tr.Series()), "series")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/flow")
}
