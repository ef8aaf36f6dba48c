package dnsmatch

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// rdata formats the current answer's RDATA as `dig +short` prints it, so
// users (and the end-to-end test) can compare the two directly.
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
		return r.CNAME.String(), err
	case dnsmessage.TypePTR:
		r, err := p.PTRResource()
		return r.PTR.String(), err
	case dnsmessage.TypeNS:
		r, err := p.NSResource()
		return r.NS.String(), err
	case dnsmessage.TypeMX:
		r, err := p.MXResource()
		return strconv.Itoa(int(r.Pref)) + " " + r.MX.String(), err
	case dnsmessage.TypeSRV:
		r, err := p.SRVResource()
		return strconv.Itoa(int(r.Priority)) + " " + strconv.Itoa(int(r.Weight)) + " " +
			strconv.Itoa(int(r.Port)) + " " + r.Target.String(), err
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
			quoteTXT(&b, t)
		}
		return b.String(), nil
	case dnsmessage.TypeSOA:
		r, err := p.SOAResource()
		return r.NS.String() + " " + r.MBox.String() + " " + strconv.FormatUint(uint64(r.Serial), 10) + " " +
			strconv.FormatUint(uint64(r.Refresh), 10) + " " + strconv.FormatUint(uint64(r.Retry), 10) + " " +
			strconv.FormatUint(uint64(r.Expire), 10) + " " + strconv.FormatUint(uint64(r.MinTTL), 10), err
	}
	// Any other type in the generic form of RFC 3597.
	r, err := p.UnknownResource()
	if err != nil {
		return "", err
	}
	return `\# ` + strconv.Itoa(len(r.Data)) + " " + strings.ToUpper(hex.EncodeToString(r.Data)), nil
}

// quoteTXT writes one character-string as a quoted presentation string:
// `"` and `\` escaped, bytes outside printable ASCII as \DDD.
func quoteTXT(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('\\')
			d := strconv.Itoa(int(c))
			b.WriteString(strings.Repeat("0", 3-len(d)))
			b.WriteString(d)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

var typeNames = map[dnsmessage.Type]string{
	dnsmessage.TypeA: "A", dnsmessage.TypeNS: "NS", dnsmessage.TypeCNAME: "CNAME", dnsmessage.TypeSOA: "SOA",
	dnsmessage.TypePTR: "PTR", dnsmessage.TypeMX: "MX", dnsmessage.TypeTXT: "TXT", dnsmessage.TypeAAAA: "AAAA",
	dnsmessage.TypeSRV: "SRV", dnsmessage.TypeOPT: "OPT", dnsmessage.TypeWKS: "WKS", dnsmessage.TypeHINFO: "HINFO",
	dnsmessage.TypeMINFO: "MINFO", dnsmessage.TypeAXFR: "AXFR", dnsmessage.TypeALL: "ANY",
	dnsmessage.TypeSVCB: "SVCB", dnsmessage.TypeHTTPS: "HTTPS",
	29: "LOC", 35: "NAPTR", 39: "DNAME", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
	50: "NSEC3", 52: "TLSA", 99: "SPF", 251: "IXFR", 256: "URI", 257: "CAA",
}

// typeString is the type's mnemonic, or TYPE<n> (RFC 3597) when it has none here.
func typeString(t dnsmessage.Type) string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

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
