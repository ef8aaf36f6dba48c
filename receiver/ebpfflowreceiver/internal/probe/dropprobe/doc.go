// Package dropprobe aggregates the packets the kernel frees as dropped
// (tp_btf/kfree_skb) per drop reason, code location, packet tuple and device.
//
// Its kernel side is bpf/drop/; bpf/gen.go generates the bindings.
package dropprobe
