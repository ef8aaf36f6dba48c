// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Drop probe: every skb the kernel frees with a drop reason (tp_btf/kfree_skb)
 * is aggregated per {reason, location, tuple, device}; reasons user space
 * ignores (NOT_SPECIFIED by default) are filtered first. */
#include "ebpfflow.bpf.h"
#include "drop.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define IPV6_EXT_MAX 4 /* extension headers walked before giving up on L4 */

/* kfree_skb has carried rx_sk (the socket found by the receive lookup) since
 * 6.8; user space clears this on older kernels so the 4th argument is never
 * touched (the verifier skips the dead branch of a frozen constant). */
const volatile __u8 has_rx_sk = 1;

/* Indexed by drop reason: non-zero = ignore. User space sizes it to the
 * kernel's SKB_DROP_REASON_MAX; subsystem reasons (high 16 bits set) are
 * beyond it and always pass. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u8);
} ignore SEC(".maps");

/* Sized from Config.MaxEntries; user space deletes entries it has reported
 * idle, so this bounds the distinct drop keys of about one interval.
 * Plain hash, not LRU: a full map is counted (STAT_MAP_FULL), never hidden. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct drop_key);
	__type(value, struct drop_value);
} drops SEC(".maps");

/* What the byte count needs besides the key: whether it is IP and how long
 * the IP + L4 headers are (replicated per GSO segment). */
struct pkt {
	__u32 hdrs;
	bool ip;
};

/* One read from the network header covers IPv4 + TCP/UDP ports (no IP
 * options) and IPv6 + ports (no extension headers): the common cases cost a
 * single helper call. The head buffer always extends past the packet (the
 * skb_shared_info follows it), so a short packet does not fault. */
#define HDR_BUF 64
#define L4_NEED 14 /* ports, and the TCP data offset in byte 12 */

union hdr {
	__u8 b[HDR_BUF];
	struct iphdr v4;
	struct ipv6hdr v6;
};

static __always_inline int parse_l4(const unsigned char *head, __u16 nh, __u32 rel,
				    const union hdr *h, struct drop_key *k, struct pkt *pk)
{
	pk->hdrs = rel;
	if (k->proto != IPPROTO_TCP_ && k->proto != IPPROTO_UDP_)
		return 0; /* ICMP and others: no ports */
	__u8 l4[L4_NEED];
	if (rel <= HDR_BUF - L4_NEED) {
		/* Bound the very register used as the stack offset. */
		__u64 off = rel;
		barrier_var(off);
		off &= HDR_BUF - 1;
		if (off > HDR_BUF - L4_NEED)
			return -1;
		__builtin_memcpy(l4, &h->b[off], 4);
		l4[12] = h->b[off + 12];
	} else if (bpf_probe_read_kernel(l4, sizeof(l4), head + nh + rel)) {
		return -1;
	}
	k->sport = (__u16)l4[0] << 8 | l4[1];
	k->dport = (__u16)l4[2] << 8 | l4[3];
	pk->hdrs += k->proto == IPPROTO_TCP_ ? (l4[12] >> 4) * 4 : 8;
	return 0;
}

static __always_inline int parse_ipv4(const unsigned char *head, __u16 nh, __u16 th,
				      const union hdr *h, struct drop_key *k, struct pkt *pk)
{
	if (h->v4.version != 4 || h->v4.ihl < 5)
		return -1;
	k->family = AF_INET;
	k->proto = h->v4.protocol;
	pk->ip = true;
	__builtin_memcpy(k->saddr, &h->v4.saddr, 4);
	__builtin_memcpy(k->daddr, &h->v4.daddr, 4);
	if (bpf_ntohs(h->v4.frag_off) & 0x1fff)
		return 0; /* not the first fragment: no L4 header */
	/* transport_header equals network_header until ip_rcv_core sets it. */
	__u32 rel = (th != 0xffff && th > nh) ? th - nh : h->v4.ihl * 4;
	return parse_l4(head, nh, rel, h, k, pk);
}

static __always_inline int parse_ipv6(const unsigned char *head, __u16 nh,
				      const union hdr *h, struct drop_key *k, struct pkt *pk)
{
	if (h->v6.version != 6)
		return -1;
	k->family = AF_INET6;
	pk->ip = true;
	__builtin_memcpy(k->saddr, &h->v6.saddr, 16);
	__builtin_memcpy(k->daddr, &h->v6.daddr, 16);

	/* Walk the extension headers: transport_header alone does not say
	 * which protocol it points at. */
	__u8 next = h->v6.nexthdr;
	__u32 rel = sizeof(struct ipv6hdr);
#pragma unroll
	for (int i = 0; i < IPV6_EXT_MAX; i++) {
		if (next != IPV6_HOPOPTS && next != IPV6_ROUTING && next != IPV6_DSTOPTS &&
		    next != IPV6_FRAGMENT && next != IPV6_AH)
			break;
		__u8 ext[4];
		if (bpf_probe_read_kernel(ext, sizeof(ext), head + nh + rel))
			return -1;
		if (next == IPV6_FRAGMENT) {
			if (((__u16)ext[2] << 8 | ext[3]) & 0xfff8) {
				k->proto = ext[0];
				return 0; /* not the first fragment */
			}
			rel += 8;
		} else if (next == IPV6_AH) {
			rel += (ext[1] + 2) * 4;
		} else {
			rel += (ext[1] + 1) * 8;
		}
		next = ext[0];
	}
	k->proto = next;
	return parse_l4(head, nh, rel, h, k, pk);
}

