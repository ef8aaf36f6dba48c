package probe

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// snapshotBatch is the number of entries read per BPF_MAP_LOOKUP_BATCH call.
const snapshotBatch = 1024

// Snapshot reads every entry of an aggregation map in batches and decodes
// each. An entry that fails to decode is counted in decodeErrors and skipped:
// one bad entry never hides the others.
func Snapshot[K, V, S any](m *ebpf.Map, decode func(*K, *V) (S, error), decodeErrors *atomic.Uint64) ([]S, error) {
	return SnapshotAppend(nil, m, decode, decodeErrors)
}

// SnapshotAppend is Snapshot appending to out: a caller that sizes out
// from the previous snapshot saves growing the slice entry by entry.
func SnapshotAppend[K, V, S any](out []S, m *ebpf.Map, decode func(*K, *V) (S, error), decodeErrors *atomic.Uint64) ([]S, error) {
	err := SnapshotBatches(m, decode, decodeErrors, func(batch []S) { out = append(out, batch...) })
	return out, err
}

// SnapshotBatches is Snapshot handing the decoded entries to each, one
// batch of at most snapshotBatch at a time, so that the reader never holds
// the whole map. The batch is reused: it is valid only during the call.
func SnapshotBatches[K, V, S any](m *ebpf.Map, decode func(*K, *V) (S, error), decodeErrors *atomic.Uint64, each func([]S)) error {
	var (
		cursor ebpf.MapBatchCursor
		keys   = make([]K, snapshotBatch)
		vals   = make([]V, snapshotBatch)
		batch  = make([]S, 0, snapshotBatch)
	)
	for {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		batch = batch[:0]
		for i := range n {
			s, derr := decode(&keys[i], &vals[i])
			if derr != nil {
				decodeErrors.Add(1)
				continue
			}
			batch = append(batch, s)
		}
		if len(batch) > 0 {
			each(batch)
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", m, err)
		}
	}
}

// Delete removes these keys from m. Keys already gone (reported, or evicted
// by an LRU) are not an error.
func Delete[K any](m *ebpf.Map, keys []K) error {
	var errs []error
	for i := range keys {
		if err := m.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete from %s: %w", m, errors.Join(errs...))
	}
	return nil
}

// Links holds a probe's attachments so they detach in reverse order.
type Links []link.Link

// Close detaches every link, last attached first.
func (ls *Links) Close() {
	for i := len(*ls) - 1; i >= 0; i-- {
		(*ls)[i].Close()
	}
	*ls = nil
}
