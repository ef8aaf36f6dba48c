// Package flowprobe counts bytes and packets of every TCP and UDP socket flow
// on the node, both directions, from one cgroup_skb program per direction on
// the cgroup v2 root; the same programs capture DNS for dnsprobe (one
// program run and one parse per packet).
//
// Its kernel side is bpf/flow/ (and bpf/dns/dns.bpf.h); bpf/gen.go
// generates the bindings.
package flowprobe
