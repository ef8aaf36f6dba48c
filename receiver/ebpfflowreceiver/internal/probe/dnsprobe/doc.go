// Package dnsprobe captures the client side of DNS: every packet a local
// socket sends to port 53 or receives from it, UDP and TCP, with a bounded
// prefix of the DNS message, from cgroup_skb programs on the cgroup v2 root,
// streamed through a ring buffer. Parsing and matching happen in dnsmatch.
package dnsprobe

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -type dns_event dns ../../../../../bpf/dns/dns.bpf.c -- -O2 -g -Wall -Werror -I../../../../../bpf/include
