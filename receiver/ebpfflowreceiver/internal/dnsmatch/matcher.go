// Package dnsmatch turns the DNS packets the dns probe captures at the asking
// socket into lookups: it parses each message (golang.org/x/net/dns/dnsmessage),
// reassembles DNS over TCP, matches answers to queries and reports every
// query exactly once — answered, or TIMEOUT when no answer came in time.
//
// State is bounded: pending queries and TCP streams are capped, and what is
// forgotten at a cap is counted, never silent. Pure Go, no collector imports.
package dnsmatch

import (
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
)

// DefaultMaxStreams bounds DNS-over-TCP reassembly when Config.MaxStreams
// is 0 (not a setting: a node has far fewer streams in flight).
const DefaultMaxStreams = 4096

// Config bounds the matcher. Timeout and MaxPending are the receiver's
// dns.timeout and dns.max_pending, defaulted and validated by its config.
type Config struct {
	Timeout    time.Duration // a query unanswered this long is reported as TIMEOUT
	MaxPending int           // queries awaiting an answer; the oldest is forgotten beyond
	MaxStreams int           // DNS-over-TCP streams being reassembled; the least recent is forgotten beyond
}

// Stats are cumulative counters.
type Stats struct {
	Queries          uint64 // distinct queries seen
	Answers          uint64 // answers matched to a query
	Timeouts         uint64 // queries reported as TIMEOUT
	Retransmits      uint64 // a pending query sent again by the same socket
	UnmatchedAnswers uint64 // answers to no pending query (late, or asked before start)
	Malformed        uint64 // messages, records or TCP stream bytes that could not be parsed
	Evicted          uint64 // pending queries forgotten at MaxPending
	StreamsEvicted   uint64 // TCP streams forgotten at MaxStreams
	WrongDirection   uint64 // queries received or answers sent: a server's side, not reported
}

// key identifies a query: the asking socket, the message id and the
// question. The name is hashed case-insensitively (answers may change its
// case, RFC 4343) so that matching allocates nothing.
type key struct {
	cookie       uint64
	id           uint16
	qtype        uint16
	qclass       uint16
	nameHash     uint64
	transportTCP bool
}

// pending is a query awaiting its answer, on a list oldest first.
type pending struct {
	key        key
	lookup     observed.DNSLookup
	prev, next *pending
}

// Matcher matches queries and answers. Not safe for concurrent use.
type Matcher struct {
	cfg        Config
	seed       maphash.Seed
	pending    map[key]*pending
	head, tail *pending // oldest, newest
	done       []observed.DNSLookup
	streams    streams
	stats      Stats
	parser     dnsmessage.Parser
}

// New returns a matcher; a bad value names its field.
func New(cfg Config) (*Matcher, error) {
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	var errs []error
	if cfg.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("Timeout: must be positive, got %v", cfg.Timeout))
	}
	if cfg.MaxPending <= 0 {
		errs = append(errs, fmt.Errorf("MaxPending: must be positive, got %d", cfg.MaxPending))
	}
	if cfg.MaxStreams < 0 {
		errs = append(errs, fmt.Errorf("MaxStreams: must be positive, got %d", cfg.MaxStreams))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m := &Matcher{cfg: cfg, seed: maphash.MakeSeed(), pending: make(map[key]*pending)}
	m.streams.init(cfg.MaxStreams)
	return m, nil
}

// maxLen is beyond any L4 payload (64 KiB datagrams, 512 KiB BIG TCP
// segments) and keeps TCP sequence arithmetic unambiguous.
const maxLen = 1 << 24

// Add takes one captured packet. Its payload is not kept.
func (m *Matcher) Add(p *observed.DNSPacket) {
	if p.Len > maxLen {
		m.stats.Malformed++
		return
	}
	if uint32(len(p.Payload)) > p.Len {
		c := *p
		c.Payload = c.Payload[:c.Len]
		p = &c
	}
	if p.Transport == observed.TransportTCP {
		m.addTCP(p)
		return
	}
	m.message(p, p.Payload, p.Len > uint32(len(p.Payload)))
}

// gapWait is how long a TCP stream waits for bytes missing before held
// segments: a retransmission fills a network loss within an RTO; a capture
// loss is never filled.
func (m *Matcher) gapWait() time.Duration { return min(m.cfg.Timeout/2, time.Second) }

// Flush returns the lookups answered since the last Flush and those whose
// query has waited Timeout by now (as TIMEOUT, Duration = Timeout).
func (m *Matcher) Flush(now time.Time) []observed.DNSLookup {
	m.expireStreams(now, m.gapWait()) // first: a held answer beats its timeout
	for q := m.head; q != nil && !now.Before(q.lookup.Start.Add(m.cfg.Timeout)); q = m.head {
		m.unlink(q)
		q.lookup.RCode = rcodeTimeout
		q.lookup.Duration = m.cfg.Timeout
		m.stats.Timeouts++
		m.done = append(m.done, q.lookup)
	}
	out := m.done
	m.done = nil
	return out
}

// Pending returns the number of queries awaiting an answer.
func (m *Matcher) Pending() int { return len(m.pending) }

// Stats returns the cumulative counters.
func (m *Matcher) Stats() Stats { return m.stats }

const rcodeTimeout = "TIMEOUT"

