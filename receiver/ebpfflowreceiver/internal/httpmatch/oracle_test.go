package httpmatch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// The exchanges of the real captures in testdata/ (made by
// testdata/record), seen from either end, compared field by field with
// tshark's HTTP and HTTP/2 dissection of the same capture, and for nginx
// with what curl reported of each transfer.

// The secrets testdata/record planted in the captures.
const (
	plantedAuth   = "planted-authz-7f3a"
	plantedCookie = "planted-cookie-91c2"
	plantedQuery  = "planted-query-5be8"
	plantedSetCk  = "planted-setcookie-44d1"
)

var captures = []string{"nginx", "gohttp", "grpc"}

// wantEx is one request as tshark dissects it, with its response.
type wantEx struct {
	conn       int    // tcp.stream
	seq        uint32 // HTTP/1: Seq of the request's first byte
	streamID   uint32 // HTTP/2 stream
	method     string
	uri        string
	authority  string
	ua         string
	status     int // final status; 0: none dissected
	grpcStatus int // -1: none
	upgrade    bool
}

func (w wantEx) key() string {
	if w.streamID != 0 {
		return fmt.Sprintf("%d/h2/%d", w.conn, w.streamID)
	}
	return fmt.Sprintf("%d/h1/%d", w.conn, w.seq)
}

func exKey(conn int, e *Exchange) string {
	if e.StreamID != 0 {
		return fmt.Sprintf("%d/h2/%d", conn, e.StreamID)
	}
	return fmt.Sprintf("%d/h1/%d", conn, e.Seq)
}

