package engine

import (
	"net/netip"
	"testing"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// Lookups of an unnamed workload take the workload of their socket's flow
// record (named by the socket-owner program); named ones and lookups of
// another socket keep theirs.
func TestOwnDNS(t *testing.T) {
	client := netip.MustParseAddrPort("192.0.2.2:53917")
	server := netip.MustParseAddrPort("10.255.255.53:53")
	getent := observed.Workload{CgroupID: 7, PID: 4242, Executable: "getent", Service: "getent"}
	pod := observed.Workload{CgroupID: 9, ContainerID: "c1", PodUID: "p1", Service: "coredns"}
	lookups := []observed.DNSLookup{
		{Client: client, Server: server, Transport: observed.TransportUDP, Type: "A", Local: observed.Workload{CgroupID: 7}},
		{Client: client, Server: server, Transport: observed.TransportUDP, Type: "AAAA", Local: observed.Workload{CgroupID: 7}},
		{Client: netip.MustParseAddrPort("192.0.2.2:40000"), Server: server, Transport: observed.TransportUDP, Local: observed.Workload{CgroupID: 7}},
		{Client: client, Server: server, Transport: observed.TransportUDP, Local: pod},
	}
	flows := []observed.Flow{
		{Local: getent, LocalRole: observed.RoleClient, Transport: observed.TransportUDP, Source: client, Dest: server},
		{Local: getent, LocalRole: observed.RoleClient, Transport: observed.TransportTCP, Source: netip.MustParseAddrPort("192.0.2.2:40000"), Dest: server},
	}
	ownDNS(lookups, flows)
	for i, want := range []observed.Workload{getent, getent, {CgroupID: 7}, pod} {
		if lookups[i].Local != want {
			t.Errorf("lookup %d: workload %+v, want %+v", i, lookups[i].Local, want)
		}
	}
}
