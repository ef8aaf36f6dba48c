/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Types shared by drop.bpf.c and Go (via bpf2go -type). */
#ifndef EBPFFLOW_DROP_H
#define EBPFFLOW_DROP_H

/* Aggregation key: one entry per drop site, reason, packet tuple and device.
 * Ordered by size so the struct has no implicit padding (hash keys compare
 * every byte). Non-IP packets have family 0 and a zero tuple. */
struct drop_key {
	__u64 location; /* kernel address that freed the skb */
	__u32 reason;   /* enum skb_drop_reason (subsystem reasons keep their high bits) */
	__u32 ifindex;  /* skb->dev, else skb->skb_iif; 0 if neither */
	__u8 saddr[16]; /* as on the wire; IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;    /* host order; 0 for ICMP, other protocols and non-first fragments */
	__u16 dport;
	__u8 family;    /* AF_INET / AF_INET6 / 0 */
	__u8 proto;     /* IPPROTO_* (the final IPv6 next header) */
	__u8 pad[2];
};

struct drop_value {
	__u64 count;     /* packets (GSO segments counted), cumulative */
	__u64 bytes;     /* IP layer (header + payload) per packet, cumulative; skb->len if not IP */
	__u64 last_seen; /* bpf_ktime_get_boot_ns */
	__u64 cgroup_id; /* cgroup v2 id of skb->sk (or the looked-up rx socket); 0 if none */
	char ifname[16]; /* skb->dev->name when the entry was created */
};

#endif
