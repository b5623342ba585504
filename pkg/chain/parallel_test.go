package chain_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/wire"
)

// genChain returns n linked rows of one stream.
func genChain(n int) []wire.EntryRow {
	rows := make([]wire.EntryRow, n)
	prev := wire.ZeroHash
	for i := range rows {
		r := wire.EntryRow{Seqno: uint64(i + 1), StreamID: "s", SessionID: "sess", BootID: "boot",
			Timestamp: "2026-04-10T00:00:00.000000Z", EventType: "ev", Severity: wire.Info, Producer: "p",
			PayloadEncoding: wire.EncoderName, Payload: []byte(fmt.Sprint(i)), PrevEntryHash: prev}
		r.EntryHash = chain.RowHash(r)
		rows[i], prev = r, r.EntryHash
	}
	return rows
}

// verifyParallel checks rows with HashParallel in batches of size.
func verifyParallel(rows []wire.EntryRow, workers, size int) error {
	v := chain.NewVerifier(wire.ZeroHash)
	return chain.HashParallel(context.Background(), workers, func(send func(*chain.Batch) bool) error {
		for i := 0; i < len(rows); i += size {
			if !send(&chain.Batch{Rows: rows[i:min(i+size, len(rows))]}) {
				return nil
			}
		}
		return nil
	}, v.NextSum)
}

// TestHashParallelSameErrors: every tampering is reported exactly as the
// sequential Verifier reports it, whatever the workers and batch size.
func TestHashParallelSameErrors(t *testing.T) {
	tamper := map[string]func(rows []wire.EntryRow, i int){
		"payload":     func(rows []wire.EntryRow, i int) { rows[i].Payload = []byte("x") },
		"entry hash":  func(rows []wire.EntryRow, i int) { rows[i].EntryHash = rows[i-1].EntryHash },
		"prev link":   func(rows []wire.EntryRow, i int) { rows[i].PrevEntryHash = wire.ZeroHash },
		"seqno order": func(rows []wire.EntryRow, i int) { rows[i].Seqno = rows[i-1].Seqno },
		"stream":      func(rows []wire.EntryRow, i int) { rows[i].StreamID = "other" },
		"short hash":  func(rows []wire.EntryRow, i int) { rows[i].EntryHash = rows[i].EntryHash[:31] },
		"two tamperings": func(rows []wire.EntryRow, i int) {
			rows[i].Payload = []byte("x")
			rows[len(rows)-1].PrevEntryHash = wire.ZeroHash
		},
	}
	for name, f := range tamper {
		for _, at := range []int{1, 500, 1023, 1024, 2999} {
			rows := genChain(3000)
			f(rows, at)
			want := chain.VerifyRows(rows, wire.ZeroHash)
			if want == nil {
				t.Fatalf("%s at %d: the sequential verifier accepted the tampering", name, at)
			}
			for _, w := range []int{1, 2, 4} {
				for _, size := range []int{1, 7, 1024} {
					got := verifyParallel(rows, w, size)
					if got == nil || got.Error() != want.Error() {
						t.Errorf("%s at %d, %d workers, batches of %d: got %v, want %v", name, at, w, size, got, want)
					}
				}
			}
		}
	}
	if err := verifyParallel(genChain(3000), 4, 100); err != nil {
		t.Fatalf("untampered chain: %v", err)
	}
}

// TestHashParallelFill: a Fill error comes after the rows it produced and
// after an earlier row's failure.
func TestHashParallelFill(t *testing.T) {
	rows := genChain(100)
	fillErr := fmt.Errorf("decode failed at row 50")
	run := func(rows []wire.EntryRow) error {
		v := chain.NewVerifier(wire.ZeroHash)
		return chain.HashParallel(context.Background(), 2, func(send func(*chain.Batch) bool) error {
			send(&chain.Batch{Fill: func(b *chain.Batch) error { b.Rows = rows[:50]; return fillErr }})
			return nil
		}, v.NextSum)
	}
	if err := run(rows); err != fillErr {
		t.Fatalf("got %v, want the fill error", err)
	}
	rows[10].Payload = []byte("x")
	if err := run(rows); err == nil || err == fillErr {
		t.Fatalf("got %v, want the chain error of row 11 first", err)
	}
}

// TestBatchHashEncodings: a batch with its rows' encodings hashes those
// bytes (the same sums as encoding the rows, for true encodings), and
// without them encodes the rows; a batch whose Encodings is not as long as
// its rows ignores it.
func TestBatchHashEncodings(t *testing.T) {
	rows := genChain(50)
	encs := make([][]byte, len(rows))
	for i := range rows {
		encs[i] = wire.EncodeEntry(rows[i].Fields())
	}
	plain := &chain.Batch{Rows: rows}
	plain.Hash()
	with := &chain.Batch{Rows: rows, Encodings: encs}
	with.Hash()
	for i := range rows {
		if plain.Sums[i] != with.Sums[i] || string(plain.Sums[i][:]) != string(rows[i].EntryHash) {
			t.Fatalf("row %d: sums differ", i)
		}
	}
	encs[7] = append([]byte(nil), encs[7]...)
	encs[7][len(encs[7])-1] ^= 1 // the encoding is what is hashed
	with.Hash()
	if with.Sums[7] == plain.Sums[7] {
		t.Fatal("the encoding was not hashed")
	}
	short := &chain.Batch{Rows: rows, Encodings: encs[:10]}
	short.Hash()
	if short.Sums[7] != plain.Sums[7] {
		t.Fatal("a short Encodings was used")
	}
}
