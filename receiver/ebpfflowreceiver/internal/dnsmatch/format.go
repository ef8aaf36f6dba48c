package dnsmatch

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// Presentation formats follow what `dig +short` (BIND 9.18) prints, so users
// and the end-to-end test can compare the two directly; golden_test.go checks
// them against a real dig.

const typeCAA dnsmessage.Type = 257

var errBadRData = errors.New("rdata does not fit its type")

// rdata formats the current answer's RDATA.
func (m *Matcher) rdata(rh *dnsmessage.ResourceHeader) (string, error) {
	p := &m.parser
	switch rh.Type {
	case dnsmessage.TypeA:
		r, err := p.AResource()
		return netip.AddrFrom4(r.A).String(), err
	case dnsmessage.TypeAAAA:
		r, err := p.AAAAResource()
		return netip.AddrFrom16(r.AAAA).String(), err
	case dnsmessage.TypeCNAME:
		r, err := p.CNAMEResource()
		return fqdn(r.CNAME), err
	case dnsmessage.TypePTR:
		r, err := p.PTRResource()
		return fqdn(r.PTR), err
	case dnsmessage.TypeNS:
		r, err := p.NSResource()
		return fqdn(r.NS), err
	case dnsmessage.TypeMX:
		r, err := p.MXResource()
		return strconv.Itoa(int(r.Pref)) + " " + fqdn(r.MX), err
	case dnsmessage.TypeSRV:
		r, err := p.SRVResource()
		return strconv.Itoa(int(r.Priority)) + " " + strconv.Itoa(int(r.Weight)) + " " +
			strconv.Itoa(int(r.Port)) + " " + fqdn(r.Target), err
	case dnsmessage.TypeTXT:
		r, err := p.TXTResource()
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for i, t := range r.TXT {
			if i > 0 {
				b.WriteByte(' ')
			}
			quote(&b, t)
		}
		return b.String(), nil
	case dnsmessage.TypeSOA:
		r, err := p.SOAResource()
		return fqdn(r.NS) + " " + fqdn(r.MBox) + " " + strconv.FormatUint(uint64(r.Serial), 10) + " " +
			strconv.FormatUint(uint64(r.Refresh), 10) + " " + strconv.FormatUint(uint64(r.Retry), 10) + " " +
			strconv.FormatUint(uint64(r.Expire), 10) + " " + strconv.FormatUint(uint64(r.MinTTL), 10), err
	case dnsmessage.TypeSVCB:
		r, err := p.SVCBResource()
		if err != nil {
			return "", err
		}
		return svcb(&r), nil
	case dnsmessage.TypeHTTPS:
		r, err := p.HTTPSResource()
		if err != nil {
			return "", err
		}
		return svcb(&r.SVCBResource), nil
	}
	r, err := p.UnknownResource()
	if err != nil {
		return "", err
	}
	if rh.Type == typeCAA {
		if s, ok := caa(r.Data); ok {
			return s, nil
		}
	}
	return generic(r.Data), nil
}

// generic is the RFC 3597 form, hex in the 28-byte words dig prints.
func generic(d []byte) string {
	var b strings.Builder
	b.WriteString(`\# `)
	b.WriteString(strconv.Itoa(len(d)))
	for len(d) > 0 {
		n := min(len(d), 28)
		b.WriteByte(' ')
		b.WriteString(strings.ToUpper(hex.EncodeToString(d[:n])))
		d = d[n:]
	}
	return b.String()
}

// caa is RFC 8659's "flags tag value"; ok false when the data is not a CAA
// record (then it is printed in the generic form).
func caa(d []byte) (string, bool) {
	if len(d) < 2 || int(d[1]) > len(d)-2 {
		return "", false
	}
	tag := d[2 : 2+d[1]]
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(d[0])))
	b.WriteByte(' ')
	b.Write(tag)
	b.WriteByte(' ')
	quote(&b, string(d[2+len(tag):]))
	return b.String(), true
}

var svcKeyNames = [...]string{"mandatory", "alpn", "no-default-alpn", "port", "ipv4hint", "ech", "ipv6hint", "dohpath"}

func svcKey(k dnsmessage.SVCParamKey) string {
	if int(k) < len(svcKeyNames) {
		return svcKeyNames[k]
	}
	return "key" + strconv.Itoa(int(k))
}

