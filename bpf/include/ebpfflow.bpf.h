/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by every ebpfflow probe: loss counters and the constants vmlinux.h
 * lacks (macros do not reach BTF). Each probe object gets its own copy of
 * the maps; user space reads them through
 * receiver/ebpfflowreceiver/internal/probe. Packet parsing for cgroup_skb
 * programs is in cgroup_skb.bpf.h. */
#ifndef EBPFFLOW_BPF_H
#define EBPFFLOW_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

/* Indexes of the per-CPU `stats` array. Loss is telemetry: every event the
 * kernel side could not record is counted under its cause. */
enum stat_index {
	STAT_EVENTS = 0,       /* events the probe handled (packets, state changes, drops) */
	STAT_MAP_FULL = 1,     /* an aggregation map refused a new entry */
	STAT_RINGBUF_FULL = 2, /* bpf_ringbuf_reserve failed */
	STAT_PARSE_ERROR = 3,  /* headers could not be read or were not IPv4/IPv6 + TCP/UDP */
	STAT_MAX = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

/* Address as the kernel stores it: IPv4 in the first 4 bytes (network order),
 * IPv6 in all 16. `family` says which (AF_INET=2, AF_INET6=10). */
union addr {
	__u8 v6[16];
	__u32 v4;
};

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
/* IPPROTO_* are enum values in vmlinux.h only where the kernel has them as
 * such; these are the ones every probe can use. */
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_NONE_ 59
#define IPPROTO_MPTCP_ 262
/* IPv6 extension headers (next-header values). */
#define IPV6_HOPOPTS 0
#define IPV6_ROUTING 43
#define IPV6_FRAGMENT 44
#define IPV6_AH 51
#define IPV6_DSTOPTS 60
#define EEXIST_ 17

#endif
