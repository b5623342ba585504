package pipeline

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
)

// The commit index maps JetStream stream sequences of SECURELOG_IN to log
// seqnos. It is written in the same atomic, synced store batch as the
// entries it describes, so it is exactly as durable as they are, and it is
// what the commit-lookup handler answers from.
//
// Layout (store meta, store.Batcher): stream sequences are grouped in
// buckets of commitBucket; the value of key
// "ingester/<js stream>/commits/<bucket, 16 hex digits>" is a list of runs,
// 24 bytes each, big-endian: js_start u64, count u64, seqno_start u64 — the
// messages js_start .. js_start+count-1 became seqnos seqno_start … in
// order. A batch without rejections adds one run, so the index costs a few
// bytes per batch, not per event.
const commitBucket = 4096

type commitRun struct{ js, n, seqno uint64 }

type commitIndex struct {
	bt     store.Batcher
	prefix string

	mu      sync.Mutex
	buckets map[uint64][]commitRun // recently written buckets (authoritative for them)
	pending map[uint64][]commitRun // prepared for the batch being committed
}

func newCommitIndex(bt store.Batcher, jsStream string) *commitIndex {
	return &commitIndex{bt: bt, prefix: "ingester/" + jsStream + "/commits/", buckets: map[uint64][]commitRun{}}
}

func (ci *commitIndex) key(bucket uint64) string { return fmt.Sprintf("%s%016x", ci.prefix, bucket) }

// load returns a bucket's runs from the cache or the store.
func (ci *commitIndex) load(ctx context.Context, bucket uint64) ([]commitRun, error) {
	if r, ok := ci.buckets[bucket]; ok {
		return r, nil
	}
	v, ok, err := ci.bt.GetMeta(ctx, ci.key(bucket))
	if err != nil {
		return nil, err
	}
	var runs []commitRun
	if ok {
		if len(v)%24 != 0 {
			return nil, fmt.Errorf("commit index bucket %d: %d bytes, not a multiple of 24", bucket, len(v))
		}
		for i := 0; i < len(v); i += 24 {
			runs = append(runs, commitRun{binary.BigEndian.Uint64(v[i:]), binary.BigEndian.Uint64(v[i+8:]), binary.BigEndian.Uint64(v[i+16:])})
		}
	}
	return runs, nil
}

// preload reads the buckets a batch's items fall in, so prepare (which
// runs inside the commit) needs no I/O.
func (ci *commitIndex) preload(ctx context.Context, items []inItem) error {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	for _, it := range items {
		b := it.seq / commitBucket
		if _, ok := ci.buckets[b]; ok {
			continue
		}
		runs, err := ci.load(ctx, b)
		if err != nil {
			return fmt.Errorf("commit index: %w", err)
		}
		ci.buckets[b] = runs
	}
	return nil
}

// prepare computes the bucket values for a batch, items in stream order
// with their results, into meta (committed with the batch); install makes
// them visible once the commit succeeded. preload must have run.
func (ci *commitIndex) prepare(items []inItem, res []securelog.BatchResult, meta map[string][]byte) {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	ci.pending = map[uint64][]commitRun{}
	for _, it := range items {
		if it.ev < 0 || res[it.ev].Err != nil {
			continue
		}
		b := it.seq / commitBucket
		runs, ok := ci.pending[b]
		if !ok {
			runs = append([]commitRun(nil), ci.buckets[b]...)
		}
		seqno := res[it.ev].Seqno
		if n := len(runs); n > 0 && runs[n-1].js+runs[n-1].n == it.seq && runs[n-1].seqno+runs[n-1].n == seqno {
			runs[n-1].n++
		} else {
			runs = append(runs, commitRun{it.seq, 1, seqno})
		}
		ci.pending[b] = runs
	}
	for b, runs := range ci.pending {
		v := make([]byte, 0, 24*len(runs))
		for _, r := range runs {
			v = binary.BigEndian.AppendUint64(v, r.js)
			v = binary.BigEndian.AppendUint64(v, r.n)
			v = binary.BigEndian.AppendUint64(v, r.seqno)
		}
		meta[ci.key(b)] = v
	}
}

// install publishes the prepared buckets after a successful commit (and
// drops cached buckets far behind, keeping memory bounded).
func (ci *commitIndex) install() {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	var newest uint64
	for b, runs := range ci.pending {
		ci.buckets[b] = runs
		newest = max(newest, b)
	}
	for b := range ci.buckets {
		if b+2 < newest {
			delete(ci.buckets, b)
		}
	}
	ci.pending = nil
}

// discard forgets a prepared batch that did not commit.
func (ci *commitIndex) discard() {
	ci.mu.Lock()
	ci.pending = nil
	ci.mu.Unlock()
}

// lookup returns the seqno that stream sequence js became, if any.
func (ci *commitIndex) lookup(ctx context.Context, js uint64) (uint64, bool, error) {
	ci.mu.Lock()
	defer ci.mu.Unlock()
	runs, err := ci.load(ctx, js/commitBucket)
	if err != nil {
		return 0, false, err
	}
	for _, r := range runs {
		if js >= r.js && js < r.js+r.n {
			return r.seqno + (js - r.js), true, nil
		}
	}
	return 0, false, nil
}
