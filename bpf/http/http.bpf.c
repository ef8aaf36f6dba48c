// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* http probe: the bytes every local process moves through a TCP socket, for
 * user space to parse as HTTP (receiver/ebpfflowreceiver/internal/httpmatch).
 * Syscall tracepoints only: the enter programs of read, write, readv,
 * writev, sendto, recvfrom, sendmsg, recvmsg and sendfile find the socket
 * behind the fd (through the task's fd table: any other file costs one
 * table read and returns), remember the call in task storage with the TCP
 * sequence number of its first byte, and the exit program copies a bounded
 * prefix of the bytes the call moved into the ring buffer. A connection's
 * first call sends its addresses and cgroup (OPEN), its close a CLOSE
 * (tp_btf/inet_sock_set_state). User space marks connections that are not
 * HTTP in `conns`: their bytes are then not copied; and ranges of a
 * connection's bytes that are message body they do not need: a call lying
 * wholly inside one is reported by its size, without its bytes. Observes
 * only.
 *
 * Per-syscall tracepoints, not raw sys_enter/sys_exit: a raw tracepoint
 * program saves some 25-80 ns on a hooked call (perf's record building)
 * but runs on every other system call of the node (futex, epoll_wait...):
 * ~150 ns each with BPF run-time statistics on, where an unhooked call
 * pays ~20 ns here. */
#include "ebpfflow.bpf.h"
#include <bpf/bpf_tracing.h>
#include "http.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Give the types BTF entries for bpf2go's Go types. */
const struct http_event *unused_http_event __attribute__((unused));
const struct http_conn *unused_http_conn __attribute__((unused));
const struct http_conn_state *unused_http_conn_state __attribute__((unused));
const enum http_limits unused_http_limits __attribute__((unused)) = HTTP_CAPTURE_MAX;
const enum http_kind unused_http_kind __attribute__((unused)) = HTTP_KIND_SENT;
const enum http_conn_flag unused_http_conn_flag __attribute__((unused)) = HTTP_CONN_IGNORED;

/* Set from Go before load. */
const volatile __u32 capture_bytes = 4096; /* bytes copied per call, <= HTTP_CAPTURE_MAX */
const volatile __u32 self_tgid = 0;        /* the collector: its own exports are not captured */
const volatile __u64 wakeup_bytes = 4 << 20; /* ring fill that wakes the reader: a quarter */

#define S_IFMT_ 0170000
#define S_IFSOCK_ 0140000
#define SOCK_STREAM_ 1
#define SHUTDOWN_MASK_ 3

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* set from Go (Config.RingBytes) */
} events SEC(".maps");

/* Connections whose calls were seen, by socket cookie: the OPEN was sent,
 * and user space may flag them ignored. Deleted when the socket closes, so
 * it holds the open connections that moved data; sized from Go
 * (Config.MaxConns). A hash, not an LRU: a connection that finds it full
 * is not captured and each of its calls is counted (map_full), where an
 * LRU would silently forget an open connection's flag. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct http_conn_state);
} conns SEC(".maps");

/* What the exit program needs of a call its enter program took. */
enum http_op {
	OP_SEND_BUF = 1, /* write, sendto: one user buffer */
	OP_RECV_BUF,     /* read, recvfrom */
	OP_SEND_IOV,     /* writev, sendmsg: an iovec array */
	OP_RECV_IOV,     /* readv, recvmsg */
	OP_SENDFILE,     /* sendfile: no user buffer */
};

struct http_call {
	__u64 buf;    /* user buffer, or iovec array */
	__u64 cookie;
	__u64 sk;     /* struct sock *, for the exit's write_seq: the fd holds it */
	__u64 nr;     /* syscall number of the call: an exit of another call never takes it */
	__u32 count;  /* buffer length, or iovec count */
	__u32 seq;
	__u32 other_seq;
	__u32 tgid;   /* the caller's, for the record */
	struct http_skip skip; /* the connection's body range in the call's direction at enter */
	__u8 op;      /* enum http_op; 0: no call pending */
	__u8 pad[7];
};

/* One pending call per thread: task storage is a slot in the task itself,
 * cheaper than a hash keyed by thread, and freed with the task. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct http_call);
} calls SEC(".maps");

/* A record is assembled here, then copied into the ring sized to what was
 * captured (bpf_ringbuf_output takes a variable size, reserve does not).
 * Tracepoint programs do not nest on a CPU, so one slot per CPU is enough:
 * an array indexed by CPU (sized from Go), as a per-CPU array's values are
 * limited to 32 KiB. The data area is twice the largest capture so that
 * an iovec copied at any offset below the capture stays provably inside. */