// svcb is RFC 9460's "priority target key=value…".
func svcb(r *dnsmessage.SVCBResource) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(r.Priority)))
	b.WriteByte(' ')
	b.WriteString(fqdn(r.Target))
	for _, p := range r.Params {
		b.WriteByte(' ')
		b.WriteString(svcKey(p.Key))
		v := p.Value
		switch p.Key {
		case dnsmessage.SVCParamMandatory:
			if len(v)%2 != 0 {
				break
			}
			b.WriteByte('=')
			for i := 0; i < len(v); i += 2 {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(svcKey(dnsmessage.SVCParamKey(binary.BigEndian.Uint16(v[i:]))))
			}
			continue
		case dnsmessage.SVCParamALPN:
			b.WriteString(`="`)
			for i := 0; len(v) > 0; i++ {
				n := int(v[0])
				if n >= len(v) {
					n = len(v) - 1
				}
				if i > 0 {
					b.WriteByte(',')
				}
				// A comma or backslash inside an id is escaped twice: once
				// for the value list, once for the presentation string.
				for _, c := range v[1 : 1+n] {
					switch c {
					case ',':
						b.WriteString(`\\,`)
					case '\\':
						b.WriteString(`\\\\`)
					case '"':
						b.WriteString(`\"`)
					default:
						escapeByte(&b, c)
					}
				}
				v = v[1+n:]
			}
			b.WriteByte('"')
			continue
		case dnsmessage.SVCParamNoDefaultALPN:
			if len(v) == 0 {
				continue
			}
		case dnsmessage.SVCParamPort:
			if len(v) == 2 {
				b.WriteString("=" + strconv.Itoa(int(binary.BigEndian.Uint16(v))))
				continue
			}
		case dnsmessage.SVCParamIPv4Hint, dnsmessage.SVCParamIPv6Hint:
			size := 4
			if p.Key == dnsmessage.SVCParamIPv6Hint {
				size = 16
			}
			if len(v) == 0 || len(v)%size != 0 {
				break
			}
			b.WriteByte('=')
			for i := 0; i < len(v); i += size {
				if i > 0 {
					b.WriteByte(',')
				}
				a, _ := netip.AddrFromSlice(v[i : i+size])
				b.WriteString(a.String())
			}
			continue
		case dnsmessage.SVCParamECH:
			b.WriteString("=" + base64.StdEncoding.EncodeToString(v))
			continue
		}
		if len(v) > 0 {
			b.WriteByte('=')
			quote(&b, string(v))
		}
	}
	return b.String()
}

// quote writes a character-string as a quoted presentation string.
func quote(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
			b.WriteByte(c)
			continue
		}
		escapeByte(b, c)
	}
	b.WriteByte('"')
}

// escapeByte writes c, or \DDD when it is not printable ASCII.
func escapeByte(b *strings.Builder, c byte) {
	if c < 0x20 || c > 0x7e {
		b.WriteByte('\\')
		b.WriteByte('0' + c/100)
		b.WriteByte('0' + c/10%10)
		b.WriteByte('0' + c%10)
		return
	}
	b.WriteByte(c)
}

// fqdn is a name in presentation form with its trailing dot.
func fqdn(n dnsmessage.Name) string {
	d := n.Data[:n.Length]
	if !needsEscape(d) {
		return string(d)
	}
	var b strings.Builder
	for _, c := range d {
		switch {
		case c == '.': // a separator: dnsmessage rejects dots inside labels
			b.WriteByte(c)
		case c == '"' || c == '(' || c == ')' || c == ';' || c == '\\' || c == '@' || c == '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c <= 0x20 || c > 0x7e:
			b.WriteByte('\\')
			b.WriteByte('0' + c/100)
			b.WriteByte('0' + c/10%10)
			b.WriteByte('0' + c%10)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func needsEscape(d []byte) bool {
	for _, c := range d {
		if c <= 0x20 || c > 0x7e || c == '"' || c == '(' || c == ')' || c == ';' || c == '\\' || c == '@' || c == '$' {
			return true
		}
	}
	return false
}

// nameString is the question name without its trailing dot ("." for the root).
func nameString(n dnsmessage.Name) string {
	s := fqdn(n)
	if len(s) > 1 {
		return s[:len(s)-1]
	}
	return s
}

var typeNames = map[dnsmessage.Type]string{
	dnsmessage.TypeA: "A", dnsmessage.TypeNS: "NS", dnsmessage.TypeCNAME: "CNAME", dnsmessage.TypeSOA: "SOA",
	dnsmessage.TypePTR: "PTR", dnsmessage.TypeMX: "MX", dnsmessage.TypeTXT: "TXT", dnsmessage.TypeAAAA: "AAAA",
	dnsmessage.TypeSRV: "SRV", dnsmessage.TypeOPT: "OPT", dnsmessage.TypeWKS: "WKS", dnsmessage.TypeHINFO: "HINFO",
	dnsmessage.TypeMINFO: "MINFO", dnsmessage.TypeAXFR: "AXFR", dnsmessage.TypeALL: "ANY",
	dnsmessage.TypeSVCB: "SVCB", dnsmessage.TypeHTTPS: "HTTPS", typeCAA: "CAA",
	29: "LOC", 35: "NAPTR", 39: "DNAME", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
	50: "NSEC3", 52: "TLSA", 99: "SPF", 251: "IXFR", 256: "URI",
}

// typeString is the type's mnemonic, or TYPE<n> (RFC 3597) when it has none here.
func typeString(t dnsmessage.Type) string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// BADVERS (16) can only arise with EDNS, where 16 means BADVERS, not BADSIG.
var rcodeNames = [...]string{
	0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
	6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 16: "BADVERS",
}

// rcodeString is the response code's mnemonic, or RCODE<n>.
func rcodeString(c dnsmessage.RCode) string {
	if int(c) < len(rcodeNames) && rcodeNames[c] != "" {
		return rcodeNames[c]
	}
	return "RCODE" + strconv.Itoa(int(c))
}
