/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types shared by tcp.bpf.c and Go (via bpf2go -type). */
#ifndef EBPFFLOW_TCP_H
#define EBPFFLOW_TCP_H

/* Why a connection ended; values match record.CloseCause. */
enum tcp_close_cause {
	TCP_CAUSE_NONE = 0,         /* still open */
	TCP_CAUSE_FIN = 1,          /* orderly close (incl. entering TIME_WAIT) */
	TCP_CAUSE_RST_SENT = 2,     /* this socket sent a reset (abort, SO_LINGER 0, unread data) */
	TCP_CAUSE_RST_RECEIVED = 3, /* sk_err ECONNRESET/EPIPE, or a reset arrived */
	TCP_CAUSE_TIMEOUT = 4,      /* ETIMEDOUT (or soft error) or SYN_SENT closed without answer */
	TCP_CAUSE_REFUSED = 5,      /* ECONNREFUSED: connect answered with RST / ICMP unreachable */
};

/* Which end sent the SYN; values match record.Initiator. */
enum tcp_initiator {
	TCP_INITIATOR_UNKNOWN = 0,
	TCP_INITIATOR_LOCAL = 1,  /* SYN_SENT seen */
	TCP_INITIATOR_REMOTE = 2, /* SYN_RECV seen (child of a listener) */
};

/* One socket's lifecycle, keyed by socket cookie in the `socks` LRU map.
 * Ordered by size so the struct has no implicit padding. */
struct tcp_sock_info {
	__u64 cgroup_id;  /* cgroup v2 id of the socket (sk_cgrp_data) */
	__u64 opened_ns;  /* boottime of CLOSE->SYN_SENT/LISTEN or the SYN_RECV child; 0 if before the probe */
	__u64 closed_ns;  /* boottime of ->CLOSE; 0 while open */
	__u8 saddr[16];   /* local address: IPv4 in the first 4 bytes */
	__u8 daddr[16];   /* remote address */
	__u32 pid;        /* tgid in whose context connect()/listen() ran; 0 if unknown */
	__u32 srtt_us;    /* tcp_sock srtt_us >> 3 at the last event */
	__u32 retransmits;     /* tcp_sock total_retrans (segments), highest seen */
	__u32 resets_sent;     /* tcp_send_reset by this full socket */
	__u32 resets_received; /* tcp_receive_reset */
	__u16 sport;      /* local port, host order */
	__u16 dport;      /* remote port, host order */
	__u8 family;      /* AF_INET / AF_INET6 */
	__u8 state;       /* last TCP_* state */
	__u8 initiator;   /* enum tcp_initiator */
	__u8 close_cause; /* enum tcp_close_cause */
	char comm[16];
};

#endif