struct scratch {
	struct http_event h;
	__u8 data[2 * HTTP_CAPTURE_MAX];
	__u32 outputs; /* records this CPU wrote: the ring's fill is read every 16th */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* set from Go: the possible CPUs */
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* The TCP socket (IPv4 or IPv6, not listening) behind fd in the current
 * task, or NULL. Everything, the fd table slot too, is read straight through
 * BTF pointers (no helper call): for an fd that is a file, pipe or any
 * other socket this is a few loads. */
static __always_inline struct sock *tcp_sock_of(struct task_struct *task, int fd)
{
	struct files_struct *files = task->files;
	if (!files || fd < 0)
		return NULL;
	struct fdtable *fdt = files->fdt;
	if (!fdt || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	/* The slot read as what it is, the first member of a struct kiocb (a
	 * struct file pointer): a load the JIT guards, not a helper call. */
	struct kiocb *slot = bpf_rdonly_cast(&fdt->fd[fd], bpf_core_type_id_kernel(struct kiocb));
	struct file *f = slot->ki_filp;
	if (!f)
		return NULL;
	struct inode *ino = f->f_inode;
	if (!ino || (ino->i_mode & S_IFMT_) != S_IFSOCK_)
		return NULL;
	struct socket *so = bpf_rdonly_cast(f->private_data, bpf_core_type_id_kernel(struct socket));
	if (!so)
		return NULL;
	struct sock *sk = so->sk;
	if (!sk || sk->sk_protocol != IPPROTO_TCP_ || sk->sk_type != SOCK_STREAM_)
		return NULL;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	if (sk->__sk_common.skc_state == TCP_LISTEN)
		return NULL;
	return sk;
}

/* Sends OPEN for a connection seen for the first time and files it in
 * `conns`; false if it cannot be (ring or map full: counted, the next call
 * tries again). */
static __always_inline bool open_conn(struct sock *sk, __u64 cookie, __u32 tgid)
{
	struct {
		struct http_event h;
		struct http_conn c;
	} *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		stat_inc(STAT_RINGBUF_FULL);
		return false;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->h.ts_ns = bpf_ktime_get_boot_ns();
	r->h.cookie = cookie;
	r->h.pid = tgid;
	r->h.kind = HTTP_KIND_OPEN;
	r->h.size = sizeof(r->c);
	r->h.cap_len = sizeof(r->c);
	__u16 family = sk->__sk_common.skc_family;
	r->c.family = family;
	r->c.local_port = sk->__sk_common.skc_num;
	r->c.remote_port = bpf_ntohs(sk->__sk_common.skc_dport);
	if (family == AF_INET) {
		__u32 a = sk->__sk_common.skc_rcv_saddr, b = sk->__sk_common.skc_daddr;
		__builtin_memcpy(r->c.local_addr, &a, 4);
		__builtin_memcpy(r->c.remote_addr, &b, 4);
	} else {
		bpf_probe_read_kernel(r->c.local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(r->c.remote_addr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	struct cgroup *cg = sk->sk_cgrp_data.cgroup;
	if (cg)
		r->c.cgroup_id = cg->kn->id;
	bpf_get_current_comm(r->c.comm, sizeof(r->c.comm));

	struct http_conn_state st = {};
	long err = bpf_map_update_elem(&conns, &cookie, &st, BPF_NOEXIST);
	if (err && err != -EEXIST_) {
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		stat_inc(STAT_MAP_FULL);
		return false;
	}
	bpf_ringbuf_submit(r, 0);
	return true;
}

static __always_inline int enter(struct trace_event_raw_sys_enter *ctx, __u8 op)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;
	if (tgid == self_tgid)
		return 0;
	struct sock *sk = tcp_sock_of(task, (int)ctx->args[0]);
	if (!sk)
		return 0;
	__u64 cookie = sk->__sk_common.skc_cookie.counter;
	if (!cookie) {
		/* Never asked for: a connection older than the probe that no
		 * flow program saw. It cannot be keyed. */
		stat_inc(STAT_PARSE_ERROR);
		return 0;
	}
	bool send = op == OP_SEND_BUF || op == OP_SEND_IOV || op == OP_SENDFILE;
	struct http_skip skip = {};
	struct http_conn_state *st = bpf_map_lookup_elem(&conns, &cookie);
	if (!st) {
		if (!open_conn(sk, cookie, tgid))
			return 0;
	} else if (st->flags & HTTP_CONN_IGNORED) {
		return 0;
	} else {
		skip = st->skip[send ? 0 : 1];
	}

	struct http_call *c = bpf_task_storage_get(&calls, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c) {
		stat_inc(STAT_MAP_FULL);
		return 0;
	}
	struct tcp_sock *tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
	c->op = op;
	c->skip = skip;
	c->tgid = tgid;
	c->nr = ctx->id;
	c->cookie = cookie;
	c->sk = (__u64)sk;
	c->seq = send ? tp->write_seq : tp->copied_seq;
	c->other_seq = send ? tp->copied_seq : 0;
	switch (op) {
	case OP_SEND_BUF:
	case OP_RECV_BUF:
	case OP_SEND_IOV:
	case OP_RECV_IOV:
		c->buf = ctx->args[1];
		c->count = ctx->args[2];
		break;
	default:
		c->buf = 0;
		c->count = 0;
	}
	return 0;
}

/* sendmsg / recvmsg: the iovec array is in the user's msghdr. */
static __always_inline int enter_msg(struct trace_event_raw_sys_enter *ctx, __u8 op)
{
	int r = enter(ctx, op);
	struct http_call *c = bpf_task_storage_get(&calls, bpf_get_current_task_btf(), 0, 0);
	if (!c || !c->op || c->nr != ctx->id)
		return r;
	struct user_msghdr msg;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)c->buf)) {
		c->buf = 0;
		c->count = 0;
		return r;
	}
	c->buf = (__u64)msg.msg_iov;
	c->count = msg.msg_iovlen;
	return r;
}

SEC("tracepoint/syscalls/sys_enter_read")
int http_enter_read(struct trace_event_raw_sys_enter *ctx) { return enter(ctx, OP_RECV_BUF); }

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int http_enter_recvfrom(struct trace_event_raw_sys_enter *ctx) { return enter(ctx, OP_RECV_BUF); }

SEC("tracepoint/syscalls/sys_enter_readv")
int http_enter_readv(struct trace_event_raw_sys_enter *ctx) { return enter(ctx, OP_RECV_IOV); }

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int http_enter_recvmsg(struct trace_event_raw_sys_enter *ctx) { return enter_msg(ctx, OP_RECV_IOV); }

SEC("tracepoint/syscalls/sys_enter_write")
int http_enter_write(struct trace_event_raw_sys_enter *ctx) { return enter(ctx, OP_SEND_BUF); }

SEC("tracepoint/syscalls/sys_enter_sendto")
int http_enter_sendto(struct trace_event_raw_sys_enter *ctx) { return enter(ctx, OP_SEND_BUF); }

SEC("tracepoint/syscalls/sys_enter_writev")
int http_enter_writev(struct trace_event_raw_sys_enter *ctx) { return enter(ctx, OP_SEND_IOV); }

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int http_enter_sendmsg(struct trace_event_raw_sys_enter *ctx) { return enter_msg(ctx, OP_SEND_IOV); }

/* sendfile(out_fd, in_fd, offset, count): the socket is out_fd. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int http_enter_sendfile(struct trace_event_raw_sys_enter *ctx) { return enter(ctx, OP_SENDFILE); }

/* Copies up to want bytes from the iovec array at iovp into s->data. */
static __always_inline __u32 copy_iov(struct scratch *s, __u64 iovp, __u32 iovcnt, __u32 want)
{
	__u32 off = 0;
	for (int i = 0; i < HTTP_MAX_IOV; i++) {
		if (i >= iovcnt || off >= want)
			break;
		struct iovec iov;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iovp + i * sizeof(iov))))
			break;
		__u64 n = want - off;
		if (iov.iov_len < n)
			n = iov.iov_len;
		/* off < want <= HTTP_CAPTURE_MAX and n <= HTTP_CAPTURE_MAX:
		 * off + n stays inside data[2 * HTTP_CAPTURE_MAX]. */
		__u32 o = off & (HTTP_CAPTURE_MAX - 1);
		if (n > HTTP_CAPTURE_MAX)
			n = HTTP_CAPTURE_MAX;
		if (n && bpf_probe_read_user(&s->data[o], n, iov.iov_base))
			break;
		off += n;
	}
	return off;
}

