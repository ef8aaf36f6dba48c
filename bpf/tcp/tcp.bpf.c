// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TCP lifecycle probe: one LRU entry per socket cookie, updated from the
 * inet_sock_set_state, tcp_send_reset, tcp_receive_reset and
 * tcp_retransmit_skb BTF tracepoints. User space snapshots the map, reports
 * closed sockets once and deletes them. */
#include "ebpfflow.bpf.h"
#include <bpf/bpf_tracing.h>
#include "tcp.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ECONNREFUSED_ 111
#define ETIMEDOUT_ 110
#define ECONNRESET_ 104
#define EPIPE_ 32

/* Sized from Config.MaxSockets before load; this default (64Ki sockets,
 * ~10 MiB) covers a busy node's open sockets plus one interval of closes. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie, as cgroup_skb's bpf_get_socket_cookie */
	__type(value, struct tcp_sock_info);
} socks SEC(".maps");

static const struct tcp_sock_info zero_info;

/* Only here so the enums reach BTF: bpf2go generates Go types for globals. */
const enum tcp_close_cause unused_tcp_close_cause __attribute__((unused)) = TCP_CAUSE_NONE;
const enum tcp_initiator unused_tcp_initiator __attribute__((unused)) = TCP_INITIATOR_UNKNOWN;

/* Mini sockets (TIME_WAIT, request socks) share sock_common but not the rest
 * of struct sock: never read full-socket fields from them. */
static __always_inline bool full_sock(const struct sock *sk)
{
	__u8 st = sk->__sk_common.skc_state;
	return st != TCP_TIME_WAIT && st != TCP_NEW_SYN_RECV;
}

static __always_inline struct tcp_sock_info *sock_entry(const struct sock *sk, __u64 cookie)
{
	struct tcp_sock_info *e = bpf_map_lookup_elem(&socks, &cookie);
	if (e)
		return e;
	long err = bpf_map_update_elem(&socks, &cookie, &zero_info, BPF_NOEXIST);
	if (err && err != -EEXIST_) {
		stat_inc(STAT_MAP_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&socks, &cookie);
}

/* The tuple is filled in stages (the local port only after inet_hash_connect,
 * the child's remote address after the clone) and cleared again on close, so
 * keep every non-zero value seen. */
static __always_inline void fill_tuple(struct tcp_sock_info *e, const struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;
	__u16 sport = sk->__sk_common.skc_num;
	__u16 dport = bpf_ntohs(sk->__sk_common.skc_dport);

	if (!sport) {
		/* tcp_set_state(CLOSE) releases the port (inet_num = 0) before the
		 * tracepoint runs; inet_sport keeps it. Matters for a connect
		 * abandoned before any other event showed the port. */
		struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);
		if (tp)
			sport = bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport);
	}

	e->family = family;
	if (sport)
		e->sport = sport;
	if (dport)
		e->dport = dport;
	if (family == AF_INET) {
		__u32 saddr = sk->__sk_common.skc_rcv_saddr;
		__u32 daddr = sk->__sk_common.skc_daddr;
		if (saddr)
			__builtin_memcpy(e->saddr, &saddr, 4);
		if (daddr)
			__builtin_memcpy(e->daddr, &daddr, 4);
	} else if (family == AF_INET6) {
		__u64 a[2];
		bpf_probe_read_kernel(a, sizeof(a), &sk->__sk_common.skc_v6_rcv_saddr);
		if (a[0] | a[1])
			__builtin_memcpy(e->saddr, a, 16);
		bpf_probe_read_kernel(a, sizeof(a), &sk->__sk_common.skc_v6_daddr);
		if (a[0] | a[1])
			__builtin_memcpy(e->daddr, a, 16);
	}
}

/* Full-socket fields: cgroup (set at socket creation or cloned from the
 * listener), srtt and total_retrans (tcp_disconnect zeroes the latter after
 * the close, so keep the highest). */
static __always_inline void fill_sock(struct tcp_sock_info *e, const struct sock *sk)
{
	if (!e->cgroup_id) {
		struct cgroup *cg = sk->sk_cgrp_data.cgroup;
		if (cg)
			e->cgroup_id = BPF_CORE_READ(cg, kn, id);
	}
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);
	if (!tp)
		return;
	__u32 srtt = tp->srtt_us >> 3;
	if (srtt)
		e->srtt_us = srtt;
	__u32 retrans = tp->total_retrans;
	if (retrans > e->retransmits)
		e->retransmits = retrans;
}

