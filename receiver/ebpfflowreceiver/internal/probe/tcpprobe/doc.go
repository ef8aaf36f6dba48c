// Package tcpprobe follows every TCP socket's lifecycle in the kernel (state,
// initiator, close cause, resets, retransmits, smoothed RTT) keyed by socket
// cookie, from BTF tracepoints.
//
// Its kernel side is bpf/tcp/; bpf/gen.go generates the bindings.
package tcpprobe
