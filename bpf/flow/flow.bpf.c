// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Flow probe: per-socket-flow bytes and packets in both directions from
 * cgroup_skb ingress/egress on the cgroup v2 root, so every local socket in
 * any network namespace is seen. The programs always return 1: ebpfflow
 * observes, it never filters. */
#include "ebpfflow.bpf.h"
#include "flow.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_MPTCP_ 262
#define IPPROTO_NONE_ 59
#define TCP_SYN_ 0x02
#define TCP_ACK_ 0x10
#define EEXIST_ 17

/* Sized from Config.MaxFlows before load (default 64Ki entries, ~200 B each
 * with the hash and LRU bookkeeping: 12.5 MiB). One entry per local socket
 * and peer, and user space deletes finished flows every flush interval, so
 * it holds a busy node's concurrent flows. LRU so that a flood of short flows
 * evicts the least recently active entry (user space counts the eviction)
 * instead of blinding the probe; an LRU insert never fails for lack of room. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sock_flow_key);
	__type(value, struct sock_flow_stats);
} flows SEC(".maps");

/* Who created a socket: written by cgroup/sock_create in the creating
 * process, freed with the socket, and cloned to every socket accepted from a
 * listener (BPF_F_CLONE), so a server's connections carry its pid too. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct sock_owner);
} owners SEC(".maps");

/* Packet clock. bpf_ktime_get_coarse_ns is a helper call (~35 ns per packet
 * on a CPU with return-thunk mitigations); bpf_jiffies64 is inlined by the
 * verifier into one load. Stamps are CLOCK_MONOTONIC ns at tick resolution:
 * jiffies count ticks of tick_ns (set from CLOCK_MONOTONIC_COARSE's
 * resolution before load), and clock_offset, taken once from the coarse
 * clock at the first new flow, pins them to CLOCK_MONOTONIC. */
const volatile __u64 tick_ns = 4000000;
__u64 clock_offset = 0;

static __always_inline __u64 now_ns(void)
{
	return bpf_jiffies64() * tick_ns + clock_offset;
}

/* Only here so the enum reaches BTF, and Go through bpf2go -type. */
const enum flow_initiator unused_flow_initiator __attribute__((unused)) = FLOW_INITIATOR_UNKNOWN;

/* socket() runs in the creating process: remember who it was. The
 * bpf_get_current_* helpers are allowed in cgroup/sock_create (checked by the
 * verifier at load; the privileged tests assert the pid). MPTCP sockets are
 * kept too: Go (1.24+) listens with MPTCP by default, and their TCP subflows
 * are kernel sockets that never pass through this hook. */
SEC("cgroup/sock_create")
int flow_sock_create(struct bpf_sock *sk)
{
	if (sk->protocol != IPPROTO_TCP_ && sk->protocol != IPPROTO_UDP_ && sk->protocol != IPPROTO_MPTCP_)
		return 1;
	struct sock_owner *o = bpf_sk_storage_get(&owners, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!o) {
		stat_inc(STAT_MAP_FULL); /* storage allocation failed: pid 0 */
		return 1;
	}
	o->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(o->comm, sizeof(o->comm));
	return 1;
}

/* Copies the owner of a packet's socket into a new flow entry: the socket's
 * own (set at socket(), or cloned from its listener when accepted). An MPTCP
 * subflow is a kernel socket that never passed through socket(): it takes
 * its MPTCP socket's owner and keeps a copy, so that sockets accepted from a
 * subflow listener (MPTCP, or fallen back to plain TCP for a plain TCP
 * client) inherit it by BPF_F_CLONE. Request and timewait sockets have none. */
