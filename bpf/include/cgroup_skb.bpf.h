/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* L3/L4 parsing for cgroup_skb programs (flow, dns, and any program that
 * joins them on the same hook): skb data starts at the network header.
 * Parse with parse_l3, then parse_l4 at l3.off. */
#ifndef EBPFFLOW_CGROUP_SKB_BPF_H
#define EBPFFLOW_CGROUP_SKB_BPF_H

#include "ebpfflow.bpf.h"

/* Header reads stay below this offset: IPv6 with its extension headers and
 * the L4 header fit, and the mask keeps every offset provably bounded. */
#define SKB_HDR_MAX 0x3ff
/* Extension headers walked before an IPv6 packet is taken as it is. */
#define IPV6_MAX_EXT 4

/* Copies len bytes at off from the packet: straight from the linear data
 * when it holds them (the common case, no helper call), else through
 * bpf_skb_load_bytes. */
static __always_inline int skb_load(struct __sk_buff *skb, __u32 off, void *to, const __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	off &= SKB_HDR_MAX;
	if (data + off + len <= end) {
		__builtin_memcpy(to, data + off, len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* Skips IPv6 extension headers (bounded). BIG TCP super-packets carry a
 * Hop-by-Hop jumbo header that segmentation removes: its length is returned
 * in *jumbo so the wire bytes exclude it. A non-first fragment has no L4
 * header: reported as IPPROTO_NONE. (Local sockets' packets are seen before
 * fragmentation and after reassembly, so fragments are not expected.) */
static __always_inline int ipv6_skip_ext(struct __sk_buff *skb, __u8 *proto, __u32 *off, __u32 *jumbo)
{
	for (int i = 0; i < IPV6_MAX_EXT; i++) {
		__u8 h[4];
		switch (*proto) {
		case IPV6_HOPOPTS:
		case IPV6_ROUTING:
		case IPV6_DSTOPTS:
			if (skb_load(skb, *off, h, sizeof(h)))
				return -1;
			/* A lone jumbo payload option right after the IPv6 header. */
			if (*proto == IPV6_HOPOPTS && *off == sizeof(struct ipv6hdr) && h[1] == 0 && h[2] == 0xC2)
				*jumbo = 8;
			*proto = h[0];
			*off += (h[1] + 1) * 8;
			if (*off > SKB_HDR_MAX)
				return -1; /* beyond what skb_load addresses */
			break;
		case IPV6_FRAGMENT:
			if (skb_load(skb, *off, h, sizeof(h)))
				return -1;
			/* A later fragment's payload is no transport header. */
			*proto = ((h[2] << 8 | h[3]) & 0xFFF8) ? IPPROTO_NONE_ : h[0];
			*off += 8;
			break;
		default:
			return 0;
		}
	}
	return 0;
}

/* The network layer of a packet. */
struct l3 {
	union addr src, dst;
	__u32 off;   /* offset of the L4 header */
	__u32 jumbo; /* bytes of a BIG TCP jumbo header that are not on the wire */
	__u8 family; /* AF_INET / AF_INET6 */
	__u8 proto;  /* IPPROTO_*: the protocol after any IPv6 extension headers */
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IP = 1, /* neither IPv4 nor IPv6: nothing to parse */
	PARSE_ERROR = -1, /* IP, but the headers could not be read */
};

/* Reads the IPv4 or IPv6 header and, for IPv6, skips extension headers.
 * Every field is set on PARSE_OK (an IPv4 address padded with zeros), so
 * callers need not clear l3 first: this runs for every packet. */
static __always_inline int parse_l3(struct __sk_buff *skb, struct l3 *l3)
{
	l3->jumbo = 0;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (skb_load(skb, 0, &ip, sizeof(ip)) || ip.ihl < 5)
			return PARSE_ERROR;
		l3->src = (union addr){};
		l3->dst = (union addr){};
		l3->proto = ip.protocol;
		l3->off = ip.ihl * 4;
		l3->src.v4 = ip.saddr;
		l3->dst.v4 = ip.daddr;
		l3->family = AF_INET;
		return PARSE_OK;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (skb_load(skb, 0, &ip6, sizeof(ip6)))
			return PARSE_ERROR;
		l3->proto = ip6.nexthdr;
		l3->off = sizeof(ip6);
		if (ipv6_skip_ext(skb, &l3->proto, &l3->off, &l3->jumbo))
			return PARSE_ERROR;
		__builtin_memcpy(l3->src.v6, &ip6.saddr, 16);
		__builtin_memcpy(l3->dst.v6, &ip6.daddr, 16);
		l3->family = AF_INET6;
		return PARSE_OK;
	}
	return PARSE_NOT_IP;
}

/* The transport header of a TCP or UDP packet as read: the accessors below
 * decode the fields a program uses where it uses them, so a program that
 * looks only at ports (dns, for every packet) pays for nothing else. */
struct l4 {
	__u8 h[14]; /* TCP: up to the flags byte; UDP: the ports only */
	__u8 proto; /* IPPROTO_TCP_ or IPPROTO_UDP_ */
};

/* Reads the TCP or UDP header at off. */
static __always_inline int parse_l4(struct __sk_buff *skb, __u32 off, __u8 proto, struct l4 *l4)
{
	l4->proto = proto;
	if (proto == IPPROTO_TCP_)
		return skb_load(skb, off, l4->h, 14) ? -1 : 0;
	return skb_load(skb, off, l4->h, 4) ? -1 : 0;
}

static __always_inline __u16 l4_sport(const struct l4 *l4)
{
	return (l4->h[0] << 8) | l4->h[1];
}

static __always_inline __u16 l4_dport(const struct l4 *l4)
{
	return (l4->h[2] << 8) | l4->h[3];
}

/* Transport header length: TCP's data offset, 8 for UDP. */
static __always_inline __u32 l4_hlen(const struct l4 *l4)
{
	return l4->proto == IPPROTO_TCP_ ? (l4->h[12] >> 4) * 4 : 8;
}

/* TCP flags; 0 for UDP. */
static __always_inline __u8 l4_tcp_flags(const struct l4 *l4)
{
	return l4->proto == IPPROTO_TCP_ ? l4->h[13] : 0;
}

/* TCP sequence number; only for TCP. */
static __always_inline __u32 l4_tcp_seq(const struct l4 *l4)
{
	return (__u32)l4->h[4] << 24 | (__u32)l4->h[5] << 16 | (__u32)l4->h[6] << 8 | l4->h[7];
}

#endif
