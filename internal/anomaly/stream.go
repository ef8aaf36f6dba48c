package anomaly

// A stream is one cumulative metric stream as it arrives (its full
// identity, volatile attributes included). The engine keeps its previous
// value to turn it into increments; several streams may then feed one
// series (pods of one workload once pod identities are excluded). The
// stream table has the same bound and TTL as the series table.
type stream struct {
	id       uint64
	t, start int64
	v        float64
	counts   []float64
	layout   uint64 // bucket layout of a histogram stream: a change rebases
	lastSeen int64
	idx      int
}

func (e *Engine) stream(id uint64) *stream {
	if st, ok := e.streams[id]; ok {
		return st
	}
	if len(e.slist) >= e.cfg.MaxSeries {
		e.stats.DroppedStreamLimit.Add(1)
		return nil
	}
	st := &stream{id: id, idx: len(e.slist)}
	e.streams[id] = st
	e.slist = append(e.slist, st)
	return st
}

// CumulativeDelta turns a cumulative point (t, start, v) of stream id into
// the increase since the stream's previous point and the time it covers.
// The first point of a stream only sets the base. A counter reset (a value
// below the previous one, or a new start time) counts the new value as the
// increase since the reset when the start time says when it happened.
func (e *Engine) CumulativeDelta(id uint64, t, start int64, v float64) (d float64, from int64, ok bool) {
	st := e.stream(id)
	if st == nil {
		return 0, 0, false
	}
	st.lastSeen = e.clamp(t)
	if st.t == 0 {
		st.t, st.start, st.v = t, start, v
		return 0, 0, false
	}
	if t <= st.t {
		return 0, 0, false // duplicate or out of order
	}
	prevT, prevV, prevStart := st.t, st.v, st.start
	st.t, st.start, st.v = t, start, v
	if v < prevV || (start != 0 && prevStart != 0 && start != prevStart) {
		// Reset: the counter restarted from zero.
		if start > prevT && start < t {
			return v, start, true
		}
		return v, prevT, true
	}
	return v - prevV, prevT, true
}

// CumulativeCounts is CumulativeDelta for histogram bucket counts: it
// returns the per-bucket increases (valid until the next call) over
// (from, t]. layout identifies the bucket boundaries; a change of layout
// or of length starts over.
func (e *Engine) CumulativeCounts(id uint64, t, start int64, layout uint64, counts []float64) (deltas []float64, from int64, ok bool) {
	st := e.stream(id)
	if st == nil {
		return nil, 0, false
	}
	st.lastSeen = e.clamp(t)
	rebase := st.t == 0 || st.layout != layout || len(st.counts) != len(counts)
	if !rebase && t <= st.t {
		return nil, 0, false
	}
	prevT, prevStart := st.t, st.start
	reset := false
	if !rebase {
		if start != 0 && prevStart != 0 && start != prevStart {
			reset = true
		}
		for i, c := range counts {
			if c < st.counts[i] {
				reset = true
				break
			}
		}
	}
	e.scratch = e.scratch[:0]
	switch {
	case rebase:
	case reset:
		e.scratch = append(e.scratch, counts...)
	default:
		for i, c := range counts {
			e.scratch = append(e.scratch, c-st.counts[i])
		}
	}
	st.counts = append(st.counts[:0], counts...)
	st.t, st.start, st.layout = t, start, layout
	if rebase {
		return nil, 0, false
	}
	from = prevT
	if reset && start > prevT && start < t {
		from = start
	}
	return e.scratch, from, true
}

func (e *Engine) evictStream(st *stream) {
	last := e.slist[len(e.slist)-1]
	e.slist[st.idx] = last
	last.idx = st.idx
	e.slist = e.slist[:len(e.slist)-1]
	delete(e.streams, st.id)
}
