// Package dropprobe aggregates the packets the kernel frees as dropped
// (tp_btf/kfree_skb) per drop reason, code location, packet tuple and device.
package dropprobe

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -type drop_key -type drop_value drop ../../../../../bpf/drop/drop.bpf.c -- -O2 -g -Wall -Werror -I../../../../../bpf/include
