// Package flowprobe counts bytes and packets of every TCP and UDP socket flow
// on the node, both directions, from cgroup_skb programs on the cgroup v2 root.
//
// Its kernel side is bpf/flow/; bpf/gen.go generates the bindings.
package flowprobe
