// Package httpprobe captures what local processes write to and read from
// TCP sockets, for the HTTP engine (httpmatch) to parse: from syscall
// tracepoints (read, write, readv, writev, sendto, recvfrom, sendmsg,
// recvmsg, sendfile) and one BTF tracepoint (TCP state changes), no
// kprobes. Each call on a TCP socket becomes an httpmatch.Chunk with the
// socket cookie, the TCP sequence numbers of both directions read from
// tcp_sock, the bytes moved and a bounded prefix of them; a connection's
// first call also reports its addresses and cgroup, its close a close.
// Connections user space finds not to be HTTP are flagged in the kernel
// (Ignore) and their bytes are no longer copied; a range of a connection's
// bytes user space knows to be message body (SkipBody) is reported call by
// call with sizes and sequence numbers only.
//
// Its kernel side is bpf/http/; bpf/gen.go generates the bindings.
package httpprobe
