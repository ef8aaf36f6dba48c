/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by every ebpfflow probe: loss counters and ring buffer output.
 * Each probe object gets its own copy of these maps; user space reads them
 * through receiver/ebpfflowreceiver/internal/probe. */
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
#define IPPROTO_ICMPV6_ 58

#endif
