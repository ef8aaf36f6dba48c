// Package conntrack asks the kernel's connection tracking table, over
// ctnetlink, where a connection really went: on a kube-proxy node
// (iptables or IPVS) a pod's connection to a Service address is DNATed in
// the host network namespace, so the client's socket and packets only ever
// show the Service address, while the conntrack entry's reply tuple holds
// the backend that answered. One get by original tuple per connection; no
// event stream (its cost would grow with every connection of the node, not
// only those to Services).
package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ctnetlink message types and attributes (linux/netfilter/nfnetlink_conntrack.h).
const (
	ipctnlMsgCtNew = 0
	ipctnlMsgCtGet = 1

	ctaTupleOrig  = 1
	ctaTupleReply = 2

	ctaTupleIP    = 1
	ctaTupleProto = 2

	ctaIPv4Src = 1
	ctaIPv4Dst = 2
	ctaIPv6Src = 3
	ctaIPv6Dst = 4

	ctaProtoNum     = 1
	ctaProtoSrcPort = 2
	ctaProtoDstPort = 3

	nlaTypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
)

// ErrNotFound: no conntrack entry has this original tuple (the connection
// was never tracked, or its entry expired).
var ErrNotFound = errors.New("no conntrack entry")

// timeout bounds one request: the caller is a flush loop.
const timeout = time.Second

// Client queries the conntrack table of the network namespace it was
// opened in. Safe for concurrent use (requests are serialised).
type Client struct {
	mu  sync.Mutex
	fd  int
	seq uint32
	buf []byte // received datagrams
	req []byte // the request being built
}

// Open creates the netlink socket. It needs CAP_NET_ADMIN.
func Open() (*Client, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("netlink netfilter socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink socket: %w", err)
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink socket timeout: %w", err)
	}
	return &Client{fd: fd, buf: make([]byte, 8192)}, nil
}

// Close closes the socket.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

// ReplySource returns the source of the reply direction of the connection
// whose original direction is src → dst over proto (6 TCP, 17 UDP, 132
// SCTP): the backend that answered, after any DNAT. Without NAT it is dst.
func (c *Client) ReplySource(proto uint8, src, dst netip.AddrPort) (netip.AddrPort, error) {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if s.Is4() != d.Is4() {
		return netip.AddrPort{}, fmt.Errorf("address families differ: %v, %v", src, dst)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return netip.AddrPort{}, errors.New("conntrack client closed")
	}
	c.seq++
	c.req = appendRequest(c.req[:0], c.seq, proto, netip.AddrPortFrom(s, src.Port()), netip.AddrPortFrom(d, dst.Port()))
	if err := unix.Sendto(c.fd, c.req, 0, kernel); err != nil {
		return netip.AddrPort{}, fmt.Errorf("conntrack get: %w", err)
	}
	for {
		n, err := unix.Read(c.fd, c.buf)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("conntrack get: %w", err)
		}
		reply, done, err := parse(c.buf[:n], c.seq)
		if done {
			return reply, err
		}
	}
}

// kernel is the netlink address of the kernel.
var kernel = &unix.SockaddrNetlink{Family: unix.AF_NETLINK}

// appendRequest appends IPCTNL_MSG_CT_GET for the original tuple src → dst to b.
func appendRequest(b []byte, seq uint32, proto uint8, src, dst netip.AddrPort) []byte {
	family, srcType, dstType := byte(unix.AF_INET), uint16(ctaIPv4Src), uint16(ctaIPv4Dst)
	if !src.Addr().Is4() {
		family, srcType, dstType = unix.AF_INET6, ctaIPv6Src, ctaIPv6Dst
	}
	var a16 [16]byte
	b = append(b, make([]byte, unix.NLMSG_HDRLEN)...)
	// nfgenmsg: family, version, resource id (big endian, 0).
	b = append(b, family, unix.NFNETLINK_V0, 0, 0)
	orig := beginNested(&b, ctaTupleOrig)
	ip := beginNested(&b, ctaTupleIP)
	putAttr(&b, srcType, addrBytes(&a16, src.Addr()))
	putAttr(&b, dstType, addrBytes(&a16, dst.Addr()))
	endNested(b, ip)
	pr := beginNested(&b, ctaTupleProto)
	putAttr(&b, ctaProtoNum, append(a16[:0], proto))
	putAttr(&b, ctaProtoSrcPort, binary.BigEndian.AppendUint16(a16[:0], src.Port()))
	putAttr(&b, ctaProtoDstPort, binary.BigEndian.AppendUint16(a16[:0], dst.Port()))
	endNested(b, pr)
	endNested(b, orig)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], unix.NFNL_SUBSYS_CTNETLINK<<8|ipctnlMsgCtGet)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(b[8:], seq)
	return b
}

