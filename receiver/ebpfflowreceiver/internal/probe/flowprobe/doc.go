// Package flowprobe counts bytes and packets of every TCP and UDP socket flow
// on the node, both directions, from cgroup_skb programs on the cgroup v2 root.
package flowprobe

// The enum reaches Go through the unused_flow_initiator global in flow.bpf.c.
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -type sock_flow_key -type sock_flow_stats -type sock_owner flow ../../../../../bpf/flow/flow.bpf.c -- -O2 -g -Wall -Werror -I../../../../../bpf/include
