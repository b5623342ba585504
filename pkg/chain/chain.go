// Package chain computes entry hashes and verifies per-stream hash chains
// (SPEC §5, §14.6). It is pure: rows come in as values, nothing is read or
// written.
package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/securelog/securelog/pkg/wire"
)

// bufPool holds encoding buffers so hashing an entry does not allocate one
// per call. Buffers that grew beyond maxPooled are dropped.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooled = 64 << 10

// sum returns SHA-256 of the canonical encoding of f.
func sum(f wire.EntryFields) [sha256.Size]byte {
	bp := bufPool.Get().(*[]byte)
	buf := wire.AppendEntry((*bp)[:0], f)
	h := sha256.Sum256(buf)
	if cap(buf) <= maxPooled {
		*bp = buf
		bufPool.Put(bp)
	}
	return h
}

// EntryHash returns the entry hash of SPEC §5.1: SHA-256 of the canonical
// CBOR encoding of f (wire.EncodeEntry). The result is 32 bytes.
func EntryHash(f wire.EntryFields) []byte {
	h := sum(f)
	return h[:]
}

// RowHash returns the entry hash recomputed from a stored row's content
// (version 1, SPEC §3.3), ignoring the row's stored EntryHash.
func RowHash(r wire.EntryRow) []byte { return EntryHash(r.Fields()) }

// Verifier checks a stream's rows one at a time, in ascending seqno order,
// against the chain rules of SPEC §14.6 step 4. It keeps O(1) state, so it
// suits arbitrarily long streams. The zero value is not usable; call
// NewVerifier. After the first error every further Next returns that error.
type Verifier struct {
	expected  [wire.HashLen]byte
	validExp  bool // expected holds a 32-byte hash
	started   bool
	lastSeqno uint64
	stream    string
	err       error
}

// NewVerifier returns a Verifier whose first row must link to expectedPrev:
// the entry hash of the stream's entry just below the range, or
// wire.ZeroHash at the stream's genesis. A value that is not 32 bytes can
// never match, so the first row then fails as chain-broken.
func NewVerifier(expectedPrev []byte) *Verifier {
	v := &Verifier{}
	if len(expectedPrev) == wire.HashLen {
		copy(v.expected[:], expectedPrev)
		v.validExp = true
	}
	return v
}

// Next checks one row and advances the expected link to its entry hash.
// Errors, in the order checked:
//   - the seqno does not exceed the previous row's, or the stream differs
//     from the first row's: *wire.ChainBrokenError naming the seqno;
//   - prev_entry_hash not 32 bytes: *wire.InvalidError;
//   - prev_entry_hash differs from the expected link: *wire.ChainBrokenError
//     "prev_entry_hash mismatch: stored=<hex> expected=<hex>";
//   - entry_hash not 32 bytes: *wire.InvalidError;
//   - recomputed hash differs from the stored one: *wire.ChainBrokenError
//     "entry content does not match stored hash: recomputed=<hex> stored=<hex>".
func (v *Verifier) Next(r wire.EntryRow) error {
	if v.err != nil {
		return v.err
	}
	v.err = v.check(&r, nil)
	return v.err
}

// NextSum is Next for a row whose entry hash was already recomputed from
// its content (Batch.Hash, on another goroutine): the same checks in the
// same order, comparing sum instead of hashing again.
func (v *Verifier) NextSum(r *wire.EntryRow, sum *Sum) error {
	if v.err != nil {
		return v.err
	}
	v.err = v.check(r, sum)
	return v.err
}

// check verifies r; sum, if not nil, is r's recomputed entry hash.
func (v *Verifier) check(r *wire.EntryRow, sum *Sum) error {
	if v.started {
		if r.Seqno <= v.lastSeqno {
			return &wire.ChainBrokenError{Seqno: r.Seqno,
				Reason: fmt.Sprintf("seqno %d does not follow seqno %d (rows must be strictly ascending)", r.Seqno, v.lastSeqno)}
		}
		if r.StreamID != v.stream {
			return &wire.ChainBrokenError{Seqno: r.Seqno,
				Reason: fmt.Sprintf("row belongs to stream %q, not %q", r.StreamID, v.stream)}
		}
	}
	if len(r.PrevEntryHash) != wire.HashLen {
		return wire.Invalidf("seqno %d: prev_entry_hash is %d bytes, want %d", r.Seqno, len(r.PrevEntryHash), wire.HashLen)
	}
	if !v.validExp || !bytes.Equal(r.PrevEntryHash, v.expected[:]) {
		exp := ""
		if v.validExp {
			exp = hex.EncodeToString(v.expected[:])
		}
		return &wire.ChainBrokenError{Seqno: r.Seqno, Reason: fmt.Sprintf(
			"prev_entry_hash mismatch: stored=%s expected=%s", hex.EncodeToString(r.PrevEntryHash), exp)}
	}
	if len(r.EntryHash) != wire.HashLen {
		return wire.Invalidf("seqno %d: entry_hash is %d bytes, want %d", r.Seqno, len(r.EntryHash), wire.HashLen)
	}
	var h Sum
	if sum != nil {
		h = *sum
	} else {
		h = sumOf(r)
	}
	if !bytes.Equal(h[:], r.EntryHash) {
		return &wire.ChainBrokenError{Seqno: r.Seqno, Reason: fmt.Sprintf(
			"entry content does not match stored hash: recomputed=%s stored=%s",
			hex.EncodeToString(h[:]), hex.EncodeToString(r.EntryHash))}
	}
	copy(v.expected[:], r.EntryHash)
	v.validExp = true
	if !v.started {
		v.started, v.stream = true, strings.Clone(r.StreamID)
	}
	v.lastSeqno = r.Seqno
	return nil
}

// Last returns a copy of the current expected link: the entry hash of the
// last row accepted, or the initial expectedPrev if none was (nil if that
// was not 32 bytes).
func (v *Verifier) Last() []byte {
	if !v.validExp {
		return nil
	}
	return append([]byte(nil), v.expected[:]...)
}

// VerifyRows checks rows (one stream, ascending seqno) as a chain whose first
// row links to expectedPrev; see Verifier.Next for the errors. An empty
// slice verifies trivially.
func VerifyRows(rows []wire.EntryRow, expectedPrev []byte) error {
	v := NewVerifier(expectedPrev)
	for i := range rows {
		if err := v.Next(rows[i]); err != nil {
			return err
		}
	}
	return nil
}
