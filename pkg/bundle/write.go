// Package bundle reads and writes securelog export bundles: one JSON
// document with everything an auditor needs to verify a stream offline.
//
//	{"format":"securelog-bundle/v1","stream":S,
//	 "entries":[<entry rows, SPEC §16.3 shape>],
//	 "segments":[<segment rows, SPEC §16.3 shape, each plus "entries":[[seqno,leaf_index],...]>],
//	 "trust":[{"identity","algorithm","public_key"}...],
//	 "witness_receipts":[...],
//	 "tlog":{"checkpoint":"<C2SP note>","proofs":[...]}}   (optional, tlog.go)
//
// Byte fields are JSON integer arrays exactly as in the wire contract.
// Writing and reading are streamed: memory does not grow with the number of
// entries.
package bundle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// Format is the bundle format tag.
const Format = "securelog-bundle/v1"

// Counts reports what a bundle holds.
type Counts struct {
	Entries  int
	Segments int
}

// Write streams the stream's rows from src to w as a bundle. Only trust
// entries of identities that signed a segment are included. receipts are
// witness receipts (cosignatures) to carry along (may be nil).
func Write(ctx context.Context, w io.Writer, src audit.Source, stream string, trust []checkpoint.TrustEntry, receipts []witness.Receipt) (Counts, error) {
	return WriteWith(ctx, w, src, stream, trust, receipts, WriteOptions{})
}

// WriteWith is Write with the optional parts of opts (the "tlog" member).
func WriteWith(ctx context.Context, w io.Writer, src audit.Source, stream string, trust []checkpoint.TrustEntry, receipts []witness.Receipt, opts WriteOptions) (Counts, error) {
	var n Counts
	bw := bufio.NewWriterSize(w, 1<<20)
	head, _ := json.Marshal(stream)
	fmt.Fprintf(bw, `{"format":%q,"stream":%s,"entries":[`, Format, head)
	first := true
	err := src.Entries(ctx, stream, func(r wire.EntryRow) error {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		bw.WriteString("\n")
		bw.Write(b)
		n.Entries++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("entries: %w", err)
	}
	bw.WriteString("\n],\"segments\":[")
	segs, err := src.Segments(ctx, stream)
	if err != nil {
		return n, fmt.Errorf("segments: %w", err)
	}
	signers := map[string]bool{}
	for i, s := range segs {
		members, err := src.SegmentSeqnos(ctx, s.SegmentID)
		if err != nil {
			return n, fmt.Errorf("membership of segment %d: %w", s.SegmentID, err)
		}
		if s.SignerIdentity != nil {
			signers[*s.SignerIdentity] = true
		}
		b, err := json.Marshal(s)
		if err != nil {
			return n, err
		}
		ents := make([]wire.SegmentEntry, len(members))
		for j, m := range members {
			ents[j] = wire.SegmentEntry{Seqno: m, LeafIndex: uint64(j)}
		}
		eb, err := json.Marshal(ents)
		if err != nil {
			return n, err
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n")
		bw.Write(bytes.TrimSuffix(b, []byte("}")))
		bw.WriteString(`,"entries":`)
		bw.Write(eb)
		bw.WriteByte('}')
		n.Segments++
	}
	var used []checkpoint.TrustEntry
	for _, t := range trust {
		if signers[t.Identity] {
			used = append(used, t)
		}
	}
	sort.Slice(used, func(i, j int) bool { return used[i].Identity < used[j].Identity })
	if used == nil {
		used = []checkpoint.TrustEntry{}
	}
	tb, err := json.Marshal(used)
	if err != nil {
		return n, err
	}
	if receipts == nil {
		receipts = []witness.Receipt{}
	}
	rb, err := json.Marshal(receipts)
	if err != nil {
		return n, err
	}
	fmt.Fprintf(bw, "\n],\"trust\":%s,\"witness_receipts\":%s", tb, rb)
	if opts.Tlog != nil {
		if err := writeTlog(ctx, bw, src, stream, opts.Tlog); err != nil {
			return n, err
		}
	}
	bw.WriteString("}\n")
	return n, bw.Flush()
}