/* A call not wholly inside the body range it saw at enter has gone past
 * it (the kernel runs ahead of user space): forget the range, unless user
 * space has set another since, so that a connection moving 4 GiB more never
 * finds its stale range again after the sequence numbers wrap. */
static __always_inline void forget_skip(__u64 cookie, bool send, struct http_skip seen)
{
	struct http_conn_state *st = bpf_map_lookup_elem(&conns, &cookie);
	if (!st)
		return;
	struct http_skip *k = &st->skip[send ? 0 : 1];
	if (k->from == seen.from && k->to == seen.to)
		k->to = k->from;
}

/* One program for the exit of every call above. */
SEC("tracepoint/syscalls/sys_exit_read")
int http_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct http_call *c = bpf_task_storage_get(&calls, bpf_get_current_task_btf(), 0, 0);
	if (!c || !c->op)
		return 0;
	__u8 op = c->op;
	c->op = 0;
	if (c->nr != ctx->id)
		return 0; /* enter not seen (attached mid-call): not ours */
	long ret = ctx->ret;
	bool send = op == OP_SEND_BUF || op == OP_SEND_IOV || op == OP_SENDFILE;
	if (ret < 0 || (ret == 0 && send))
		return 0; /* failed calls are not chunks; a receive of 0 is end of stream */

	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch *s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s)
		return 0;
	struct http_event *h = &s->h;
	h->ts_ns = bpf_ktime_get_boot_ns();
	h->cookie = c->cookie;
	h->pid = c->tgid;
	h->seq = c->seq;
	h->other_seq = c->other_seq;
	if (!send) {
		/* Every byte sent before the bytes just read arrived: read now,
		 * not at enter, since a read may wait while the request goes out. */
		struct tcp_sock *tp = bpf_rdonly_cast((void *)c->sk, bpf_core_type_id_kernel(struct tcp_sock));
		h->other_seq = tp->write_seq;
	}
	h->size = ret > 0xffffffffL ? 0xffffffff : ret;
	h->kind = send ? HTTP_KIND_SENT : HTTP_KIND_RECEIVED;

	__u64 want = op == OP_SENDFILE ? 0 : ret; /* sendfile's bytes are never in user memory */
	if (c->skip.from != c->skip.to) {
		/* Modulo 2^32, as sequence numbers wrap. */
		__u32 off = c->seq - c->skip.from, len = c->skip.to - c->skip.from;
		if (off < len && ret <= len - off)
			want = 0; /* all body: its size is all user space needs */
		else
			forget_skip(c->cookie, send, c->skip);
	}
	if (want > capture_bytes)
		want = capture_bytes;
	if (want > HTTP_CAPTURE_MAX)
		want = HTTP_CAPTURE_MAX;
	__u32 got = 0;
	switch (op) {
	case OP_SEND_BUF:
	case OP_RECV_BUF:
		if (want > c->count)
			want = c->count;
		if (want && !bpf_probe_read_user(s->data, want, (void *)c->buf))
			got = want;
		break;
	case OP_SEND_IOV:
	case OP_RECV_IOV:
		got = copy_iov(s, c->buf, c->count, want);
		break;
	}
	if (got < want)
		stat_inc(STAT_PARSE_ERROR); /* user memory not readable: fewer bytes than asked */
	h->cap_len = got;
	stat_inc(STAT_EVENTS);

	__u64 size = sizeof(*h) + got;
	/* Keep the compiler from moving the bounds check off the register
	 * passed as the size: the verifier needs it there. */
	asm volatile("" : "+r"(size));
	if (size > sizeof(*s))
		return 0;
	/* Waking the reader costs microseconds per record; it polls every
	 * 200 ms anyway, so wake it only when the ring fills up. Reading the
	 * fill every 16th record of a CPU overshoots by at most 16 records
	 * a CPU, far below the three quarters of the ring left. */
	__u64 wflags = BPF_RB_NO_WAKEUP;
	if ((++s->outputs & 15) == 0 && bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > wakeup_bytes)
		wflags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, s, size, wflags))
		stat_inc(STAT_RINGBUF_FULL);
	return 0;
}

