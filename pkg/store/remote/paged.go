package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// This file holds the client side of this module's RPC extensions
// (wire/rpc_tree.go): paged reads and the segment tree
// (store.SegmentTreeStore). A server that answers them with
// `unknown method` (the reference, an older securelog) is asked with v1
// methods from then on: reads page by v1 windows, a segment is inserted
// without its tree, and proofs read the segment's entries.

// unknownMethod reports whether err is a server's answer that it does not
// know the method (400 here, 500 from the reference).
func unknownMethod(err error) bool {
	var se *transport.StatusError
	return errors.As(err, &se) && strings.HasPrefix(se.Body, "unknown method")
}

// messageLimit is the transport's message size limit in bytes, 0 if it
// has none.
func (s *Store) messageLimit() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l, ok := s.t.(transport.Limiter); ok && l.MessageLimit() > 0 {
		return uint64(l.MessageLimit())
	}
	return 0
}

// rangePaged reads from..to in pages that fit the transport's limit: each
// page is the range's next rows, the last page is the one that reaches to
// or the first empty one.
func (s *Store) rangePaged(ctx context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	limit := s.messageLimit()
	var out []wire.EntryRow
	for lo := from; lo <= to; {
		rows, err := value[[]wire.EntryRow](s, ctx, wire.RangePageParams{Stream: stream, From: lo, To: to, MaxBytes: limit})
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			break
		}
		last := rows[len(rows)-1].Seqno
		if rows[0].Seqno < lo || last > to {
			return nil, fmt.Errorf("decode result of %s: page of %d..%d holds seqnos %d..%d", wire.MethodRangePage, lo, to, rows[0].Seqno, last)
		}
		if out == nil {
			out = rows
		} else {
			out = append(out, rows...)
		}
		if last == to {
			break
		}
		lo = last + 1
	}
	if out == nil {
		out = []wire.EntryRow{}
	}
	return out, nil
}

// seqnosPaged reads a segment's members in pages.
func (s *Store) seqnosPaged(ctx context.Context, id uint64) ([]uint64, error) {
	var maxCount uint64
	if limit := s.messageLimit(); limit > 0 {
		maxCount = max(limit/21, 1) // a seqno is at most 20 digits and a comma
	}
	var out []uint64
	for from := uint64(0); ; {
		page, err := value[wire.SeqnosPage](s, ctx, wire.SegmentEntrySeqnosPageParams{ID: id, FromLeaf: from, MaxCount: maxCount})
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = page.Seqnos
		} else {
			out = append(out, page.Seqnos...)
		}
		if page.Next == nil {
			break
		}
		if *page.Next <= from {
			return nil, fmt.Errorf("decode result of %s: page from leaf %d names next leaf %d", wire.MethodSegmentEntrySeqnosPage, from, *page.Next)
		}
		from = *page.Next
	}
	if out == nil {
		out = []uint64{}
	}
	return out, nil
}

// SegmentInsertTree implements store.SegmentTreeStore
// (secure-log-segment-insert-tree). When the request would exceed the
// transport's message limit, or the server does not know the method, the
// segment is inserted alone (secure-log-segment-insert): its proofs then
// read its entries.
func (s *Store) SegmentInsertTree(ctx context.Context, row wire.SegmentRow, entries []wire.SegmentEntry, chunks []store.TreeChunk) (uint64, error) {
	if !s.noExt.Load() {
		p := wire.SegmentInsertTreeParams{Row: row, Entries: entries, Chunks: make([]wire.TreeChunk, len(chunks))}
		for i, c := range chunks {
			p.Chunks[i] = wire.TreeChunk(c)
		}
		params, err := wire.EncodeParams(p)
		if err != nil {
			return 0, err
		}
		if limit := s.messageLimit(); limit == 0 || uint64(len(params))+256 <= limit {
			id, err := s.insertTree(ctx, params)
			if !unknownMethod(err) {
				return id, err
			}
			s.noExt.Store(true)
		}
	}
	return s.SegmentInsert(ctx, row, entries)
}

func (s *Store) insertTree(ctx context.Context, params []byte) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case s.closed:
		return 0, errClosed
	case !s.inited:
		return 0, store.ErrNotInitialized
	}
	res, err := s.t.Call(ctx, wire.MethodSegmentInsertTree, params)
	if err != nil {
		return 0, typed(err)
	}
	return wire.DecodeResult[uint64](wire.MethodSegmentInsertTree, res)
}

// SegmentLeaf implements store.SegmentTreeStore (secure-log-segment-leaf);
// false when the server keeps no tree for seqno's segment.
func (s *Store) SegmentLeaf(ctx context.Context, seqno uint64) (store.SegmentLeaf, bool, error) {
	if s.noExt.Load() {
		return store.SegmentLeaf{}, false, nil
	}
	loc, ok, err := option[wire.SegmentLeafResult](s, ctx, wire.SegmentLeafParams{Seqno: seqno})
	if unknownMethod(err) {
		s.noExt.Store(true)
		return store.SegmentLeaf{}, false, nil
	}
	return store.SegmentLeaf(loc), ok, err
}

// SegmentTreeChunk implements store.SegmentTreeStore
// (secure-log-segment-tree-chunk).
func (s *Store) SegmentTreeChunk(ctx context.Context, segmentID uint64, level int, chunk uint64) ([]byte, bool, error) {
	if s.noExt.Load() {
		return nil, false, nil
	}
	b, ok, err := option[wire.Bytes](s, ctx, wire.SegmentTreeChunkParams{ID: segmentID, Level: level, Chunk: chunk})
	if unknownMethod(err) {
		s.noExt.Store(true)
		return nil, false, nil
	}
	return b, ok, err
}

// SegmentTreeNodes implements store.SegmentTreeStore
// (secure-log-segment-tree-nodes).
func (s *Store) SegmentTreeNodes(ctx context.Context, segmentID uint64, nodes []store.TreeNode) ([][]byte, error) {
	out := make([][]byte, len(nodes))
	if s.noExt.Load() || len(nodes) == 0 {
		return out, nil
	}
	p := wire.SegmentTreeNodesParams{ID: segmentID, Nodes: make([]wire.TreeNodeRef, len(nodes))}
	for i, n := range nodes {
		p.Nodes[i] = wire.TreeNodeRef(n)
	}
	got, err := value[[]wire.OptBytes](s, ctx, p)
	if unknownMethod(err) {
		s.noExt.Store(true)
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if len(got) != len(nodes) {
		return nil, fmt.Errorf("decode result of %s: %d nodes for %d asked", wire.MethodSegmentTreeNodes, len(got), len(nodes))
	}
	for i, b := range got {
		out[i] = b
	}
	return out, nil
}