// addrBytes returns a's 4 or 16 bytes in buf.
func addrBytes(buf *[16]byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(buf[:0], v[:]...)
	}
	*buf = a.As16()
	return buf[:]
}

func putAttr(b *[]byte, typ uint16, data []byte) {
	l := unix.NLA_HDRLEN + len(data)
	*b = binary.NativeEndian.AppendUint16(*b, uint16(l))
	*b = binary.NativeEndian.AppendUint16(*b, typ)
	*b = append(*b, data...)
	for len(*b)%unix.NLA_ALIGNTO != 0 {
		*b = append(*b, 0)
	}
}

func beginNested(b *[]byte, typ uint16) int {
	at := len(*b)
	*b = binary.NativeEndian.AppendUint16(*b, 0)
	*b = binary.NativeEndian.AppendUint16(*b, typ|unix.NLA_F_NESTED)
	return at
}

func endNested(b []byte, at int) {
	binary.NativeEndian.PutUint16(b[at:], uint16(len(b)-at))
}

// parse reads the netlink messages of one datagram; done once the answer
// to seq is found (the reply source, or the kernel's error).
func parse(b []byte, seq uint32) (netip.AddrPort, bool, error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		typ := binary.NativeEndian.Uint16(b[4:])
		mseq := binary.NativeEndian.Uint32(b[8:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return netip.AddrPort{}, true, errors.New("conntrack: truncated netlink message")
		}
		msg := b[unix.NLMSG_HDRLEN:l]
		if aligned := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1); aligned < len(b) {
			b = b[aligned:]
		} else {
			b = nil
		}
		if mseq != seq {
			continue // a late answer to an earlier, timed-out request
		}
		switch typ {
		case unix.NLMSG_ERROR:
			if len(msg) < 4 {
				return netip.AddrPort{}, true, errors.New("conntrack: short netlink error")
			}
			errno := -int32(binary.NativeEndian.Uint32(msg))
			switch errno {
			case 0:
				continue // an acknowledgement
			case int32(unix.ENOENT):
				return netip.AddrPort{}, true, ErrNotFound
			}
			return netip.AddrPort{}, true, fmt.Errorf("conntrack get: %w", unix.Errno(errno))
		case unix.NFNL_SUBSYS_CTNETLINK<<8 | ipctnlMsgCtNew:
			if len(msg) < 4 {
				return netip.AddrPort{}, true, errors.New("conntrack: short entry")
			}
			ap, err := replySource(msg[4:])
			return ap, true, err
		}
	}
	return netip.AddrPort{}, false, nil
}

// replySource finds CTA_TUPLE_REPLY's source address and port.
func replySource(attrs []byte) (netip.AddrPort, error) {
	reply, ok := findAttr(attrs, ctaTupleReply)
	if !ok {
		return netip.AddrPort{}, errors.New("conntrack entry without reply tuple")
	}
	var (
		addr netip.Addr
		port uint16
	)
	if ip, ok := findAttr(reply, ctaTupleIP); ok {
		if v, ok := findAttr(ip, ctaIPv4Src); ok {
			addr, _ = netip.AddrFromSlice(v)
		} else if v, ok := findAttr(ip, ctaIPv6Src); ok {
			addr, _ = netip.AddrFromSlice(v)
		}
	}
	if pr, ok := findAttr(reply, ctaTupleProto); ok {
		if v, ok := findAttr(pr, ctaProtoSrcPort); ok && len(v) == 2 {
			port = binary.BigEndian.Uint16(v)
		}
	}
	if !addr.IsValid() {
		return netip.AddrPort{}, errors.New("conntrack reply tuple without source address")
	}
	return netip.AddrPortFrom(addr, port), nil
}

func findAttr(b []byte, typ uint16) ([]byte, bool) {
	for len(b) >= unix.NLA_HDRLEN {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		t := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < unix.NLA_HDRLEN || l > len(b) {
			return nil, false
		}
		if t == typ {
			return b[unix.NLA_HDRLEN:l], true
		}
		aligned := (l + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
		if aligned >= len(b) {
			break
		}
		b = b[aligned:]
	}
	return nil, false
}
