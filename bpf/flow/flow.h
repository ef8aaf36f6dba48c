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
 * unconnected UDP socket yields one flow per peer. The key is 16 B so that
 * with the LRU map's 48 B element header it fills the element's first cache
 * line: ports in host order, and `hash` (flow_hash of family, protocol and
 * both addresses, plus a probe step 0..FLOW_PROBES-1 on a collision) instead
 * of the addresses, which the value keeps and the lookup checks exactly. */
struct sock_flow_key {
	__u64 cookie;
	__u16 local_port;
	__u16 remote_port;
	__u32 hash;
};

/* Cumulative counters of one flow. Bytes are IP-layer (IP header + payload);
 * a GSO/GRO skb counts as its wire segments. 128 B: the first 64 B are what
 * a packet reads and writes (counters, stamps, TCP state, and what the
 * exact match compares for IPv4), the second 64 B are written once, when the
 * flow is created. Addresses: network order, IPv4 in the first 4 bytes, split
 * into a head (first 4 bytes) and a tail (last 12). */
struct sock_flow_stats {
	__u64 tx_bytes;
	__u64 tx_packets;
	__u64 rx_bytes;
	__u64 rx_packets;
	__u64 last_ns;   /* CLOCK_MONOTONIC ns of the latest packet, at tick resolution */
	__u32 srtt_us;   /* tcp_sock srtt_us >> 3, read by egress packets once per clock
			  * tick and on every packet from the first FIN/RST on; TCP only */
	__u32 retrans;   /* tcp_sock total_retrans, likewise */
	__u32 tcp_tick;  /* packet clock tick (low 32 bits) of the latest TCP state read */
	__u8 initiator;  /* enum flow_initiator */
	__u8 tcp_flags;  /* union of TCP flags seen */
	__u8 family;     /* AF_INET / AF_INET6 */
	__u8 proto;      /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 local_head[4];
	__u8 remote_head[4];
	/* second cache line: written once */
	__u8 local_tail[12];
	__u8 remote_tail[12];
	__u64 first_ns;  /* ... of the first packet */
	__u64 cgroup_id; /* cgroup v2 id of the socket owner */
	__u32 pid;       /* process that created the socket (or its listener); 0 if unknown */
	char comm[16];
	__u8 pad[4];
};

/* Who created a socket: sk_storage written by cgroup/sock_create. */
struct sock_owner {
	__u32 pid;
	char comm[16];
};

#endif
