// Package dnsprobe captures the client side of DNS: every packet a local
// socket sends to port 53 or receives from it, UDP and TCP, with a bounded
// prefix of the DNS message, from cgroup_skb programs on the cgroup v2 root,
// streamed through a ring buffer. Parsing and matching happen in dnsmatch.
//
// Its kernel side is bpf/dns/; bpf/gen.go generates the bindings.
package dnsprobe
