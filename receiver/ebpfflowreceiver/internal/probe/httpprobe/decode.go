package httpprobe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// Layout of struct http_event and struct http_conn (bpf/http/http.h);
// TestLayout checks it against the bpf2go types.
const (
	offTS      = 0
	offCookie  = 8
	offPID     = 16
	offSeq     = 20
	offOSeq    = 24
	offSize    = 28
	offCapLen  = 32
	offKind    = 34
	headerSize = 40

	connCgroup = 0
	connLocal  = 8
	connRemote = 24
	connLPort  = 40
	connRPort  = 42
	connFamily = 44
	connComm   = 48
	connSize   = 64

	// CaptureMax is the largest Config.CaptureBytes.
	CaptureMax = int(httpHttpLimitsHTTP_CAPTURE_MAX)
)

// Kinds of records.
const (
	kindSent     = uint8(httpHttpKindHTTP_KIND_SENT)
	kindReceived = uint8(httpHttpKindHTTP_KIND_RECEIVED)
	kindOpen     = uint8(httpHttpKindHTTP_KIND_OPEN)
	kindClose    = uint8(httpHttpKindHTTP_KIND_CLOSE)
)

// Handler receives the probe's records in the order the kernel wrote them.
// What it is given is reused after the call: it copies what it keeps.
type Handler interface {
	// Open reports the first call seen on a connection, before its chunk.
	Open(c *observed.HTTPConn)
	// Chunk reports one socket call.
	Chunk(ch *httpmatch.Chunk)
	// Close reports that the local socket was closed.
	Close(cookie uint64, at time.Time)
	// Tick is called with the current time after each batch of records and
	// at least every poll interval when none come.
	Tick(now time.Time)
}

var errShort = errors.New("http record shorter than its header")

// record is one decoded ring buffer record.
type record struct {
	kind   uint8
	cookie uint64
	chunk  httpmatch.Chunk   // kindSent, kindReceived
	conn   observed.HTTPConn // kindOpen
	close  time.Time         // kindClose
}

// decode fills r from one ring buffer record. r.chunk.Data aliases raw.
func decode(raw []byte, boot time.Time, r *record) error {
	if len(raw) < headerSize {
		return errShort
	}
	le := binary.LittleEndian
	ns := le.Uint64(raw[offTS:])
	if ns == 0 || !probe.ValidStamp(ns) {
		return fmt.Errorf("http record: bad timestamp %d", ns)
	}
	at := probe.WallTime(boot, ns)
	cookie := le.Uint64(raw[offCookie:])
	if cookie == 0 {
		return errors.New("http record: no socket cookie")
	}
	pid := le.Uint32(raw[offPID:])
	size := le.Uint32(raw[offSize:])
	capLen := int(le.Uint16(raw[offCapLen:]))
	r.kind, r.cookie = raw[offKind], cookie
	switch r.kind {
	case kindSent, kindReceived:
		switch {
		case capLen > CaptureMax || headerSize+capLen > len(raw):
			return fmt.Errorf("http record: captured %d bytes in a %d-byte record", capLen, len(raw))
		case uint32(capLen) > size:
			return fmt.Errorf("http record: captured %d of %d bytes", capLen, size)
		case size == 0 && r.kind == kindSent:
			return errors.New("http record: empty send")
		}
		dir := httpmatch.Sent
		if r.kind == kindReceived {
			dir = httpmatch.Received
		}
		r.chunk = httpmatch.Chunk{
			Conn: cookie, PID: pid, Dir: dir, Time: at,
			Seq: le.Uint32(raw[offSeq:]), HasSeq: true,
			OtherSeq: le.Uint32(raw[offOSeq:]), HasOtherSeq: true,
			Size: size,
			Data: raw[headerSize : headerSize+capLen],
		}
	case kindOpen:
		if capLen != connSize || headerSize+connSize > len(raw) {
			return fmt.Errorf("http open record: %d connection bytes in a %d-byte record", capLen, len(raw))
		}
		c := raw[headerSize : headerSize+connSize]
		local, remote, err := probe.Addrs(c[connFamily], [16]byte(c[connLocal:connLocal+16]), [16]byte(c[connRemote:connRemote+16]))
		if err != nil {
			return fmt.Errorf("http open record: %w", err)
		}
		var comm [16]int8
		for i := range comm {
			comm[i] = int8(c[connComm+i])
		}
		r.conn = observed.HTTPConn{
			Time:     at,
			Cookie:   cookie,
			PID:      pid,
			Comm:     probe.Comm(comm),
			CgroupID: le.Uint64(c[connCgroup:]),
			Local:    netip.AddrPortFrom(local, le.Uint16(c[connLPort:])),
			Remote:   netip.AddrPortFrom(remote, le.Uint16(c[connRPort:])),
		}
	case kindClose:
		r.close = at
	default:
		return fmt.Errorf("http record: kind %d", r.kind)
	}
	return nil
}
