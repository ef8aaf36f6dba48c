package testkit

import (
	"encoding/binary"
	"net/netip"
)

// Hand-built packets for BPF_PROG_TEST_RUN: a parser's corner cases (IPv4
// options, IPv6 extension headers, truncation) without having to make a
// kernel send them. Prepend a 14-byte Ethernet header whose type is 0x0800
// or 0x86DD.

// Addresses of the packets IPv4 and IPv6 build (documentation ranges).
var (
	PacketSrc4, PacketDst4 = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	PacketSrc6, PacketDst6 = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
)

// IPv4 returns an IPv4 header with optWords words of options and the
// protocol number proto, followed by l4.
func IPv4(proto byte, optWords int, l4 []byte) []byte {
	h := make([]byte, 20+4*optWords)
	h[0] = 0x45 + byte(optWords)
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(l4)))
	h[8], h[9] = 64, proto
	a, b := PacketSrc4.As4(), PacketDst4.As4()
	copy(h[12:], a[:])
	copy(h[16:], b[:])
	return append(h, l4...)
}

// IPv6 returns an IPv6 header whose next header is next, followed by rest
// (extension headers and the L4 header).
func IPv6(next byte, rest []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(rest)))
	h[6], h[7] = next, 64
	a, b := PacketSrc6.As16(), PacketDst6.As16()
	copy(h[8:], a[:])
	copy(h[24:], b[:])
	return append(h, rest...)
}

// UDP returns a UDP header and payload zero bytes.
func UDP(sport, dport uint16, payload int) []byte {
	h := make([]byte, 8+payload)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+payload))
	return h
}

// TCP returns a TCP header with optWords words of options and flags,
// and payload zero bytes.
func TCP(sport, dport uint16, optWords int, flags byte, payload int) []byte {
	h := make([]byte, 20+4*optWords+payload)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12] = byte(5+optWords) << 4
	h[13] = flags
	return h
}
