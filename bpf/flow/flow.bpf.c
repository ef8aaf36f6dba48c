// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Packet probe: per-socket-flow bytes and packets in both directions, and
 * DNS capture (bpf/dns/dns.bpf.h), from one cgroup_skb program per direction
 * on the cgroup v2 root, so every local socket in any network namespace is
 * seen and each packet pays for one program run and one parse; DNS costs
 * other packets a port compare. The programs always return 1: ebpfflow
 * observes, it never filters. */
#include "cgroup_skb.bpf.h"
#include "flow.h"
#include "../dns/dns.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TCP_FIN_ 0x01
#define TCP_SYN_ 0x02
#define TCP_RST_ 0x04
#define TCP_ACK_ 0x10

/* What the programs do, set before load: flow accounting, DNS capture, or
 * both (the verifier drops the code of what is off). */
const volatile bool flows_on = true;
const volatile bool dns_on = false;

/* Sized from Config.MaxFlows before load (default 64Ki entries, 256 B each
 * with the LRU bookkeeping, and a 16 B hash bucket: 17 MiB; the TCP lines
 * below add 4 MiB). One entry per
 * local socket and peer, and user space deletes finished flows every flush
 * interval, so it holds a busy node's concurrent flows. LRU so that a flood
 * of short flows evicts the least recently active entry (user space counts
 * the eviction) instead of blinding the probe; an LRU insert never fails for
 * lack of room. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sock_flow_key);
	__type(value, struct sock_flow_stats);
} flows SEC(".maps");

/* States of a TCP socket with one peer: ESTABLISHED, SYN_SENT, SYN_RECV,
 * FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING (not LISTEN, CLOSE,
 * TIME_WAIT, NEW_SYN_RECV: a per-CPU control socket is CLOSE and answers
 * many peers). */
#define LINE_STATES ((1u << BPF_TCP_ESTABLISHED) | (1u << BPF_TCP_SYN_SENT) | (1u << BPF_TCP_SYN_RECV) | \
		     (1u << BPF_TCP_FIN_WAIT1) | (1u << BPF_TCP_FIN_WAIT2) | (1u << BPF_TCP_CLOSE_WAIT) | \
		     (1u << BPF_TCP_LAST_ACK) | (1u << BPF_TCP_CLOSING))

/* Connected TCP sockets' per-direction lines (flow.h: struct flow_line),
 * indexed by cookie & line_mask: Config.TCPLines each, by default half of
 * MaxFlows. Cookies are handed out in rising order, so two sockets share a
 * line only when their cookies lie a multiple of the line count apart (a
 * long-lived connection and one opened much later): the one that finds the
 * line taken counts in its flow entry, as exactly, only slower. Separate
 * arrays per direction, so that user space releasing one line rewrites
 * only that line. BPF_F_MMAPABLE only for where it puts the values: at the
 * start of a page, so each 64 B line is one cache line. A plain array's
 * values start after its header (56 B into a line on 6.18): every line
 * would span two, one of them shared with the next socket's line. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct flow_line);
} tx_lines SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct flow_line);
} rx_lines SEC(".maps");

const volatile __u32 line_mask = 32767;

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

static __always_inline __u64 stamp_ns(__u64 jiffies)
{
	return jiffies * tick_ns + clock_offset;
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

/* Copies the socket's smoothed RTT and retransmission count. They change as
 * the socket sends and as ACKs are processed (after ingress), so egress reads
 * them; a retransmission is counted after its packet left, so the next
 * egress packet sees it. The read is a helper call, the costliest step of a
 * packet after the flow lookup: the caller makes it once per clock tick of a
 * flow, and on every packet once the socket leaves ESTABLISHED, so the final values
 * are exact. */
static __always_inline void tcp_state(__u32 *srtt_us, __u32 *retrans, __u32 *tick,
				      struct __sk_buff *skb, __u64 jiffies)
{
	*tick = jiffies;
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk); /* NULL unless a full TCP socket */
	if (!tp)
		return;
	*srtt_us = tp->srtt_us >> 3;
	*retrans = tp->total_retrans;
}

/* Whether an egress packet reads the TCP state: once per clock tick of a
 * flow, and on every packet from the first FIN or RST on, either way (the
 * socket is no longer ESTABLISHED, or this packet carries it), so the final
 * RTT and retransmits are exact. */
static __always_inline bool tcp_state_due(__u32 tick, __u64 jiffies, __u8 flags, struct bpf_sock *sk)
{
	return tick != (__u32)jiffies || (flags & (TCP_FIN_ | TCP_RST_)) ||
	       (sk && sk->state != BPF_TCP_ESTABLISHED);
}

/* Counts a packet of a connected TCP socket into its own line. Egress adds
 * are plain: see the comment in account(). */