// message handles one DNS message of p. truncated: the capture holds only a
// prefix of it, so records past the prefix are missing, not malformed.
func (m *Matcher) message(p *observed.DNSPacket, msg []byte, truncated bool) {
	h, err := m.parser.Start(msg)
	if err != nil {
		m.stats.Malformed++
		return
	}
	q, err := m.parser.Question()
	if err != nil {
		m.stats.Malformed++
		return
	}
	switch {
	case !h.Response && p.Egress:
		m.query(p, &h, &q)
	case h.Response && !p.Egress:
		m.answer(p, &h, &q, truncated)
	default:
		// A query received or an answer sent is a server's side (a local
		// server whose clients use port 53): not a lookup of this node's.
		m.stats.WrongDirection++
	}
}

func (m *Matcher) keyOf(p *observed.DNSPacket, h *dnsmessage.Header, q *dnsmessage.Question) key {
	var mh maphash.Hash
	mh.SetSeed(m.seed)
	for _, c := range q.Name.Data[:q.Name.Length] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		mh.WriteByte(c)
	}
	return key{
		cookie: p.Cookie, id: h.ID, qtype: uint16(q.Type), qclass: uint16(q.Class),
		nameHash: mh.Sum64(), transportTCP: p.Transport == observed.TransportTCP,
	}
}

func (m *Matcher) query(p *observed.DNSPacket, h *dnsmessage.Header, q *dnsmessage.Question) {
	k := m.keyOf(p, h, q)
	if old, ok := m.pending[k]; ok {
		old.lookup.Retransmits++
		m.stats.Retransmits++
		return
	}
	if len(m.pending) >= m.cfg.MaxPending {
		m.unlink(m.head)
		m.stats.Evicted++
	}
	m.stats.Queries++
	e := &pending{key: k, lookup: observed.DNSLookup{
		Cookie:    p.Cookie,
		CgroupID:  p.CgroupID,
		Transport: p.Transport,
		Client:    p.Local,
		Server:    p.Remote,
		ID:        h.ID,
		Name:      nameString(q.Name),
		Type:      typeString(q.Type),
		Start:     p.Time,
	}}
	m.pending[k] = e
	e.prev = m.tail
	if m.tail != nil {
		m.tail.next = e
	} else {
		m.head = e
	}
	m.tail = e
}

func (m *Matcher) answer(p *observed.DNSPacket, h *dnsmessage.Header, q *dnsmessage.Question, truncated bool) {
	e, ok := m.pending[m.keyOf(p, h, q)]
	if !ok {
		m.stats.UnmatchedAnswers++
		return
	}
	m.unlink(e)
	m.stats.Answers++
	l := &e.lookup
	rcode := h.RCode
	l.Answers, l.Records, rcode = m.records(rcode, truncated)
	l.RCode = rcodeString(rcode)
	l.Truncated = h.Truncated
	if p.Remote != l.Server {
		l.Responder = p.Remote
	}
	l.Duration = p.Time.Sub(l.Start)
	if l.Duration < 0 {
		l.Duration = 0 // packets of two CPUs can arrive out of order by a hair
	}
	m.done = append(m.done, *l)
}

// records returns the answer section in presentation form, and the response
// code extended by an OPT record's upper bits (RFC 6891) when one is there.
// A record that does not parse ends the list: with a truncated capture that
// is where the prefix ends; in a whole message it is counted Malformed, and
// the lookup is still reported with what parsed (the answer did come).
func (m *Matcher) records(rcode dnsmessage.RCode, truncated bool) (addrs, other []string, _ dnsmessage.RCode) {
	addrs, other, err := m.answers()
	if err == nil && !truncated {
		rcode, err = m.extendedRCode(rcode)
	}
	if err != nil && !truncated {
		m.stats.Malformed++
	}
	return addrs, other, rcode
}

// answers splits the answer section: A and AAAA addresses (semconv's
// dns.answers) and every other record's RDATA.
func (m *Matcher) answers() (addrs, other []string, _ error) {
	if err := m.parser.SkipAllQuestions(); err != nil {
		return nil, nil, err
	}
	for {
		rh, err := m.parser.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return addrs, other, nil
		}
		if err != nil {
			return addrs, other, err
		}
		s, err := m.rdata(&rh)
		if err != nil {
			return addrs, other, err
		}
		if rh.Type == dnsmessage.TypeA || rh.Type == dnsmessage.TypeAAAA {
			addrs = append(addrs, s)
		} else {
			other = append(other, s)
		}
	}
}

func (m *Matcher) extendedRCode(rcode dnsmessage.RCode) (dnsmessage.RCode, error) {
	if err := m.parser.SkipAllAuthorities(); err != nil {
		return rcode, err
	}
	for {
		rh, err := m.parser.AdditionalHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return rcode, nil
		}
		if err != nil {
			return rcode, err
		}
		if rh.Type == dnsmessage.TypeOPT {
			return rh.ExtendedRCode(rcode), nil
		}
		if err := m.parser.SkipAdditional(); err != nil {
			return rcode, err
		}
	}
}

// unlink removes e from the list and the map.
func (m *Matcher) unlink(e *pending) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		m.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		m.tail = e.prev
	}
	e.prev, e.next = nil, nil
	delete(m.pending, e.key)
}
