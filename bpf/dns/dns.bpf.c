// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* dns probe: the client side of every DNS exchange on the node. cgroup_skb
 * programs on the cgroup v2 root see each local socket's packets; those sent
 * to port 53 (queries) and received from port 53 (answers), over UDP and TCP,
 * go to user space with a bounded prefix of their payload, where they are
 * parsed and matched. A resolver's own side (queries in, answers out) is not
 * captured: on a node with the resolver, each lookup is reported once, by
 * the asking socket. Observes only: every packet is allowed. */
#include "ebpfflow.bpf.h"
#include "dns.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define DNS_PORT 53
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

/* Give the header and the capture limit BTF entries for bpf2go's Go types. */
const struct dns_event *unused_dns_event __attribute__((unused));
const enum dns_limits unused_dns_limits __attribute__((unused)) = DNS_CAPTURE;

/* Ring buffer fill (bytes) above which a record wakes the reader: a quarter
 * of the ring, set from Go. */
const volatile __u64 wakeup_bytes = 2 << 20;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* set from Go (Config.RingBytes) */
} events SEC(".maps");

/* Copies len bytes at off from the packet: straight from the linear data
 * when it holds them, else through bpf_skb_load_bytes. */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, const __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	off &= 0xff; /* IP header + options / IPv6 header */
	if (data + off + len <= end) {
		__builtin_memcpy(to, data + off, len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* Copies the header and cap payload bytes at off into a record with room
 * for size payload bytes. A full ring is counted here; -1 if the payload
 * could not be read. */
static __always_inline int emit(struct __sk_buff *skb, const struct dns_event *h, __u32 off, __u64 cap,
				const __u32 size)
{
	struct dns_event *e = bpf_ringbuf_reserve(&events, sizeof(*e) + size, 0);
	if (!e) {
		stat_inc(STAT_RINGBUF_FULL);
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
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										   : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
	return 0;
}

static __always_inline void capture(struct __sk_buff *skb, bool egress)
{
	union addr src = {}, dst = {};
	__u32 l3len;
	__u8 proto, family;

	/* cgroup_skb data starts at the network header. */
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (load(skb, 0, &ip, sizeof(ip)) || ip.ihl < 5)
			goto parse_error;
		proto = ip.protocol;
		l3len = ip.ihl * 4;
		src.v4 = ip.saddr;
		dst.v4 = ip.daddr;
		family = AF_INET;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (load(skb, 0, &ip6, sizeof(ip6)))
			goto parse_error;
		/* DNS behind IPv6 extension headers is not looked for. */
		proto = ip6.nexthdr;
		l3len = sizeof(ip6);
		__builtin_memcpy(src.v6, &ip6.saddr, 16);
		__builtin_memcpy(dst.v6, &ip6.daddr, 16);
		family = AF_INET6;
	} else {
		return;
	}
	if (proto != IPPROTO_UDP_ && proto != IPPROTO_TCP_)
		return;

	/* Ports, and for TCP the sequence number and header length. */
	__u8 l4[14];
	__u32 hlen = 8, seq = 0;
	if (proto == IPPROTO_TCP_ ? load(skb, l3len, l4, 14) : load(skb, l3len, l4, 4))
		goto parse_error;
	__u16 sport = (l4[0] << 8) | l4[1];
	__u16 dport = (l4[2] << 8) | l4[3];
	if (egress ? dport != DNS_PORT : sport != DNS_PORT)
		return;
	if (proto == IPPROTO_TCP_) {
		seq = (__u32)l4[4] << 24 | (__u32)l4[5] << 16 | (__u32)l4[6] << 8 | l4[7];
		hlen = (l4[12] >> 4) * 4;
		if (hlen < 20)
			goto parse_error;
	}
	__u32 off = l3len + hlen;
	if (skb->len <= off)
		return; /* a bare SYN, ACK or FIN: no DNS bytes */
	__u32 len = skb->len - off;

	struct dns_event h = {
		.ts_ns = bpf_ktime_get_boot_ns(),
		.cookie = bpf_get_socket_cookie(skb),
		.cgroup_id = bpf_skb_cgroup_id(skb),
		.seq = seq,
		.len = len,
		.family = family,
		.proto = proto,
		.egress = egress,
	};
	if (egress) {
		__builtin_memcpy(h.local_addr, src.v6, 16);
		__builtin_memcpy(h.remote_addr, dst.v6, 16);
		h.local_port = sport;
		h.remote_port = dport;
	} else {
		__builtin_memcpy(h.local_addr, dst.v6, 16);
		__builtin_memcpy(h.remote_addr, src.v6, 16);
		h.local_port = dport;
		h.remote_port = sport;
	}

	stat_inc(STAT_EVENTS);
	/* bpf_ringbuf_reserve takes a constant size: a record is sized to the
	 * smallest class its payload fits, so that a 60-byte query does not
	 * take (and make user space copy) a 1.3 KB slot of the ring. Cheaper
	 * than full-size records, and than bpf_ringbuf_output from a per-CPU
	 * buffer, which a softirq interrupting an egress program on the same
	 * CPU could overwrite mid-copy. */
	__u64 cap = len < DNS_CAPTURE ? len : DNS_CAPTURE;
	int err;
	if (cap <= 128)
		err = emit(skb, &h, off, cap, 128);
	else if (cap <= 256)
		err = emit(skb, &h, off, cap, 256);
	else if (cap <= 512)
		err = emit(skb, &h, off, cap, 512);
	else
		err = emit(skb, &h, off, cap, DNS_CAPTURE);
	if (err)
		goto parse_error;
	return;

parse_error:
	stat_inc(STAT_PARSE_ERROR);
}

SEC("cgroup_skb/egress")
int dns_egress(struct __sk_buff *skb)
{
	capture(skb, true);
	return 1;
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	capture(skb, false);
	return 1;
}