static __always_inline void count_line(struct flow_line *ln, struct __sk_buff *skb, bool egress,
				       __u64 bytes, __u32 segs, __u8 flags)
{
	if (egress) {
		ln->bytes += bytes;
		ln->packets += segs;
	} else {
		__sync_fetch_and_add(&ln->bytes, bytes);
		__sync_fetch_and_add(&ln->packets, segs);
	}
	__u64 jiffies = bpf_jiffies64();
	ln->last_ns = stamp_ns(jiffies);
	if ((ln->flags | flags) != ln->flags)
		ln->flags |= flags;
	if (egress && tcp_state_due(ln->tcp_tick, jiffies, flags, skb->sk))
		tcp_state(&ln->srtt_us, &ln->retrans, &ln->tcp_tick, skb, jiffies);
}

/* Claims a free or released line for this socket, after its packet was
 * counted in the flow entry. A CPU that loses the race leaves the line to
 * the winner; the busy marker keeps every reader out until the fields are
 * reset, and the exchange publishes them. */
static __always_inline void claim_line(struct flow_line *ln, __u64 seen, __u64 cookie, __u64 peer)
{
	if (seen == cookie || (seen && !(seen & FLOW_LINE_DEAD)) || seen == (cookie | FLOW_LINE_DEAD))
		return; /* ours (an earlier connection), another live socket's, or released by us */
	if (__sync_val_compare_and_swap(&ln->cookie, seen, FLOW_LINE_BUSY) != seen)
		return;
	ln->bytes = 0;
	ln->packets = 0;
	ln->last_ns = 0;
	ln->srtt_us = 0;
	ln->retrans = 0;
	ln->tcp_tick = 0;
	ln->flags = 0;
	ln->peer = peer;
	__sync_lock_test_and_set(&ln->cookie, cookie);
}

/* bpf_cast_to_kern_ctx is rewritten by the verifier into a register move (no
 * call); weak, so that a kernel older than 6.2 loads the helper path. */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

/* The socket's cookie, read from the socket itself: a load, where
 * bpf_get_socket_cookie is a helper call and return on every packet. The
 * helper runs only for a socket whose cookie was never asked for (it
 * assigns it, once) or on a kernel without the kfunc. */
static __always_inline __u64 socket_cookie(struct __sk_buff *skb)
{
	if (!!bpf_cast_to_kern_ctx) { /* 0 when the kernel lacks it (weak) */
		struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
		struct sock *sk = kskb->sk;
		if (sk) {
			__u64 c = sk->__sk_common.skc_cookie.counter;
			if (c)
				return c;
		}
	}
	return bpf_get_socket_cookie(skb);
}

