/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types shared by flow.bpf.c and Go (via bpf2go -type). */
#ifndef EBPFFLOW_FLOW_H
#define EBPFFLOW_FLOW_H

/* Which end opened the flow; values match record.Initiator. */
enum flow_initiator {
	FLOW_INITIATOR_UNKNOWN = 0, /* first packet seen was mid-connection */
	FLOW_INITIATOR_LOCAL = 1,   /* local socket sent the SYN / first datagram */
	FLOW_INITIATOR_REMOTE = 2,  /* remote end sent the SYN / first datagram */
};

/* One socket flow: a socket cookie plus the local/remote pair, so an
 * unconnected UDP socket yields one flow per peer. Ports in host order,
 * IPv4 addresses in the first 4 bytes (network order). */
struct sock_flow_key {
	__u64 cookie;
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u16 local_port;
	__u16 remote_port;
	__u8 family; /* AF_INET / AF_INET6 */
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad[2];
};

/* Cumulative counters of one flow. Bytes are IP-layer (IP header + payload);
 * a GSO/GRO skb counts as its wire segments. */
/* Laid out by who writes what, one cache line each. A flow's egress and
 * ingress packets usually run on different CPUs (a veth or loopback peer's
 * receive runs on the sender's CPU), so a line both directions write moves
 * between them on every packet, and the key compare of the next lookup pays
 * the miss. With the map's 48 B header and the 48 B key, the value starts
 * 32 B into the entry's second line: that rest holds what is written once,
 * at the insert; each direction's counters, latest stamp and TCP flags fill
 * a line of their own (the third egress, with the TCP state, the fourth
 * ingress; 256 B an entry). The stamps and flags are per direction because
 * with many flows every packet of a flow falls in a new clock tick: one
 * shared stamp would be written by both directions on every packet. User
 * space takes the later stamp and the union of the flags. */
struct sock_flow_stats {
	/* Written once, at the insert. */
	__u64 first_ns;  /* CLOCK_MONOTONIC ns of the first packet, at tick resolution */
	__u64 cgroup_id; /* cgroup v2 id of the socket owner */
	__u32 pid;       /* process that created the socket (or its listener); 0 if unknown */
	__u8 initiator;  /* enum flow_initiator */
	__u8 pad[11];
	/* Written by egress packets. */
	__u64 tx_bytes;
	__u64 tx_packets;
	__u64 tx_last_ns; /* stamp of the latest egress packet; 0 if none */
	__u32 srtt_us;   /* tcp_sock srtt_us >> 3, read by egress packets once per clock
			  * tick and on every packet once the socket leaves ESTABLISHED; TCP only */
	__u32 retrans;   /* tcp_sock total_retrans, likewise */
	__u32 tcp_tick;  /* packet clock tick (low 32 bits) of the latest TCP state read */
	__u8 tx_flags;   /* union of the TCP flags of egress packets */
	__u8 pad2[11];
	char comm[16];
	/* Written by ingress packets. */
	__u64 rx_bytes;
	__u64 rx_packets;
	__u64 rx_last_ns; /* stamp of the latest ingress packet; 0 if none */
	__u8 rx_flags;    /* union of the TCP flags of ingress packets */
	__u8 pad3[39];
};
_Static_assert(sizeof(struct sock_flow_stats) == 160, "sock_flow_stats: one line per writer");
_Static_assert(__builtin_offsetof(struct sock_flow_stats, tx_bytes) == 32, "egress line starts at the entry's third line");
_Static_assert(__builtin_offsetof(struct sock_flow_stats, rx_bytes) == 96, "ingress line starts at the entry's fourth line");

/* One direction of one connected TCP socket's counters, in a direct-mapped
 * array indexed by the socket cookie's low bits (tx_lines, rx_lines): a
 * packet whose socket owns its line counts there with no hash, no key
 * compare and one cache line touched, instead of the bucket and three lines
 * of a flow entry. The flow entry still holds the flow's identity and what
 * was counted before the line was claimed, or while another socket held it;
 * user space adds the two. Only sockets with one peer (flow_line.peer) take
 * lines: not listeners, nor closed or control sockets. A line is free at 0; FLOW_LINE_DEAD marks a line
 * user space released (its flow was reported and deleted): its socket never
 * takes it again, any other may. FLOW_LINE_BUSY holds it while a packet
 * claims it, so nothing counts into half-reset fields. */
#define FLOW_LINE_DEAD (1ULL << 63)
#define FLOW_LINE_BUSY (~0ULL >> 1)
struct flow_line {
	__u64 cookie;   /* socket owning the line; 0 free; FLOW_LINE_DEAD bit: released */
	__u64 bytes;
	__u64 packets;
	__u64 last_ns;  /* stamp of the latest packet */
	__u32 srtt_us;  /* egress lines: tcp_sock srtt_us >> 3, as in sock_flow_stats */
	__u32 retrans;  /* egress lines: tcp_sock total_retrans */
	__u32 tcp_tick; /* egress lines: tick of the latest TCP state read; 0 none */
	__u8 flags;     /* union of the TCP flags counted here */
	__u8 pad[3];
	/* The connection: a socket that failed to connect may connect again,
	 * elsewhere, under the same cookie. (remote address folded to 32 bits
	 * by xor of its words) << 32 | local port << 16 | remote port. */
	__u64 peer;
	__u64 pad2;
};
_Static_assert(sizeof(struct flow_line) == 64, "flow_line: one cache line");

/* Who created a socket: sk_storage written by cgroup/sock_create. */
struct sock_owner {
	__u32 pid;
	char comm[16];
};

#endif
