package httpmatch

import "strings"

// methodString returns the method, without allocating for the common ones.
func methodString(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return string(b)
}

// Bounds of the strings a Matcher shares between connections.
const (
	maxShared    = 4096 // strings; the table starts over beyond
	maxSharedLen = 256  // bytes: longer ones are made for their request
)

// str returns b as a string without allocating when it was made before:
// *last when b equals it (requests on one connection tend to repeat host,
// agent and path), else one shared by all connections (the same paths,
// hosts and agents recur over many short connections), else a new one.
// *last keeps what it returns.
func (m *Matcher) str(last *string, b []byte) string {
	if string(b) == *last {
		return *last
	}
	if len(b) > maxSharedLen {
		*last = string(b)
		return *last
	}
	s, ok := m.shared[string(b)]
	if !ok {
		if len(m.shared) >= maxShared {
			clear(m.shared)
		}
		s = string(b)
		m.shared[s] = s
	}
	*last = s
	return s
}

// target is a request target split (RFC 9112 3.2).
type reqTarget[T string | []byte] struct {
	path      T // without query or fragment
	scheme    T // absolute-form only
	authority T // absolute-form (userinfo removed) or authority-form
	hasAuth   bool
}

func cutPath[T string | []byte](s T) T {
	for i := 0; i < len(s); i++ {
		if s[i] == '?' || s[i] == '#' {
			return s[:i]
		}
	}
	return s
}

func index[T string | []byte](s T, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func splitTarget[T string | []byte](s T) reqTarget[T] {
	var t reqTarget[T]
	if len(s) == 0 || s[0] == '/' || s[0] == '*' {
		t.path = cutPath(s) // origin-form, or asterisk-form "*"
		return t
	}
	i := index(s, ':')
	if i > 0 && len(s) >= i+3 && s[i+1] == '/' && s[i+2] == '/' {
		// absolute-form: scheme "://" authority path
		t.scheme = s[:i]
		rest := s[i+3:]
		end := len(rest)
		for j := 0; j < len(rest); j++ {
			if c := rest[j]; c == '/' || c == '?' || c == '#' {
				end = j
				break
			}
		}
		auth := rest[:end]
		for j := len(auth) - 1; j >= 0; j-- {
			if auth[j] == '@' {
				auth = auth[j+1:] // never keep userinfo
				break
			}
		}
		t.authority, t.hasAuth = auth, true
		t.path = cutPath(rest[end:])
		if len(t.path) == 0 {
			t.path = s[:0]
		}
		return t
	}
	t.authority, t.hasAuth = s, true // authority-form (CONNECT)
	return t
}

// splitHostPort splits an authority "host[:port]" or "[v6]:port"; port 0
// when absent or not a port.
func splitHostPort[T string | []byte](s T) (host T, port int) {
	if len(s) > 0 && s[0] == '[' {
		i := index(s, ']')
		if i < 0 {
			return s, 0
		}
		host, rest := s[1:i], s[i+1:]
		if len(rest) > 1 && rest[0] == ':' {
			return host, parsePort(rest[1:])
		}
		return host, 0
	}
	i := -1
	for j := len(s) - 1; j >= 0; j-- {
		if s[j] == ':' {
			i = j
			break
		}
	}
	if i < 0 || index(s[:i], ':') >= 0 {
		return s, 0 // no port, or an unbracketed IPv6 address
	}
	return s[:i], parsePort(s[i+1:])
}

func parsePort[T string | []byte](s T) int {
	if len(s) == 0 || len(s) > 5 {
		return 0
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0
		}
		n = n*10 + int(s[i]-'0')
	}
	if n > 65535 {
		return 0
	}
	return n
}

// parseTraceparent fills ex's trace context from a W3C traceparent value
// ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>"); an invalid
// value leaves it unset.
func parseTraceparent[T string | []byte](v T, ex *Exchange) {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return
	}
	ver, ok := hexByte(v[0], v[1])
	if !ok || ver == 0xff || ver == 0 && len(v) != 55 || len(v) > 55 && v[55] != '-' {
		return
	}
	var tid [16]byte
	var pid [8]byte
	var nz1, nz2 byte
	for i := range tid {
		if tid[i], ok = hexByte(v[3+2*i], v[4+2*i]); !ok {
			return
		}
		nz1 |= tid[i]
	}
	for i := range pid {
		if pid[i], ok = hexByte(v[36+2*i], v[37+2*i]); !ok {
			return
		}
		nz2 |= pid[i]
	}
	flags, ok := hexByte(v[53], v[54])
	if !ok || nz1 == 0 || nz2 == 0 {
		return
	}
	ex.HasTraceparent, ex.TraceID, ex.ParentSpanID, ex.TraceFlags = true, tid, pid, flags
}

// hexByte decodes two lower-case hex digits (W3C trace context allows no
// upper case).
func hexByte(a, b byte) (byte, bool) {
	x, ok1 := hexDigit(a)
	y, ok2 := hexDigit(b)
	return x<<4 | y, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	v := hexLower[c]
	return v & 0xf, v != 0xff
}

// hexLower maps lower-case hex digits to their value, other bytes to 0xff.
var hexLower = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
	}
	return t
}()

// splitGRPCPath splits a gRPC :path "/package.Service/Method".
func splitGRPCPath(p string) (service, method string) {
	if len(p) < 4 || p[0] != '/' {
		return "", ""
	}
	i := strings.LastIndexByte(p, '/')
	if i <= 1 || i == len(p)-1 {
		return "", ""
	}
	return p[1:i], p[i+1:]
}

// atoi3 parses a status code or a small number; -1 if not digits.
func atoi(s string) int {
	if len(s) == 0 || len(s) > 9 {
		return -1
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// hasPrefixFold reports whether s starts with the lower-case prefix,
// ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && eqFold(s[:len(prefix)], prefix)
}
