// Package tcpprobe follows every TCP socket's lifecycle in the kernel (state,
// initiator, close cause, resets, retransmits, smoothed RTT) keyed by socket
// cookie, from BTF tracepoints.
package tcpprobe

// The enums reach Go through the unused_* globals in tcp.bpf.c (bpf2go types globals itself).
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -type tcp_sock_info tcp ../../../../../bpf/tcp/tcp.bpf.c -- -O2 -g -Wall -Werror -I../../../../../bpf/include
