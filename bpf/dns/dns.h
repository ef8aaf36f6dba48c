/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Records of the dns probe: a fixed header followed by the captured prefix
 * of the DNS message (UDP payload, or TCP segment payload with its framing). */
#ifndef EBPFFLOW_DNS_H
#define EBPFFLOW_DNS_H

/* The captured prefix: the EDNS buffer size of DNS Flag Day 2020, which
 * whole answers of almost every lookup fit in. */
enum dns_limits {
	DNS_CAPTURE = 1232,
};

/* The header of every ring buffer record; cap_len payload bytes follow it.
 * A record is sized to a class of capture lengths (see dns.bpf.c), so it
 * may end with unused bytes after the payload. */
struct dns_event {
	__u64 ts_ns;        /* bpf_ktime_get_boot_ns */
	__u64 cookie;       /* socket cookie of the local (asking) socket */
	__u64 cgroup_id;    /* its cgroup v2 id */
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u16 local_port;   /* host order */
	__u16 remote_port;
	__u32 seq;          /* TCP: sequence number of payload[0] */
	__u32 len;          /* L4 payload length on the wire */
	__u16 cap_len;      /* bytes of payload captured (<= DNS_CAPTURE) */
	__u8 family;        /* AF_INET / AF_INET6 */
	__u8 proto;         /* IPPROTO_UDP / IPPROTO_TCP */
	__u8 egress;        /* 1: sent by the local socket (a query) */
	__u8 pad[7];
};

#endif
