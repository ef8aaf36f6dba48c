package httpprobe

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/httpmatch"
)

// TestLayout keeps decode's offsets equal to the C structs'.
func TestLayout(t *testing.T) {
	var e httpHttpEvent
	var c httpHttpConn
	for name, got := range map[string][2]uintptr{
		"ts":          {unsafe.Offsetof(e.TsNs), offTS},
		"cookie":      {unsafe.Offsetof(e.Cookie), offCookie},
		"pid":         {unsafe.Offsetof(e.Pid), offPID},
		"seq":         {unsafe.Offsetof(e.Seq), offSeq},
		"other_seq":   {unsafe.Offsetof(e.OtherSeq), offOSeq},
		"size":        {unsafe.Offsetof(e.Size), offSize},
		"cap_len":     {unsafe.Offsetof(e.CapLen), offCapLen},
		"kind":        {unsafe.Offsetof(e.Kind), offKind},
		"header":      {unsafe.Sizeof(e), headerSize},
		"cgroup":      {unsafe.Offsetof(c.CgroupId), connCgroup},
		"local":       {unsafe.Offsetof(c.LocalAddr), connLocal},
		"remote":      {unsafe.Offsetof(c.RemoteAddr), connRemote},
		"local_port":  {unsafe.Offsetof(c.LocalPort), connLPort},
		"remote_port": {unsafe.Offsetof(c.RemotePort), connRPort},
		"family":      {unsafe.Offsetof(c.Family), connFamily},
		"comm":        {unsafe.Offsetof(c.Comm), connComm},
		"conn":        {unsafe.Sizeof(c), connSize},
	} {
		assert.Equal(t, got[1], got[0], name)
	}
}

var boot = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func rawRecord(t *testing.T, h httpHttpEvent, payload []byte) []byte {
	return append(testkit.Encode(t, h), payload...)
}

func TestDecodeChunk(t *testing.T) {
	data := []byte("GET / HTTP/1.1\r\n\r\n")
	raw := rawRecord(t, httpHttpEvent{TsNs: 5e9, Cookie: 77, Pid: 42, Seq: 1000, OtherSeq: 9, Size: 4000,
		CapLen: uint16(len(data)), Kind: kindSent}, data)
	var r record
	require.NoError(t, decode(raw, boot, &r))
	assert.Equal(t, kindSent, r.kind)
	assert.Equal(t, httpmatch.Chunk{Conn: 77, PID: 42, Dir: httpmatch.Sent, Time: boot.Add(5 * time.Second),
		Seq: 1000, HasSeq: true, OtherSeq: 9, HasOtherSeq: true, Size: 4000, Data: data}, r.chunk)

	raw = rawRecord(t, httpHttpEvent{TsNs: 6e9, Cookie: 77, Pid: 42, Seq: 5, Kind: kindReceived}, nil)
	require.NoError(t, decode(raw, boot, &r))
	assert.Equal(t, httpmatch.Received, r.chunk.Dir)
	assert.Zero(t, r.chunk.Size, "end of stream")
	assert.Empty(t, r.chunk.Data)
}

func TestDecodeOpenClose(t *testing.T) {
	conn := httpHttpConn{CgroupId: 1234, LocalPort: 8080, RemotePort: 41000, Family: 10}
	local, remote := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	conn.LocalAddr, conn.RemoteAddr = local.As16(), remote.As16()
	for i, b := range []byte("nginx") {
		conn.Comm[i] = int8(b)
	}
	raw := rawRecord(t, httpHttpEvent{TsNs: 1e9, Cookie: 9, Pid: 7, Size: connSize, CapLen: connSize, Kind: kindOpen}, testkit.Encode(t, conn))
	var r record
	require.NoError(t, decode(raw, boot, &r))
	assert.Equal(t, kindOpen, r.kind)
	assert.Equal(t, uint64(9), r.conn.Cookie)
	assert.Equal(t, uint32(7), r.conn.PID)
	assert.Equal(t, "nginx", r.conn.Comm)
	assert.Equal(t, uint64(1234), r.conn.CgroupID)
	assert.Equal(t, netip.AddrPortFrom(local, 8080), r.conn.Local)
	assert.Equal(t, netip.AddrPortFrom(remote, 41000), r.conn.Remote)
	assert.Equal(t, boot.Add(time.Second), r.conn.Time)

	raw = rawRecord(t, httpHttpEvent{TsNs: 2e9, Cookie: 9, Kind: kindClose}, nil)
	require.NoError(t, decode(raw, boot, &r))
	assert.Equal(t, kindClose, r.kind)
	assert.Equal(t, uint64(9), r.cookie)
	assert.Equal(t, boot.Add(2*time.Second), r.close)
}

// TestDecodeRejects: records a kernel cannot have written are errors
// (counted by Run as decode errors), never chunks.
func TestDecodeRejects(t *testing.T) {
	ok := httpHttpEvent{TsNs: 1, Cookie: 1, Size: 4, CapLen: 4, Kind: kindSent}
	conn := testkit.Encode(t, httpHttpConn{Family: 2})
	for name, raw := range map[string][]byte{
		"short":           make([]byte, headerSize-1),
		"no time":         rawRecord(t, func() httpHttpEvent { e := ok; e.TsNs = 0; return e }(), []byte("abcd")),
		"no cookie":       rawRecord(t, func() httpHttpEvent { e := ok; e.Cookie = 0; return e }(), []byte("abcd")),
		"past record":     rawRecord(t, ok, []byte("abc")),
		"more than moved": rawRecord(t, func() httpHttpEvent { e := ok; e.Size = 3; return e }(), []byte("abcd")),
		"empty send":      rawRecord(t, func() httpHttpEvent { e := ok; e.Size, e.CapLen = 0, 0; return e }(), nil),
		"bad kind":        rawRecord(t, func() httpHttpEvent { e := ok; e.Kind = 9; return e }(), []byte("abcd")),
		"over capture":    rawRecord(t, func() httpHttpEvent { e := ok; e.Size, e.CapLen = 1<<20, uint16(CaptureMax+1); return e }(), make([]byte, CaptureMax+1)),
		"open short":      rawRecord(t, httpHttpEvent{TsNs: 1, Cookie: 1, CapLen: connSize, Kind: kindOpen}, conn[:20]),
		"open family":     rawRecord(t, httpHttpEvent{TsNs: 1, Cookie: 1, CapLen: connSize, Kind: kindOpen}, testkit.Encode(t, httpHttpConn{Family: 1})),
	} {
		var r record
		assert.Error(t, decode(raw, boot, &r), name)
	}
}

// FuzzDecode: any bytes decode or fail cleanly, and a decoded chunk never
// holds more than the call moved or than the record.
func FuzzDecode(f *testing.F) {
	f.Add(append(testkit.Encode(f, httpHttpEvent{TsNs: 1, Cookie: 1, Size: 4, CapLen: 4, Kind: kindSent}), "abcd"...))
	f.Add(append(testkit.Encode(f, httpHttpEvent{TsNs: 1, Cookie: 1, CapLen: connSize, Kind: kindOpen}), testkit.Encode(f, httpHttpConn{Family: 2})...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r record
		if decode(raw, boot, &r) != nil {
			return
		}
		if r.kind == kindSent || r.kind == kindReceived {
			if uint32(len(r.chunk.Data)) > r.chunk.Size || len(r.chunk.Data) > len(raw)-headerSize {
				t.Fatalf("chunk of %d bytes, size %d, record %d", len(r.chunk.Data), r.chunk.Size, len(raw))
			}
		}
	})
}
