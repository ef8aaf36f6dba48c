/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* DNS capture for the packet programs (bpf/flow/flow.bpf.c): the client side
 * of every DNS exchange on the node. Packets a local socket sends to port 53
 * (queries) and receives from port 53 (answers), over UDP and TCP, go to user
 * space with a bounded prefix of their payload, where they are parsed and
 * matched. A resolver's own side (queries in, answers out) is not captured:
 * on a node with the resolver, each lookup is reported once, by the asking
 * socket. The packet programs run dns_capture only on packets a port check
 * picked, so DNS costs other packets a compare. */
#ifndef EBPFFLOW_DNS_BPF_H
#define EBPFFLOW_DNS_BPF_H

#include "cgroup_skb.bpf.h"
#include "dns.h"

#define DNS_PORT 53

/* Give the header and the capture limit BTF entries for bpf2go's Go types. */
const struct dns_event *unused_dns_event __attribute__((unused));
const enum dns_limits unused_dns_limits __attribute__((unused)) = DNS_CAPTURE;

/* Ring buffer fill (bytes) above which a record wakes the reader: a quarter
 * of the ring, set from Go. */
const volatile __u64 dns_wakeup_bytes = 2 << 20;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* set from Go (Config.RingBytes) */
} dns_events SEC(".maps");

/* The DNS capture's own loss counters (enum stat_index), apart from the flow
 * accounting's `stats`: each is its own probe in self-telemetry. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} dns_stats SEC(".maps");

static __always_inline void dns_stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&dns_stats, &idx);
	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

/* Is this packet DNS as the client sees it: sent to port 53, or received
 * from it. */
static __always_inline bool dns_port(bool egress, __u16 sport, __u16 dport)
{
	return egress ? dport == DNS_PORT : sport == DNS_PORT;
}

/* Copies the header and cap payload bytes at off into a record with room
 * for size payload bytes. A full ring is counted here; -1 if the payload
 * could not be read. */
static __always_inline int dns_emit(struct __sk_buff *skb, const struct dns_event *h, __u32 off, __u64 cap,
				    const __u32 size)
{
	struct dns_event *e = bpf_ringbuf_reserve(&dns_events, sizeof(*e) + size, 0);
	if (!e) {
		dns_stat_inc(STAT_RINGBUF_FULL);
		return 0;
	}
	/* Keep the compiler from folding the bounds check into the caller's:
	 * the verifier needs it on the register passed as the size. */
	asm volatile("" : "+r"(cap));
	if (cap < 1 || cap > size || bpf_skb_load_bytes(skb, off, e + 1, cap)) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return -1;
	}
	*e = *h;
	e->cap_len = cap;
	/* Waking the reader costs microseconds per record; it polls every
	 * 200 ms anyway, so wake it only when the ring fills up. */
	__u64 flags = bpf_ringbuf_query(&dns_events, BPF_RB_AVAIL_DATA) > dns_wakeup_bytes ? BPF_RB_FORCE_WAKEUP
											 : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
	return 0;
}

/* Captures a parsed TCP or UDP packet if it is DNS (dns_port). */
static __always_inline void dns_capture(struct __sk_buff *skb, bool egress, const struct l3 *l3, const struct l4 *l4)
{
	__u16 sport = l4_sport(l4), dport = l4_dport(l4);
	if (!dns_port(egress, sport, dport))
		return;
	__u8 proto = l4->proto;
	__u32 hlen = l4_hlen(l4);
	if (proto == IPPROTO_TCP_ && hlen < 20)
		goto parse_error;
	__u32 off = l3->off + hlen;
	if (skb->len <= off)
		return; /* a bare SYN, ACK or FIN: no DNS bytes */
	__u32 len = skb->len - off;

	struct dns_event h = {
		.ts_ns = bpf_ktime_get_boot_ns(),
		.cookie = bpf_get_socket_cookie(skb),
		.cgroup_id = bpf_skb_cgroup_id(skb),
		.seq = proto == IPPROTO_TCP_ ? l4_tcp_seq(l4) : 0,
		.len = len,
		.family = l3->family,
		.proto = proto,
		.egress = egress,
	};
	if (egress) {
		__builtin_memcpy(h.local_addr, l3->src.v6, 16);
		__builtin_memcpy(h.remote_addr, l3->dst.v6, 16);
		h.local_port = sport;
		h.remote_port = dport;
	} else {
		__builtin_memcpy(h.local_addr, l3->dst.v6, 16);
		__builtin_memcpy(h.remote_addr, l3->src.v6, 16);
		h.local_port = dport;
		h.remote_port = sport;
	}

	dns_stat_inc(STAT_EVENTS);
	/* bpf_ringbuf_reserve takes a constant size: a record is sized to the
	 * smallest class its payload fits, so that a 60-byte query does not
	 * take (and make user space copy) a 1.3 KB slot of the ring. Cheaper
	 * than full-size records, and than bpf_ringbuf_output from a per-CPU
	 * buffer, which a softirq interrupting an egress program on the same
	 * CPU could overwrite mid-copy. */
	__u64 cap = len < DNS_CAPTURE ? len : DNS_CAPTURE;
	int err;
	if (cap <= 128)
		err = dns_emit(skb, &h, off, cap, 128);
	else if (cap <= 256)
		err = dns_emit(skb, &h, off, cap, 256);
	else if (cap <= 512)
		err = dns_emit(skb, &h, off, cap, 512);
	else
		err = dns_emit(skb, &h, off, cap, DNS_CAPTURE);
	if (err)
		goto parse_error;
	return;

parse_error:
	dns_stat_inc(STAT_PARSE_ERROR);
}

#endif