/* Fills the tuple from the packet's headers. Returns 0 when the packet is
 * parsed or is not IP (zero tuple), <0 when IP headers could not be read. */
static __always_inline int parse(const struct sk_buff *skb, struct drop_key *k, struct pkt *pk)
{
	const unsigned char *head = skb->head;
	__u16 nh = skb->network_header;
	__u16 th = skb->transport_header;
	__u16 proto = bpf_ntohs(skb->protocol);

	/* Locally built skbs get skb->protocol only in __ip_local_out; a drop
	 * before that still has the IP header in place (network_header 0 is
	 * "never set" for those). */
	if (proto != ETH_P_IP && proto != ETH_P_IPV6 && !(proto == 0 && nh != 0))
		return 0;
	union hdr h;
	if (bpf_probe_read_kernel(&h, sizeof(h), head + nh))
		return -1;
	if (proto == 0) {
		if (h.b[0] >> 4 == 4)
			proto = ETH_P_IP;
		else if (h.b[0] >> 4 == 6)
			proto = ETH_P_IPV6;
		else
			return 0;
	}
	if (proto == ETH_P_IP)
		return parse_ipv4(head, nh, th, &h, k, pk);
	return parse_ipv6(head, nh, &h, k, pk);
}

static __always_inline __u64 sk_cgroup(const struct sock *sk)
{
	if (!sk)
		return 0;
	/* Only full sockets carry sk_cgrp_data (not TIME_WAIT/request socks). */
	__u8 st = sk->__sk_common.skc_state;
	if (st == TCP_TIME_WAIT || st == TCP_NEW_SYN_RECV)
		return 0;
	/* Direct (BTF) loads: cheaper than probe-read helpers in tp_btf. */
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;
	if (!cg)
		return 0;
	struct kernfs_node *kn = cg->kn;
	return kn ? kn->id : 0;
}

SEC("tp_btf/kfree_skb")
int drop_kfree_skb(unsigned long long *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	__u64 location = ctx[1];
	__u32 reason = (__u32)ctx[2];

	__u8 *skip = bpf_map_lookup_elem(&ignore, &reason);
	if (skip && *skip)
		return 0;
	stat_inc(STAT_EVENTS);

	struct drop_key k = {};
	k.location = location;
	k.reason = reason;
	struct net_device *dev = skb->dev;
	k.ifindex = dev ? dev->ifindex : skb->skb_iif;
	struct pkt pk = {};
	if (parse(skb, &k, &pk))
		stat_inc(STAT_PARSE_ERROR); /* still counted, with what was read */

	struct sock *sk = skb->sk;
	if (!sk && has_rx_sk)
		sk = (struct sock *)ctx[3];
	__u64 cgroup_id = sk_cgroup(sk);
	/* Bytes at the IP layer whatever the drop site: skb->data may point at
	 * the MAC header (TX, TC) or already past IP (UDP/TCP receive). */
	__u64 len = skb->len;
	if (pk.ip) {
		__s64 pulled = (__s64)(skb->data - skb->head) - skb->network_header;
		if ((__s64)len + pulled > 0)
			len += pulled;
	}
	/* A GSO/GRO skb stands for gso_segs packets on the wire, each with its
	 * own headers. */
	__u64 segs = 1;
	const unsigned char *end = skb->head + skb->end;
	struct skb_shared_info *shinfo = (struct skb_shared_info *)end;
	__u16 gso[2]; /* gso_size, gso_segs: adjacent, one read */
	if (!bpf_core_read(gso, sizeof(gso), &shinfo->gso_size) && gso[0] && gso[1] > 1) {
		segs = gso[1];
		len += (segs - 1) * pk.hdrs;
	}
	__u64 now = bpf_ktime_get_boot_ns();

	struct drop_value *v = bpf_map_lookup_elem(&drops, &k);
	if (!v) {
		struct drop_value nv = {
			.count = segs,
			.bytes = len,
			.last_seen = now,
			.cgroup_id = cgroup_id,
		};
		if (dev)
			bpf_probe_read_kernel_str(nv.ifname, sizeof(nv.ifname), dev->name);
		long err = bpf_map_update_elem(&drops, &k, &nv, BPF_NOEXIST);
		if (!err)
			return 0;
		if (err != -EEXIST_) {
			stat_inc(STAT_MAP_FULL);
			return 0;
		}
		v = bpf_map_lookup_elem(&drops, &k); /* another CPU inserted it first */
		if (!v)
			return 0;
	}
	__sync_fetch_and_add(&v->count, segs);
	__sync_fetch_and_add(&v->bytes, len);
	v->last_seen = now;
	if (cgroup_id)
		v->cgroup_id = cgroup_id;
	return 0;
}