func serverPorts(cs []*tcpConn) []string {
	set := map[string]bool{}
	for _, c := range cs {
		set[strconv.Itoa(int(c.server.Port()))] = true
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func tshark(t *testing.T, pcap string, ports []string) []map[string]any {
	t.Helper()
	args := []string{"-r", pcap, "-T", "json", "--no-duplicate-keys", "-Y", "http || http2"}
	for _, p := range ports {
		args = append(args, "-d", "tcp.port=="+p+",http")
	}
	out, err := exec.Command("tshark", args...).Output()
	require.NoError(t, err)
	var pkts []struct {
		Source struct {
			Layers map[string]any `json:"layers"`
		} `json:"_source"`
	}
	require.NoError(t, json.Unmarshal(out, &pkts))
	var layers []map[string]any
	for _, p := range pkts {
		layers = append(layers, p.Source.Layers)
	}
	return layers
}

func asList(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	}
	return []any{v}
}

// find returns the first value of key in o, depth first.
func find(o any, key string) (string, bool) {
	switch o := o.(type) {
	case map[string]any:
		if v, ok := o[key]; ok {
			if l := asList(v); len(l) > 0 {
				if s, ok := l[0].(string); ok {
					return s, true
				}
			}
		}
		for _, v := range o {
			if s, ok := find(v, key); ok {
				return s, true
			}
		}
	case []any:
		for _, v := range o {
			if s, ok := find(v, key); ok {
				return s, true
			}
		}
	}
	return "", false
}

func num(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// oracle reads tshark's dissection into the exchanges it shows.
func oracle(t *testing.T, pcap string, cs []*tcpConn) map[string]*wantEx {
	want := map[string]*wantEx{}
	h1ByFrame := map[int]*wantEx{}
	type h2key struct {
		conn int
		id   uint32
	}
	h2 := map[h2key]*wantEx{}
	seqOf := map[string]uint32{} // frame number → its Seq
	for _, c := range cs {
		for _, s := range c.segs {
			seqOf[strconv.Itoa(s.frame)] = s.seq
		}
	}
	for _, l := range tshark(t, pcap, serverPorts(cs)) {
		frame, _ := find(l["frame"], "frame.number")
		stream, _ := find(l["tcp"], "tcp.stream")
		srcPort, _ := find(l["tcp"], "tcp.srcport")
		// A message over several segments starts in the first.
		first, ok := find(l["tcp.segments"], "tcp.segment")
		if !ok {
			first = frame
		}
		conn := num(stream)
		fromServer := srcPort == strconv.Itoa(int(cs[conn].server.Port()))
		for _, msg := range asList(l["http"]) {
			if m, ok := find(msg, "http.request.method"); ok {
				w := &wantEx{conn: conn, method: m, grpcStatus: -1, seq: seqOf[first]}
				w.uri, _ = find(msg, "http.request.uri")
				w.authority, _ = find(msg, "http.host")
				w.ua, _ = find(msg, "http.user_agent")
				up, _ := find(msg, "http.upgrade")
				w.upgrade = up == "h2c"
				h1ByFrame[num(frame)] = w
				want[w.key()] = w
			} else if code, ok := find(msg, "http.response.code"); ok && num(code) >= 200 || code == "101" {
				in, _ := find(msg, "http.request_in")
				if w := h1ByFrame[num(in)]; w != nil {
					w.status = num(code)
				}
			}
		}
		for _, layer := range asList(l["http2"]) {
			lm, _ := layer.(map[string]any)
			for _, st := range asList(lm["http2.stream"]) {
				sm, _ := st.(map[string]any)
				typ, _ := find(sm, "http2.type")
				if typ != "1" {
					continue
				}
				idS, _ := find(sm, "http2.streamid")
				id := uint32(num(idS))
				k := h2key{conn, id}
				w := h2[k]
				if w == nil {
					w = &wantEx{conn: conn, streamID: id, grpcStatus: -1}
					h2[k] = w
				}
				for _, h := range asList(sm["http2.header"]) {
					name, _ := find(h, "http2.header.name")
					value, _ := find(h, "http2.header.value")
					switch {
					case !fromServer && name == ":method":
						w.method = value
					case !fromServer && name == ":path":
						w.uri = value
					case !fromServer && name == ":authority":
						w.authority = value
					case !fromServer && name == "user-agent":
						w.ua = value
					case fromServer && name == ":status" && num(value) >= 200:
						w.status = num(value)
					case fromServer && name == "grpc-status":
						w.grpcStatus = num(value)
					}
				}
			}
		}
	}
	for k, w := range h2 {
		if w.method != "" {
			want[w.key()] = w
			continue
		}
		// Stream 1 of an h2c upgrade: its request was HTTP/1.
		for uk, u := range want {
			if u.conn == k.conn && u.upgrade && k.id == 1 && u.status == 101 {
				delete(want, uk)
				u.status, u.streamID = w.status, 1
				want[u.key()] = u
			}
		}
	}
	return want
}

func TestCapturesMatchTshark(t *testing.T) {
	testkit.RequireTools(t, "tshark") // the oracle
	for _, name := range captures {
		t.Run(name, func(t *testing.T) {
			segs, err := readPcap(filepath.Join("testdata", name+".pcap"))
			require.NoError(t, err)
			cs := conns(segs)
			want := oracle(t, filepath.Join("testdata", name+".pcap"), cs)
			require.NotEmpty(t, want)
			for _, role := range []Role{RoleClient, RoleServer} {
				got := exchangesOf(t, cs, role, 0)
				matched := 0
				for _, g := range got {
					e := g.ex
					w := want[exKey(g.conn, &e)]
					if w == nil {
						// tshark could not reassemble it (the snap length cut
						// its body): the curl oracle covers it.
						require.Equal(t, "nginx", name, "%v: an exchange tshark does not show: %+v", role, e)
						continue
					}
					matched++
					ctx := fmt.Sprintf("%s %v %s", name, role, w.key())
					assert.Equal(t, role, e.Role, ctx)
					assert.Equal(t, w.method, e.Method, ctx)
					assert.Equal(t, cutPath(w.uri), e.Path, ctx)
					host, port := splitHostPort(w.authority)
					assert.Equal(t, host, e.ServerAddress, ctx)
					assert.Equal(t, port, e.ServerPort, ctx)
					assert.Equal(t, w.ua, e.UserAgent, ctx)
					if w.status != 0 {
						assert.Equal(t, w.status, e.StatusCode, ctx)
						assert.Equal(t, OutcomeOK, e.Outcome, ctx)
					}
					assert.Equal(t, w.grpcStatus, e.GRPCStatus, ctx)
					if w.streamID != 0 {
						assert.Equal(t, Proto2, e.Proto, ctx)
					}
				}
				assert.Equal(t, len(want), matched, "%s %v: every request tshark shows is an exchange", name, role)
			}
		})
	}
}

type connEx struct {
	conn int
	ex   Exchange
}

// exchangesOf runs a capture's connections as one end's capture would
// report them, and checks what must hold of any capture.
func exchangesOf(t *testing.T, cs []*tcpConn, role Role, limit int) []connEx {
	t.Helper()
	var got []connEx
	var cur int
	m, err := New(Config{}, func(e *Exchange) { got = append(got, connEx{cur, *e}) })
	require.NoError(t, err)
	for _, c := range cs {
		cur = c.index
		chs, last := c.chunks(role, limit)
		for i := range chs {
			m.Add(&chs[i])
		}
		m.Close(uint64(c.index+1), last.Add(time.Millisecond))
	}
	checkInvariants(t, m)
	assert.Zero(t, lostTotal(m.Stats()), "%v: %+v", role, m.Stats())
	assert.Zero(t, m.Conns())
	for _, g := range got {
		s := fmt.Sprintf("%#v", g.ex)
		for _, secret := range []string{plantedAuth, plantedCookie, plantedQuery, plantedSetCk} {
			assert.NotContains(t, s, secret)
		}
	}
	return got
}

// TestNginxMatchesCurl: every transfer curl reports is an exchange with
// its status and body size, including those whose bodies the snap length
// cut (a 10 MiB file, uploads), from both ends.
func TestNginxMatchesCurl(t *testing.T) {
	segs, err := readPcap("testdata/nginx.pcap")
	require.NoError(t, err)
	cs := conns(segs)
	type transfer struct {
		Method       string `json:"method"`
		HTTPCode     int    `json:"http_code"`
		LocalPort    int    `json:"local_port"`
		SizeDownload int64  `json:"size_download"`
		SizeUpload   int64  `json:"size_upload"`
		URL          string `json:"url_effective"`
	}
	f, err := os.Open("testdata/nginx.curl.jsonl")
	require.NoError(t, err)
	defer f.Close()
	var want []transfer
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var tr transfer
		require.NoError(t, json.Unmarshal(sc.Bytes(), &tr))
		want = append(want, tr)
	}
	require.Len(t, want, 9)
	for _, role := range []Role{RoleClient, RoleServer} {
		for _, limit := range []int{0, 512} {
			got := exchangesOf(t, cs, role, limit)
			require.Len(t, got, len(want), "%v limit %d", role, limit)
			for i, w := range want {
				e := got[i].ex
				ctx := fmt.Sprintf("%v limit %d: %s %s", role, limit, w.Method, w.URL)
				assert.Equal(t, int(cs[got[i].conn].client.Port()), w.LocalPort, ctx)
				assert.Equal(t, w.Method, e.Method, ctx)
				assert.True(t, strings.HasSuffix(strings.SplitN(w.URL, "?", 2)[0], e.Path), ctx)
				assert.Equal(t, w.HTTPCode, e.StatusCode, ctx)
				assert.Equal(t, OutcomeOK, e.Outcome, ctx)
				assert.Equal(t, w.SizeDownload, e.RespBodySize, ctx)
				switch i {
				case 6:
					// Chunked: curl counts the framing it sent, the body is
					// the 100 KiB file; nginx may answer before the last
					// chunk, and then the size is not known yet (-1).
					assert.Contains(t, []int64{-1, 100 << 10}, e.ReqBodySize, ctx)
					assert.Greater(t, w.SizeUpload, int64(100<<10), ctx)
				case 7: // Content-Length, after 100 Continue
					assert.Equal(t, w.SizeUpload, e.ReqBodySize, ctx)
				}
			}
		}
	}
}
