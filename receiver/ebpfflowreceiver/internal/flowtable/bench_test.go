package flowtable

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// BenchmarkUpdate measures the user-space aggregation of one flush with 10k
// TCP flows (each a flow sample and a tcp sample) plus 100 drop keys. The
// events/s metric counts samples folded per second on one core.
func BenchmarkUpdate(b *testing.B) {
	for _, bc := range []struct {
		name   string
		active int // percent of flows with traffic each flush
	}{{"10k-all-active", 100}, {"10k-10pct-active", 10}} {
		b.Run(bc.name, func(b *testing.B) {
			const n = 10000
			flows := make([]observed.FlowSample, n)
			socks := make([]observed.TCPSample, n)
			drops := make([]observed.DropSample, 100)
			for i := range flows {
				local := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(30000+i%20000))
				remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), 443)
				flows[i] = observed.FlowSample{Cookie: uint64(i + 1), Transport: observed.TransportTCP, Local: local, Remote: remote,
					CgroupID: uint64(100 + i%50), FirstSeen: t0, LastSeen: t0, Initiator: observed.InitiatorLocal}
				socks[i] = observed.TCPSample{Cookie: uint64(i + 1), Local: local, Remote: remote, State: observed.TCPEstablished,
					Initiator: observed.InitiatorLocal, OpenedAt: t0, SRTT: time.Millisecond}
			}
			for i := range drops {
				drops[i] = observed.DropSample{Reason: 5, Location: 1, Transport: observed.TransportTCP, Source: flows[i].Remote, Dest: flows[i].Local}
			}
			tb := New(testConfig())
			tb.Update(t0, flows, socks, drops) // steady state: the flows exist
			b.ReportAllocs()
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				for i := range flows {
					if i%100 < bc.active {
						flows[i].TxBytes += 1500
						flows[i].TxPackets++
						flows[i].RxBytes += 52
						flows[i].RxPackets++
					}
				}
				for i := range drops {
					drops[i].Count++
				}
				r := tb.Update(t0, flows, socks, drops)
				if len(r.Report.Flows) < n*bc.active/100 {
					b.Fatalf("records %d", len(r.Report.Flows))
				}
			}
			events := float64(b.N) * float64(len(flows)+len(socks)+len(drops))
			b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkUpdateChurn adds 1000 connections per flush that open and close
// within it (flow sample + closed tcp sample each) to 10k steady flows: the
// cost of identity resolution, final records and deletes.
func BenchmarkUpdateChurn(b *testing.B) {
	const n, churn = 10000, 1000
	flows := make([]observed.FlowSample, n+churn)
	socks := make([]observed.TCPSample, n+churn)
	for i := range n {
		local := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(30000+i%20000))
		remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), 443)
		flows[i] = observed.FlowSample{Cookie: uint64(i + 1), Transport: observed.TransportTCP, Local: local, Remote: remote,
			CgroupID: uint64(100 + i%50), Initiator: observed.InitiatorLocal}
		socks[i] = observed.TCPSample{Cookie: uint64(i + 1), Local: local, Remote: remote, State: observed.TCPEstablished, Initiator: observed.InitiatorLocal}
	}
	tb := New(testConfig())
	tb.Update(t0, flows[:n], socks[:n], nil)
	cookie := uint64(1 << 32)
	b.ReportAllocs()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for i := range n {
			flows[i].TxBytes += 100
			flows[i].TxPackets++
		}
		for j := range churn {
			cookie++
			local := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 3, byte(j >> 8), byte(j)}), uint16(40000+it%20000))
			remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 4, 0, 1}), 80)
			flows[n+j] = observed.FlowSample{Cookie: cookie, Transport: observed.TransportTCP, Local: local, Remote: remote,
				CgroupID: uint64(100 + j%50), TxBytes: 500, TxPackets: 5, RxBytes: 5000, RxPackets: 5, Initiator: observed.InitiatorLocal}
			socks[n+j] = observed.TCPSample{Cookie: cookie, Local: local, Remote: remote, State: observed.TCPClose, CloseCause: observed.CloseFIN, Initiator: observed.InitiatorLocal}
		}
		r := tb.Update(t0, flows, socks, nil)
		if len(r.DeleteTCP) != churn {
			b.Fatalf("deleted %d", len(r.DeleteTCP))
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(flows)+len(socks))/b.Elapsed().Seconds(), "events/s")
}