/* Close and first-use bookkeeping on TCP state changes: a new connection
 * gets its socket cookie (so that the syscall programs, which cannot ask
 * for one, find it set), and a tracked connection that the local process
 * closed (close() shuts both directions before the FIN) or that ended
 * (CLOSE: reset, timeout, TIME_WAIT) is reported once and forgotten. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(http_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (sk->sk_protocol != IPPROTO_TCP_)
		return 0;
	if (newstate == TCP_ESTABLISHED) {
		bpf_get_socket_cookie((void *)sk);
		return 0;
	}
	if (newstate != TCP_CLOSE &&
	    !((newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK) && sk->sk_shutdown == SHUTDOWN_MASK_))
		return 0;
	__u64 cookie = sk->__sk_common.skc_cookie.counter;
	if (!cookie || bpf_map_delete_elem(&conns, &cookie))
		return 0; /* not a connection whose data was seen */
	struct http_event *h = bpf_ringbuf_reserve(&events, sizeof(*h), 0);
	if (!h) {
		stat_inc(STAT_RINGBUF_FULL);
		return 0;
	}
	__builtin_memset(h, 0, sizeof(*h));
	h->ts_ns = bpf_ktime_get_boot_ns();
	h->cookie = cookie;
	h->kind = HTTP_KIND_CLOSE;
	bpf_ringbuf_submit(h, 0);
	return 0;
}
