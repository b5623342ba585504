package chain

import (
	"context"
	"crypto/sha256"
	"runtime"

	"github.com/securelog/securelog/pkg/batch"
	"github.com/securelog/securelog/pkg/wire"
)

// Sum is an entry hash recomputed from a row's content.
type Sum = [sha256.Size]byte

// sumOf recomputes r's entry hash (SPEC §5.1), ignoring r.EntryHash.
func sumOf(r *wire.EntryRow) Sum { return sum(r.Fields()) }

// Batch is a run of consecutive rows with their recomputed entry hashes:
// the unit that VerifyParallel hashes on one core. Sums[i] belongs to
// Rows[i] once Hash ran.
type Batch struct {
	Rows []wire.EntryRow
	Sums []Sum
	// Encodings, if as long as Rows, holds each row's canonical encoding
	// (wire.AppendEntry of Rows[i].Fields(), as a store made it from the
	// stored content, store.RowBuffer): Hash hashes these bytes instead
	// of encoding the rows again.
	Encodings [][]byte
	// Fill, if set, runs on a worker before hashing to produce Rows (for
	// example by decoding a chunk of a file). When it fails, the rows it
	// produced before the failure are still handed on in order and then
	// its error is returned, so an earlier row's failure comes first.
	Fill func(*Batch) error
	err  error
}

// Hash fills b.Sums with the recomputed entry hash of every row, reusing
// its storage.
func (b *Batch) Hash() {
	if cap(b.Sums) < len(b.Rows) {
		b.Sums = make([]Sum, len(b.Rows))
	}
	b.Sums = b.Sums[:len(b.Rows)]
	if len(b.Encodings) == len(b.Rows) {
		for i, enc := range b.Encodings {
			b.Sums[i] = sha256.Sum256(enc)
		}
		return
	}
	for i := range b.Rows {
		b.Sums[i] = sumOf(&b.Rows[i])
	}
}

// Workers is the default parallelism of HashParallel: one hashing
// goroutine per usable core.
func Workers() int { return runtime.GOMAXPROCS(0) }

// HashParallel recomputes the entry hashes of rows that produce sends in
// batches, on workers goroutines (≤ 0: Workers()), and calls each for
// every row in the order sent, on the calling goroutine, with its
// recomputed hash: a chain is checked in order with Verifier.NextSum while
// later batches are hashed. Batches whose Sums are already filled
// (len(Sums) == len(Rows)) are not hashed again. each's first error stops
// the pipeline and is returned (see batch.Ordered). each must not retain
// the pointers it is given.
func HashParallel(ctx context.Context, workers int, produce func(send func(*Batch) bool) error, each func(r *wire.EntryRow, sum *Sum) error) error {
	if workers <= 0 {
		workers = Workers()
	}
	return batch.Ordered(ctx, workers, produce, func(b *Batch) {
		if b.Fill != nil {
			b.err = b.Fill(b)
		}
		if len(b.Sums) != len(b.Rows) {
			b.Hash()
		}
	}, func(b *Batch) error {
		for i := range b.Rows {
			if err := each(&b.Rows[i], &b.Sums[i]); err != nil {
				return err
			}
		}
		return b.err
	})
}
