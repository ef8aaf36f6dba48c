// Package dnsprobe captures the client side of DNS: every packet a local
// socket sends to port 53 or receives from it, UDP and TCP, with a bounded
// prefix of the DNS message, streamed through a ring buffer. Parsing and
// matching happen in dnsmatch.
//
// Its kernel side is bpf/dns/dns.bpf.h, run by the flow probe's packet
// programs (bpf/flow/flow.bpf.c): one program per packet does both, and the
// DNS part costs other packets a port compare. Load loads those programs
// for DNS alone; Of reads the capture of a flow probe loaded with DNS.
package dnsprobe
