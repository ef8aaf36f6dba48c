// Package bpf is the eBPF C of every probe, one directory per probe
// (<probe>/<probe>.bpf.c and <probe>.h, whose types reach Go through
// bpf2go -type), with include/ holding the pinned vmlinux.h, the libbpf
// headers and what the probes share (ebpfflow.bpf.h: loss counters and
// constants; cgroup_skb.bpf.h: L3/L4 parsing for cgroup_skb programs).
// dns/ is the DNS capture the flow probe's packet programs run
// (dns.bpf.h): one program per packet and direction does both.
//
// The lines below generate each probe's Go bindings, <probe>_bpfel.{go,o},
// into its loader package under receiver/ebpfflowreceiver/internal/probe.
// `make generate` runs them with the pinned clang-19; the output is
// committed.
package bpf

// The enums reach Go through the unused_* globals in flow.bpf.c and
// tcp.bpf.c (bpf2go types globals itself).
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -output-dir ../receiver/ebpfflowreceiver/internal/probe/flowprobe -go-package flowprobe -type sock_flow_key -type sock_flow_stats -type flow_line -type sock_owner -type dns_event flow flow/flow.bpf.c -- -O2 -g -Wall -Werror -Iinclude
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -output-dir ../receiver/ebpfflowreceiver/internal/probe/tcpprobe -go-package tcpprobe -type tcp_sock_info tcp tcp/tcp.bpf.c -- -O2 -g -Wall -Werror -Iinclude
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -output-dir ../receiver/ebpfflowreceiver/internal/probe/dropprobe -go-package dropprobe -type drop_key -type drop_value drop drop/drop.bpf.c -- -O2 -g -Wall -Werror -Iinclude
//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -output-dir ../receiver/ebpfflowreceiver/internal/probe/httpprobe -go-package httpprobe -type http_event -type http_conn -type http_conn_state http http/http.bpf.c -- -O2 -g -Wall -Werror -Iinclude
