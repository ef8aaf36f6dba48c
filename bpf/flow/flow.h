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
 * receive runs on the sender's CPU), so counters of both directions on one
 * line bounced it between them on every packet, and the key compare of the
 * next lookup paid the miss. With the map's 48 B header and the 48 B key, the
 * value starts 32 B into the entry's second line: that rest holds what is
 * read on every packet but written once per clock tick at most; the egress
 * counters and TCP state fill the third line, the ingress counters the fourth
 * (256 B an entry). */
struct sock_flow_stats {
	/* Read-mostly: set at the first packet, or on change. */
	__u64 first_ns;  /* CLOCK_MONOTONIC ns of the first packet, at tick resolution */
	__u64 last_ns;   /* ... of the latest packet */
	__u64 cgroup_id; /* cgroup v2 id of the socket owner */
	__u32 tcp_tick;  /* packet clock tick (low 32 bits) of the latest TCP state read */
	__u8 initiator;  /* enum flow_initiator */
	__u8 tcp_flags;  /* union of TCP flags seen */
	__u8 pad[2];
	/* Written by egress packets. */
	__u64 tx_bytes;
	__u64 tx_packets;
	__u32 srtt_us;   /* tcp_sock srtt_us >> 3, read by egress packets once per clock
			  * tick and on every packet from the first FIN/RST on; TCP only */
	__u32 retrans;   /* tcp_sock total_retrans, likewise */
	__u32 pid;       /* process that created the socket (or its listener); 0 if unknown */
	char comm[16];
	__u8 pad2[20];
	/* Written by ingress packets. */
	__u64 rx_bytes;
	__u64 rx_packets;
	__u8 pad3[48];
};
_Static_assert(sizeof(struct sock_flow_stats) == 160, "sock_flow_stats: one line per writer");

/* Who created a socket: sk_storage written by cgroup/sock_create. */
struct sock_owner {
	__u32 pid;
	char comm[16];
};

#endif