static __always_inline __u8 close_cause(const struct sock *sk, const struct tcp_sock_info *e, int oldstate)
{
	/* tcp_done_with_error() stores sk_err before tcp_done() moves the
	 * socket to CLOSE, so the error that ended it is visible here. */
	int err = sk->sk_err;

	if (err == ECONNREFUSED_)
		return TCP_CAUSE_REFUSED;
	if (err == ETIMEDOUT_)
		return TCP_CAUSE_TIMEOUT;
	if (err == ECONNRESET_ || err == EPIPE_)
		return TCP_CAUSE_RST_RECEIVED;
	if (e->resets_sent)
		return TCP_CAUSE_RST_SENT; /* abort paths reset first, then tcp_done */
	if (e->resets_received)
		return TCP_CAUSE_RST_RECEIVED;
	if (err)
		/* tcp_write_err passes a soft ICMP error (EHOSTUNREACH...) instead
		 * of ETIMEDOUT after retries; without retries it was a hard ICMP
		 * error answering the SYN. */
		return e->retransmits ? TCP_CAUSE_TIMEOUT : TCP_CAUSE_REFUSED;
	if (oldstate == TCP_SYN_SENT)
		return TCP_CAUSE_TIMEOUT; /* the client gave up (close or connect timeout) */
	/* Entering TIME_WAIT also lands here: tcp_time_wait() hands the
	 * connection to an inet_timewait_sock (same cookie) and tcp_done()s the
	 * full socket. Close paths that reset after CLOSE (SO_LINGER 0, unread
	 * data) are upgraded to rst_sent by the tcp_send_reset program. */
	return TCP_CAUSE_FIN;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (sk->sk_protocol != IPPROTO_TCP_)
		return 0;
	stat_inc(STAT_EVENTS);

	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	struct tcp_sock_info *e = sock_entry(sk, cookie);
	if (!e)
		return 0;
	__u64 now = bpf_ktime_get_boot_ns();

	/* connect(AF_UNSPEC) lets a closed socket start over under the same
	 * cookie: begin a new lifecycle. */
	if (e->closed_ns && newstate != TCP_CLOSE)
		*e = zero_info;

	switch (newstate) {
	case TCP_SYN_SENT:
	case TCP_LISTEN:
		/* connect()/listen(): process context, the caller owns the socket */
		if (newstate == TCP_SYN_SENT)
			e->initiator = TCP_INITIATOR_LOCAL;
		if (oldstate == TCP_CLOSE) {
			e->opened_ns = now;
			e->pid = bpf_get_current_pid_tgid() >> 32;
			bpf_get_current_comm(e->comm, sizeof(e->comm));
		}
		break;
	case TCP_SYN_RECV:
		/* A listener's child is cloned straight into SYN_RECV (oldstate
		 * is the listener's); SYN_SENT->SYN_RECV is a simultaneous open. */
		if (oldstate != TCP_SYN_SENT) {
			e->initiator = TCP_INITIATOR_REMOTE;
			e->opened_ns = now;
		}
		break;
	case TCP_CLOSE:
		e->close_cause = close_cause(sk, e, oldstate);
		e->closed_ns = now;
		break;
	}
	e->state = newstate;
	fill_tuple(e, sk);
	fill_sock(e, sk);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_send_reset, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	/* No socket: a reset for a segment that matched nothing (the drop
	 * probe sees those as NO_SOCKET). Request socks get another cookie
	 * than the child they may become. */
	if (!sk || sk->__sk_common.skc_state == TCP_NEW_SYN_RECV)
		return 0;
	stat_inc(STAT_EVENTS);

	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	if (!full_sock(sk)) {
		/* A TIME_WAIT socket keeps the cookie of the socket it replaced;
		 * count its resets but leave the (fin) close cause alone. */
		struct tcp_sock_info *tw = bpf_map_lookup_elem(&socks, &cookie);
		if (tw)
			__sync_fetch_and_add(&tw->resets_sent, 1);
		return 0;
	}
	if (sk->sk_protocol != IPPROTO_TCP_)
		return 0;
	struct tcp_sock_info *e = sock_entry(sk, cookie);
	if (!e)
		return 0;
	__sync_fetch_and_add(&e->resets_sent, 1);
	/* tcp_disconnect() and the unread-data close set CLOSE first and send
	 * the reset after it. */
	if (e->closed_ns && e->close_cause == TCP_CAUSE_FIN)
		e->close_cause = TCP_CAUSE_RST_SENT;
	if (!e->state)
		e->state = sk->__sk_common.skc_state;
	fill_tuple(e, sk);
	fill_sock(e, sk);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_receive_reset, struct sock *sk)
{
	if (!sk || !full_sock(sk))
		return 0;
	stat_inc(STAT_EVENTS);

	__u64 cookie = bpf_get_socket_cookie(sk);
	struct tcp_sock_info *e = sock_entry(sk, cookie);
	if (!e)
		return 0;
	__sync_fetch_and_add(&e->resets_received, 1);
	if (!e->state)
		e->state = sk->__sk_common.skc_state;
	fill_tuple(e, sk);
	fill_sock(e, sk);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit, const struct sock *sk, const struct sk_buff *skb, int err)
{
	/* Since 6.12 the tracepoint also fires for failed attempts; the
	 * kernel has added the segments to total_retrans only on success. */
	if (err || !sk || !full_sock(sk))
		return 0;
	stat_inc(STAT_EVENTS);

	__u64 cookie = bpf_get_socket_cookie((void *)sk);
	struct tcp_sock_info *e = sock_entry(sk, cookie);
	if (!e)
		return 0;
	if (!e->state)
		e->state = sk->__sk_common.skc_state;
	fill_tuple(e, sk);
	fill_sock(e, sk);
	return 0;
}
