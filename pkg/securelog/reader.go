package securelog

import (
	"sync"
	"sync/atomic"

	"github.com/securelog/securelog/pkg/store"
)

// Reader is the read side of the log: reading entries and segments,
// verifying the chain and the checkpoints, building inclusion proofs,
// recomputing checkpoints and witness submissions, opening sealed
// payloads. It needs only a store.ReadStore and starts nothing: a
// producer awaiting a proof, a query API or a witness cross-check use a
// Reader without the writer's machinery. A Log embeds one, so every Log
// is a Reader of its own store.
//
// A Reader is safe for concurrent use. Its one cache, the recomputed
// checkpoint hashes, is bounded (ReaderOptions.CacheCheckpoints).
type Reader struct {
	st    store.ReadStore
	trust Verifier // nil: checkpoint signatures cannot be verified
	kek   []byte

	// writeMu, when set (a Log's reader), is the writer's lock: taken to
	// compute the segment id that sealed entries of an open segment use,
	// so the computation does not interleave with appends and closes.
	writeMu sync.Locker

	ckMu sync.Mutex
	ck   *lru[uint64, ckEntry] // segment id → recomputed checkpoint hash
	// ckByHash indexes ck by hash (the link check of cachedPrev); entries
	// leave it when ck evicts them.
	ckByHash map[string]uint64

	maxSeg atomic.Uint64 // highest segment id known to exist (reserve.go)
}

// ckEntry is one cached checkpoint hash and the stream of its segment.
type ckEntry struct {
	stream string
	hash   []byte
}

// ReaderOptions configures a Reader. The zero value is usable: no trust
// (signature checks fail with "no trust file configured"), no KEK (sealed
// payloads cannot be opened), default cache bound.
type ReaderOptions struct {
	// Trust verifies checkpoint signatures with public keys only.
	Trust Verifier
	// KEK is the 32-byte master key for opening sealed payloads (SPEC §12).
	KEK []byte
	// CacheCheckpoints bounds the recomputed checkpoint hashes kept
	// (≤ 0: DefaultCacheCheckpoints).
	CacheCheckpoints int
}

// NewReader returns a Reader over st.
func NewReader(st store.ReadStore, opts ReaderOptions) *Reader {
	r := &Reader{st: st, trust: opts.Trust, kek: opts.KEK, ckByHash: map[string]uint64{}}
	r.ck = newLRU(opts.CacheCheckpoints, DefaultCacheCheckpoints, func(_ uint64, e ckEntry) {
		delete(r.ckByHash, string(e.hash))
	})
	return r
}
