// Package flowprobe counts bytes and packets of every TCP and UDP socket flow
// on the node, both directions, from one cgroup_skb program per direction on
// the cgroup v2 root; the same programs capture DNS for dnsprobe (one
// program run and one parse per packet).
//
// A flow is an entry of an LRU hash map keyed by socket cookie and peer. A
// connected TCP socket, which has one peer, counts its packets in a line of
// its own instead once it holds one (a direct-mapped array per direction,
// indexed by the cookie: one cache line per packet, no hash); Each (and
// Snapshot) adds each line to its flow's entry and Delete releases it
// (lines.go).
//
// Its kernel side is bpf/flow/ (and bpf/dns/dns.bpf.h); bpf/gen.go
// generates the bindings.
package flowprobe
