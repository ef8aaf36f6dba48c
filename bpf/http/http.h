/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Records of the http probe: a fixed header, then for a socket call the
 * captured prefix of its bytes, for a connection's first call its struct
 * http_conn. Types reach Go through bpf2go -type. */
#ifndef EBPFFLOW_HTTP_H
#define EBPFFLOW_HTTP_H

enum http_limits {
	/* Largest capture_bytes: a request or response head, or a run of
	 * HTTP/2 frame headers, fits with room to spare. */
	HTTP_CAPTURE_MAX = 16384,
	/* iovec entries of one readv/writev/sendmsg/recvmsg copied from:
	 * heads are in the first few (nginx: head, then body buffers). */
	HTTP_MAX_IOV = 8,
};

/* What a record reports. */
enum http_kind {
	HTTP_KIND_SENT = 1,     /* the local process sent bytes (write, writev, send*, sendfile) */
	HTTP_KIND_RECEIVED = 2, /* it received bytes (read, readv, recv*); size 0: end of stream */
	HTTP_KIND_OPEN = 3,     /* first call seen on a connection: a struct http_conn follows */
	HTTP_KIND_CLOSE = 4,    /* the local socket was closed (or reset) */
};

/* Flags of a connection in the `conns` map. */
enum http_conn_flag {
	/* User space found the connection not to be HTTP (or no longer
	 * decodable): its calls are not copied until it closes. */
	HTTP_CONN_IGNORED = 1,
};

/* A range of one direction's TCP sequence numbers, [from, to): bytes user
 * space knows to be message body it does not need (a Content-Length body,
 * chunk data). A call lying wholly inside is reported by its size alone.
 * from == to: none. */
struct http_skip {
	__u32 from;
	__u32 to;
};

/* Value of a connection in the `conns` map. */
struct http_conn_state {
	__u32 flags;              /* enum http_conn_flag bits */
	__u32 pad;
	struct http_skip skip[2]; /* by direction: [0] sent, [1] received */
};

/* The header of every ring buffer record. */
struct http_event {
	__u64 ts_ns;     /* bpf_ktime_get_boot_ns when the call completed */
	__u64 cookie;    /* socket cookie, as the flow probe's bpf_get_socket_cookie */
	__u32 pid;       /* tgid of the caller (0 for CLOSE from softirq) */
	__u32 seq;       /* TCP sequence number of the call's first byte: write_seq before a send, copied_seq before a receive */
	__u32 other_seq; /* the other direction's: copied_seq before a send, write_seq after a receive */
	__u32 size;      /* bytes the call moved (its return value) */
	__u16 cap_len;   /* bytes of the call captured after the header (SENT/RECEIVED) */
	__u8 kind;       /* enum http_kind */
	__u8 pad[5];
};

/* Payload of an OPEN record: the connection as its socket has it. */
struct http_conn {
	__u64 cgroup_id;      /* cgroup v2 id of the socket (sk_cgrp_data) */
	__u8 local_addr[16];  /* IPv4 in the first 4 bytes */
	__u8 remote_addr[16];
	__u16 local_port;     /* host order */
	__u16 remote_port;
	__u8 family;          /* AF_INET / AF_INET6 */
	__u8 pad[3];
	char comm[16];        /* the calling task's name */
};

#endif