static __always_inline void account(struct __sk_buff *skb, bool egress)
{
	struct sock_flow_key key = {};
	struct l3 l3;
	struct l4 l4 = {}; /* no undefined reads the verifier would refuse */

	if (flows_on)
		stat_inc(STAT_EVENTS);

	int r = parse_l3(skb, &l3);
	if (r == PARSE_NOT_IP)
		return; /* not IP: nothing to key a flow on */
	if (r != PARSE_OK)
		goto parse_error;
	__u8 proto = l3.proto;
	__u32 l3len = l3.off, jumbo = l3.jumbo;
	if (proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_)
		return; /* ICMP & co. are not flows */
	if (parse_l4(skb, l3len, proto, &l4))
		goto parse_error;
	if (dns_on)
		dns_capture(skb, egress, &l3, &l4);
	if (!flows_on)
		return;
	__u16 sport = l4_sport(&l4), dport = l4_dport(&l4);
	__u8 flags = l4_tcp_flags(&l4);

	/* A GSO/GRO skb is one super-packet of `segs` wire packets that each
	 * carry the IP + L4 headers: count the wire. */
	__u32 segs = skb->gso_segs ? skb->gso_segs : 1;
	__u64 bytes = skb->len - jumbo + (__u64)(segs - 1) * (l3len - jumbo + l4_hlen(&l4));
	__u64 cookie = socket_cookie(skb);

	/* A TCP socket past LISTEN has one peer: its cookie alone names the
	 * flow, and its packets count in its own line when it holds it. */
	struct bpf_sock *sk = skb->sk;
	struct flow_line *ln = NULL;
	__u64 seen = 0;
	__u64 peer = 0;
	if (proto == IPPROTO_TCP_ && sk && ((1u << (sk->state & 15)) & LINE_STATES)) {
		union addr *ra = egress ? &l3.dst : &l3.src;
		__u32 w[4];
		__builtin_memcpy(w, ra->v6, 16);
		peer = (__u64)(w[0] ^ w[1] ^ w[2] ^ w[3]) << 32 |
		       (__u32)(egress ? sport : dport) << 16 | (egress ? dport : sport);
		__u32 idx = cookie & line_mask;
		if (egress)
			ln = bpf_map_lookup_elem(&tx_lines, &idx);
		else
			ln = bpf_map_lookup_elem(&rx_lines, &idx);
		if (ln) {
			seen = ln->cookie;
			if (seen == cookie && ln->peer == peer) {
				count_line(ln, skb, egress, bytes, segs, flags);
				return;
			}
		}
	}

	key.cookie = cookie;
	key.proto = proto;
	key.family = l3.family;
	if (egress) {
		__builtin_memcpy(key.local_addr, l3.src.v6, 16);
		__builtin_memcpy(key.remote_addr, l3.dst.v6, 16);
		key.local_port = sport;
		key.remote_port = dport;
	} else {
		__builtin_memcpy(key.local_addr, l3.dst.v6, 16);
		__builtin_memcpy(key.remote_addr, l3.src.v6, 16);
		key.local_port = dport;
		key.remote_port = sport;
	}

	struct sock_flow_stats *st = bpf_map_lookup_elem(&flows, &key);
	if (!st) {
		/* The first new flow pins the packet clock to CLOCK_MONOTONIC,
		 * once (compare-and-swap), so no stamp ever goes backwards. */
		if (!clock_offset)
			__sync_val_compare_and_swap(&clock_offset, 0,
						    bpf_ktime_get_coarse_ns() - bpf_jiffies64() * tick_ns);
		__u64 jiffies = bpf_jiffies64(), now = stamp_ns(jiffies);
		/* A new flow is inserted with this packet already counted: no
		 * second lookup. If another CPU inserted it first (-EEXIST), the
		 * packet is added to that entry below. */
		struct sock_flow_stats init = {
			.first_ns = now,
			.cgroup_id = bpf_skb_cgroup_id(skb),
		};
		if (egress) {
			init.tx_bytes = bytes;
			init.tx_packets = segs;
			init.tx_last_ns = now;
			init.tx_flags = flags;
		} else {
			init.rx_bytes = bytes;
			init.rx_packets = segs;
			init.rx_last_ns = now;
			init.rx_flags = flags;
		}
		bool opener = proto == IPPROTO_UDP_ ||
			      ((flags & (TCP_SYN_ | TCP_ACK_)) == TCP_SYN_);
		if (opener)
			init.initiator = egress ? FLOW_INITIATOR_LOCAL : FLOW_INITIATOR_REMOTE;
		if (sk)
			set_owner(&init, sk);
		if (proto == IPPROTO_TCP_ && egress)
			tcp_state(&init.srtt_us, &init.retrans, &init.tcp_tick, skb, jiffies);
		long err = bpf_map_update_elem(&flows, &key, &init, BPF_NOEXIST);
		if (!err) {
			if (ln)
				claim_line(ln, seen, cookie, peer);
			return; /* counted by the insert */
		}
		if (err != -EEXIST_) {
			stat_inc(STAT_MAP_FULL);
			return;
		}
		st = bpf_map_lookup_elem(&flows, &key);
		if (!st)
			return;
	}

	if (egress && proto == IPPROTO_TCP_ && sk && sk->state != BPF_TCP_LISTEN) {
		/* A TCP socket past LISTEN transmits only under its lock (the
		 * owner's, or the softirq's bh lock when it is not owned), and
		 * this hook runs inside that transmit: its egress packets never
		 * race, so plain adds are exact and spare two locked
		 * instructions. Resets and ACKs sent on behalf of no full
		 * socket leave on a per-CPU control socket with bottom halves
		 * off: no race either. A listener sends SYN-ACKs without its
		 * lock: atomics below. */
		st->tx_bytes += bytes;
		st->tx_packets += segs;
	} else if (egress) {
		/* UDP sends do not lock the socket: threads can race. */
		__sync_fetch_and_add(&st->tx_bytes, bytes);
		__sync_fetch_and_add(&st->tx_packets, segs);
	} else {
		/* Ingress runs before the receiver locks the socket. */
		__sync_fetch_and_add(&st->rx_bytes, bytes);
		__sync_fetch_and_add(&st->rx_packets, segs);
	}
	/* Each direction stamps and flags its own line: nothing here
	 * touches a line the other direction writes. */
	__u64 jiffies = bpf_jiffies64(), now = stamp_ns(jiffies);
	if (!egress) {
		st->rx_last_ns = now;
		if (proto == IPPROTO_TCP_ && (st->rx_flags | flags) != st->rx_flags)
			st->rx_flags |= flags;
	} else {
		st->tx_last_ns = now;
		if (proto == IPPROTO_TCP_) {
			if ((st->tx_flags | flags) != st->tx_flags)
				st->tx_flags |= flags;
			if (tcp_state_due(st->tcp_tick, jiffies, flags, sk))
				tcp_state(&st->srtt_us, &st->retrans, &st->tcp_tick, skb, jiffies);
		}
	}
	if (ln)
		claim_line(ln, seen, cookie, peer);
	return;

parse_error:
	if (flows_on)
		stat_inc(STAT_PARSE_ERROR);
	else
		dns_stat_inc(STAT_PARSE_ERROR);
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
