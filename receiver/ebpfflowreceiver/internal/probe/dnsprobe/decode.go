package dnsprobe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/flowprobe"
)

// Layout of struct dns_event (bpf/dns/dns.h); TestLayout checks it against
// the bpf2go type (flowprobe.DNSEvent).
const (
	offTS      = 0
	offCookie  = 8
	offCgroup  = 16
	offLocal   = 24
	offRemote  = 40
	offLPort   = 56
	offRPort   = 58
	offSeq     = 60
	offLen     = 64
	offCapLen  = 68
	offFamily  = 70
	offProto   = 71
	offEgress  = 72
	headerSize = 80 // payload follows the header

	captureSize = flowprobe.DNSCapture
)

var errShort = errors.New("dns record shorter than its header")

// decode fills p from one ring buffer record: the header, cap_len payload
// bytes, and possibly unused bytes up to the record's size class.
// p.Payload aliases raw.
func decode(raw []byte, boot time.Time, p *observed.DNSPacket) error {
	if len(raw) < headerSize {
		return errShort
	}
	le := binary.LittleEndian
	ns := le.Uint64(raw[offTS:])
	capLen := int(le.Uint16(raw[offCapLen:]))
	wireLen := le.Uint32(raw[offLen:])
	family, proto, egress := raw[offFamily], raw[offProto], raw[offEgress]
	switch {
	case ns == 0 || !probe.ValidStamp(ns):
		return fmt.Errorf("dns record: bad timestamp %d", ns)
	case capLen == 0 || capLen > captureSize || headerSize+capLen > len(raw):
		return fmt.Errorf("dns record: captured %d bytes in a %d-byte record", capLen, len(raw))
	case uint32(capLen) > wireLen:
		return fmt.Errorf("dns record: captured %d of %d bytes", capLen, wireLen)
	case proto != uint8(observed.TransportUDP) && proto != uint8(observed.TransportTCP):
		return fmt.Errorf("dns record: protocol %d", proto)
	case egress > 1:
		return fmt.Errorf("dns record: direction %d", egress)
	}
	local, remote, err := probe.Addrs(family, [16]byte(raw[offLocal:offLocal+16]), [16]byte(raw[offRemote:offRemote+16]))
	if err != nil {
		return fmt.Errorf("dns record: %w", err)
	}
	*p = observed.DNSPacket{
		Time:      probe.WallTime(boot, ns),
		Cookie:    le.Uint64(raw[offCookie:]),
		CgroupID:  le.Uint64(raw[offCgroup:]),
		Egress:    egress == 1,
		Transport: observed.Transport(proto),
		Local:     netip.AddrPortFrom(local, le.Uint16(raw[offLPort:])),
		Remote:    netip.AddrPortFrom(remote, le.Uint16(raw[offRPort:])),
		Seq:       le.Uint32(raw[offSeq:]),
		Len:       wireLen,
		Payload:   raw[headerSize : headerSize+capLen],
	}
	return nil
}
