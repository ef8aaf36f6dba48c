package httpmatch

import (
	"bytes"
	"strings"
)

// head is what an HTTP/1 message head says, as slices of the head's bytes.
type head struct {
	req         bool
	preface     bool // the HTTP/2 client preface's "PRI * HTTP/2.0" line
	method      []byte
	target      []byte
	proto       Proto
	status      int
	host        []byte
	hasHost     bool
	ua          []byte
	traceparent []byte
	cl          int64 // Content-Length; -1 when absent
	chunked     bool  // the final transfer coding is chunked
	teOther     bool  // a transfer coding other than a final chunked
	upgradeH2C  bool  // Upgrade lists h2c
	truncated   bool  // the capture ended inside the head: fields past it are unknown
}

// startKind tells what the first bytes of a message can be.
type startKind uint8

const (
	kindNone     startKind = iota // not an HTTP/1 message start
	kindMaybe                     // too few bytes to tell
	kindRequest                   // a request line (or the HTTP/2 preface)
	kindResponse                  // a status line
)

const maxMethod = 32

func isTchar(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// classify tells from b's first bytes whether a message starts there.
func classify(b []byte) startKind {
	const httpv = "HTTP/1."
	if len(b) > 0 && b[0] == 'H' {
		n := min(len(b), len(httpv)+5) // "HTTP/1.x NNN"
		for i := 0; i < n; i++ {
			var ok bool
			switch {
			case i < len(httpv):
				ok = b[i] == httpv[i]
			case i == len(httpv):
				ok = b[i] == '0' || b[i] == '1'
			case i == len(httpv)+1:
				ok = b[i] == ' '
			default:
				ok = '0' <= b[i] && b[i] <= '9'
			}
			if !ok {
				if i >= 4 {
					return kindNone // "HTTP" is not a method token either: HTTP/… is a version
				}
				goto request
			}
		}
		if n < len(httpv)+5 {
			return kindMaybe
		}
		return kindResponse
	}
request:
	// Methods are upper-case tokens in practice (RFC 9110 9.1); lower
	// case here is a text protocol that is not HTTP.
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case 'A' <= c && c <= 'Z' || c == '-' || c == '_':
			if i >= maxMethod {
				return kindNone
			}
		case c == ' ' && i > 0:
			if i+1 == len(b) {
				return kindMaybe
			}
			switch t := b[i+1]; {
			case t == '/' || t == '*' || 'a' <= t && t <= 'z' || 'A' <= t && t <= 'Z' || '0' <= t && t <= '9' || t == '[':
				return kindRequest
			}
			return kindNone
		default:
			return kindNone
		}
	}
	return kindMaybe
}

// headEnd searches b from from (a line start) for the empty line ending a
// head: it returns the index past it, or -1 and the start of the first
// incomplete line.
func headEnd(b []byte, from int) (end, resume int) {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, i
		}
		if i > 0 && (j == 0 || j == 1 && b[i] == '\r') {
			return i + j + 1, 0
		}
		i += j + 1
	}
}

// parseHead parses the head at the start of b in one pass: end is the
// index past its empty line, or -1 when b holds no complete head (h then
// holds what its complete lines say). ok is false for bytes that are not
// an HTTP/1 head.
func parseHead(b []byte, h *head) (end int, ok bool) {
	h.cl = -1
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return -1, true
	}
	if !parseStartLine(trimCR(b[:nl]), h) {
		return -1, false
	}
	for i := nl + 1; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, true
		}
		line := trimCR(b[i : i+j])
		i += j + 1
		if len(line) == 0 {
			return i, true
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // obsolete line folding: continues a field not kept
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !h.field(line[:colon], line[colon+1:]) {
			return -1, false
		}
	}
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func parseStartLine(line []byte, h *head) bool {
	if len(line) >= 12 && string(line[:7]) == "HTTP/1." {
		switch line[7] {
		case '0':
			h.proto = Proto10
		case '1':
			h.proto = Proto11
		default:
			return false
		}
		if line[8] != ' ' {
			return false
		}
		st := 0
		for _, c := range line[9:12] {
			if c < '0' || c > '9' {
				return false
			}
			st = st*10 + int(c-'0')
		}
		if st < 100 || len(line) > 12 && line[12] != ' ' {
			return false
		}
		h.status = st
		return true
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > maxMethod {
		return false
	}
	for _, c := range line[:sp] {
		if !isTchar(c) {
			return false
		}
	}
	rest := line[sp+1:]
	sp2 := bytes.LastIndexByte(rest, ' ')
	if sp2 <= 0 {
		return false
	}
	target, version := rest[:sp2], rest[sp2+1:]
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	h.req = true
	h.method, h.target = line[:sp], target
	switch string(version) {
	case "HTTP/1.1":
		h.proto = Proto11
	case "HTTP/1.0":
		h.proto = Proto10
	case "HTTP/2.0":
		if string(h.method) != "PRI" || string(target) != "*" {
			return false
		}
		h.preface = true
	default:
		return false
	}
	return true
}

// field takes one header field, its value untrimmed (most fields are not
// kept: only those are trimmed); false: a malformed one that matters.
func (h *head) field(name, value []byte) bool {
	switch len(name) {
	case 4:
		if eqFold(name, "host") && !h.hasHost {
			h.host, h.hasHost = trimOWS(value), true
		}
	case 7:
		if eqFold(name, "upgrade") {
			forTokens(value, func(t []byte) {
				if eqFold(t, "h2c") {
					h.upgradeH2C = true
				}
			})
		}
	case 10:
		if eqFold(name, "user-agent") {
			h.ua = trimOWS(value)
		}
	case 11:
		if eqFold(name, "traceparent") {
			h.traceparent = trimOWS(value)
		}
	case 14:
		if eqFold(name, "content-length") {
			return h.contentLength(value)
		}
	case 17:
		if eqFold(name, "transfer-encoding") {
			forTokens(value, func(t []byte) {
				h.chunked = eqFold(t, "chunked")
				h.teOther = !h.chunked
			})
		}
	}
	return true
}

// contentLength takes a Content-Length value: digits, or a list of equal
// values (RFC 9110 8.6); differing values are malformed.
func (h *head) contentLength(v []byte) bool {
	if v = trimOWS(v); len(v) > 0 && len(v) <= 18 {
		// One value of digits, as senders write it: no list to split.
		var n int64
		i := 0
		for ; i < len(v) && '0' <= v[i] && v[i] <= '9'; i++ {
			n = n*10 + int64(v[i]-'0')
		}
		if i == len(v) {
			if h.cl >= 0 && h.cl != n {
				return false
			}
			h.cl = n
			return true
		}
	}
	ok := true
	forTokens(v, func(t []byte) {
		if len(t) == 0 || len(t) > 18 {
			ok = false
			return
		}
		var n int64
		for _, c := range t {
			if c < '0' || c > '9' {
				ok = false
				return
			}
			n = n*10 + int64(c-'0')
		}
		if h.cl >= 0 && h.cl != n {
			ok = false
		}
		h.cl = n
	})
	return ok && h.cl >= 0
}

// forTokens calls f with each comma-separated element of v, trimmed;
// empty elements are skipped.
func forTokens(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var t []byte
		if i < 0 {
			t, v = v, nil
		} else {
			t, v = v[:i], v[i+1:]
		}
		if t = trimOWS(t); len(t) > 0 {
			f(t)
		}
	}
}

// eqFold reports whether b equals the lower-case ASCII string s, ignoring
// ASCII case.
func eqFold[T string | []byte](b T, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