static __always_inline void set_owner(struct sock_flow_stats *st, struct bpf_sock *sk)
{
	struct sock_owner *o = bpf_sk_storage_get(&owners, sk, 0, 0);
	if (!o) {
		/* Resolved at load: dead code, removed by the verifier, on a
		 * kernel without MPTCP or older than the helper (5.19). */
		if (!bpf_core_type_exists(struct mptcp_sock) ||
		    !bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_skc_to_mptcp_sock))
			return;
		struct mptcp_sock *msk = bpf_skc_to_mptcp_sock(sk);
		if (!msk)
			return;
		o = bpf_sk_storage_get(&owners, msk, 0, 0);
		if (!o)
			return;
		struct sock_owner copy = *o;
		bpf_sk_storage_get(&owners, sk, &copy, BPF_SK_STORAGE_GET_F_CREATE);
	}
	st->pid = o->pid;
	__builtin_memcpy(st->comm, o->comm, sizeof(st->comm));
}

/* Copies len bytes at off from the packet: straight from the linear data
 * when it holds them (the common case, no helper call), else through
 * bpf_skb_load_bytes. */
static __always_inline int load(struct __sk_buff *skb, __u32 off, void *to, const __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	off &= 0x3ff; /* IP + extension headers never exceed this */
	if (data + off + len <= end) {
		__builtin_memcpy(to, data + off, len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

#define IPV6_MAX_EXT 4

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
		case 0:  /* hop-by-hop */
		case 43: /* routing */
		case 60: /* destination options */
			if (load(skb, *off, h, sizeof(h)))
				return -1;
			/* A lone jumbo payload option right after the IPv6 header. */
			if (*proto == 0 && *off == sizeof(struct ipv6hdr) && h[1] == 0 && h[2] == 0xC2)
				*jumbo = 8;
			*proto = h[0];
			*off += (h[1] + 1) * 8;
			if (*off > 0x3ff)
				return -1; /* beyond what load() addresses */
			break;
		case 44: /* fragment */
			if (load(skb, *off, h, sizeof(h)))
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

struct l4 {
	__u16 sport;
	__u16 dport;
	__u8 flags;
	__u8 hlen; /* transport header length */
};

/* Reads ports (and TCP flags / header length) at `off`. */
static __always_inline int parse_l4(struct __sk_buff *skb, __u32 off, __u8 proto, struct l4 *l4)
{
	if (proto == IPPROTO_TCP_) {
		__u8 h[14];
		if (load(skb, off, h, sizeof(h)))
			return -1;
		l4->sport = (h[0] << 8) | h[1];
		l4->dport = (h[2] << 8) | h[3];
		l4->hlen = (h[12] >> 4) * 4;
		l4->flags = h[13];
		return 0;
	}
	__u16 ports[2];
	if (load(skb, off, ports, sizeof(ports)))
		return -1;
	l4->sport = bpf_ntohs(ports[0]);
	l4->dport = bpf_ntohs(ports[1]);
	l4->hlen = 8;
	l4->flags = 0;
	return 0;
}

/* Copies the socket's smoothed RTT and retransmission count. They change as
 * the socket sends and as ACKs are processed (after ingress): each egress
 * packet sees them current, so only egress pays for the read. */
static __always_inline void tcp_state(struct sock_flow_stats *st, struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk); /* NULL unless a full TCP socket */
	if (!tp)
		return;
	st->srtt_us = tp->srtt_us >> 3;
	st->retrans = tp->total_retrans;
}

static __always_inline void account(struct __sk_buff *skb, bool egress)
{
	struct sock_flow_key key = {};
	union addr src = {}, dst = {};
	struct l4 l4 = {}; /* no undefined reads the verifier would refuse */
	__u32 l3len, jumbo = 0;
	__u8 proto;

	stat_inc(STAT_EVENTS);

	/* cgroup_skb data starts at the network header. */
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (load(skb, 0, &ip, sizeof(ip)) || ip.ihl < 5)
			goto parse_error;
		proto = ip.protocol;
		l3len = ip.ihl * 4;
		src.v4 = ip.saddr;
		dst.v4 = ip.daddr;
		key.family = AF_INET;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (load(skb, 0, &ip6, sizeof(ip6)))
			goto parse_error;
		proto = ip6.nexthdr;
		l3len = sizeof(ip6);
		if (ipv6_skip_ext(skb, &proto, &l3len, &jumbo))
			goto parse_error;
		__builtin_memcpy(src.v6, &ip6.saddr, 16);
		__builtin_memcpy(dst.v6, &ip6.daddr, 16);
		key.family = AF_INET6;
	} else {
		return; /* not IP: nothing to key a flow on */
	}
	if (proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_)
		return; /* ICMP & co. are not flows */
	if (parse_l4(skb, l3len, proto, &l4))
		goto parse_error;

	key.cookie = bpf_get_socket_cookie(skb);
	key.proto = proto;
	if (egress) {
		__builtin_memcpy(key.local_addr, src.v6, 16);
		__builtin_memcpy(key.remote_addr, dst.v6, 16);
		key.local_port = l4.sport;
		key.remote_port = l4.dport;
	} else {
		__builtin_memcpy(key.local_addr, dst.v6, 16);
		__builtin_memcpy(key.remote_addr, src.v6, 16);
		key.local_port = l4.dport;
		key.remote_port = l4.sport;
	}

	/* A GSO/GRO skb is one super-packet of `segs` wire packets that each
	 * carry the IP + L4 headers: count the wire. */
	__u32 segs = skb->gso_segs ? skb->gso_segs : 1;
	__u64 bytes = skb->len - jumbo + (__u64)(segs - 1) * (l3len - jumbo + l4.hlen);

	struct sock_flow_stats *st = bpf_map_lookup_elem(&flows, &key);
	if (!st) {
		/* The first new flow pins the packet clock to CLOCK_MONOTONIC,
		 * once (compare-and-swap), so no stamp ever goes backwards. */
		if (!clock_offset)
			__sync_val_compare_and_swap(&clock_offset, 0,
						    bpf_ktime_get_coarse_ns() - bpf_jiffies64() * tick_ns);
		__u64 now = now_ns();
		/* A new flow is inserted with this packet already counted: no
		 * second lookup. If another CPU inserted it first (-EEXIST), the
		 * packet is added to that entry below. */
		struct sock_flow_stats init = {
			.first_ns = now,
			.last_ns = now,
			.cgroup_id = bpf_skb_cgroup_id(skb),
			.tcp_flags = l4.flags,
		};
		if (egress) {
			init.tx_bytes = bytes;
			init.tx_packets = segs;
		} else {
			init.rx_bytes = bytes;
			init.rx_packets = segs;
		}
		bool opener = proto == IPPROTO_UDP_ ||
			      ((l4.flags & (TCP_SYN_ | TCP_ACK_)) == TCP_SYN_);
		if (opener)
			init.initiator = egress ? FLOW_INITIATOR_LOCAL : FLOW_INITIATOR_REMOTE;
		struct bpf_sock *sk = skb->sk;
		if (sk)
			set_owner(&init, sk);
		if (proto == IPPROTO_TCP_ && egress)
			tcp_state(&init, skb);
		long err = bpf_map_update_elem(&flows, &key, &init, BPF_NOEXIST);
		if (!err)
			return; /* counted by the insert */
		if (err != -EEXIST_) {
			stat_inc(STAT_MAP_FULL);
			return;
		}
		st = bpf_map_lookup_elem(&flows, &key);
		if (!st)
			return;
	}

	if (egress) {
		__sync_fetch_and_add(&st->tx_bytes, bytes);
		__sync_fetch_and_add(&st->tx_packets, segs);
	} else {
		__sync_fetch_and_add(&st->rx_bytes, bytes);
		__sync_fetch_and_add(&st->rx_packets, segs);
	}
	st->last_ns = now_ns();
	if (proto != IPPROTO_TCP_)
		return;
	st->tcp_flags |= l4.flags;
	if (egress)
		tcp_state(st, skb);
	return;

parse_error:
	stat_inc(STAT_PARSE_ERROR);
}

SEC("cgroup_skb/egress")
int flow_egress(struct __sk_buff *skb)
{
	account(skb, true);
	return 1;
}

SEC("cgroup_skb/ingress")
int flow_ingress(struct __sk_buff *skb)
{
	account(skb, false);
	return 1;
}
