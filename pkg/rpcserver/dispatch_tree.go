package rpcserver

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// DefaultMaxReply bounds one page of the paged reads (secure-log-range-page,
// secure-log-segment-entry-seqnos-page) when neither the caller nor the
// transport names a smaller limit.
const DefaultMaxReply = 4 << 20

// replyHeadroom is what a NATS reply carries besides its payload (the
// status header), kept free under the server's max_payload.
const replyHeadroom = 1 << 10

type replyLimitKey struct{}

// withReplyLimit returns ctx carrying the most bytes one reply may hold on
// the transport that serves it (0: no limit).
func withReplyLimit(ctx context.Context, n int64) context.Context {
	if n <= 0 {
		return ctx
	}
	return context.WithValue(ctx, replyLimitKey{}, uint64(n))
}

// pageLimit is the byte budget of one page: the smallest of the caller's
// max_bytes, the transport's limit and DefaultMaxReply, ignoring zeros.
func pageLimit(ctx context.Context, asked uint64) uint64 {
	limit := uint64(DefaultMaxReply)
	if t, ok := ctx.Value(replyLimitKey{}).(uint64); ok && t < limit {
		limit = t
	}
	if asked > 0 && asked < limit {
		limit = asked
	}
	return limit
}

// dispatchExt runs this module's paged-read and segment-tree methods
// (wire/rpc_tree.go); ok is false for any other params.
func dispatchExt(ctx context.Context, st store.Store, p wire.Params) (json.RawMessage, bool, error) {
	switch p := p.(type) {
	case *wire.RangePageParams:
		res, err := rangePage(ctx, st, p)
		return res, true, err
	case *wire.SegmentEntrySeqnosPageParams:
		res, err := seqnosPage(ctx, st, p)
		return res, true, err
	case *wire.SegmentInsertTreeParams:
		ts, ok := st.(store.SegmentTreeStore)
		if !ok { // the store keeps no trees: the segment alone
			res, err := value(st.SegmentInsert(ctx, p.Row, p.Entries))
			return res, true, err
		}
		chunks := make([]store.TreeChunk, len(p.Chunks))
		for i, c := range p.Chunks {
			chunks[i] = store.TreeChunk(c)
		}
		res, err := value(ts.SegmentInsertTree(ctx, p.Row, p.Entries, chunks))
		return res, true, err
	case *wire.SegmentLeafParams:
		ts, ok := st.(store.SegmentTreeStore)
		if !ok {
			return wire.NullJSON, true, nil
		}
		loc, found, err := ts.SegmentLeaf(ctx, p.Seqno)
		res, err := option(wire.SegmentLeafResult(loc), found, err)
		return res, true, err
	case *wire.SegmentTreeChunkParams:
		ts, ok := st.(store.SegmentTreeStore)
		if !ok {
			return wire.NullJSON, true, nil
		}
		b, found, err := ts.SegmentTreeChunk(ctx, p.ID, p.Level, p.Chunk)
		res, err := option(wire.Bytes(b), found, err)
		return res, true, err
	case *wire.SegmentTreeNodesParams:
		out := make([]wire.OptBytes, len(p.Nodes))
		if ts, ok := st.(store.SegmentTreeStore); ok {
			nodes := make([]store.TreeNode, len(p.Nodes))
			for i, n := range p.Nodes {
				nodes[i] = store.TreeNode(n)
			}
			got, err := ts.SegmentTreeNodes(ctx, p.ID, nodes)
			if err != nil {
				return nil, true, err
			}
			for i := range out {
				if i < len(got) {
					out[i] = got[i]
				}
			}
		}
		res, err := wire.EncodeResult(out)
		return res, true, err
	}
	return nil, false, nil
}

// rangePage answers secure-log-range-page: the range's first rows, read
// from the store in growing windows of seqnos and encoded as v1 rows until
// the next one would not fit the page.
func rangePage(ctx context.Context, st store.Store, p *wire.RangePageParams) (json.RawMessage, error) {
	limit := pageLimit(ctx, p.MaxBytes)
	out := make([]byte, 1, min(limit, 256<<10))
	out[0] = '['
	n := 0
	// The stream's head bounds the windows (a range may end at 2^64-1).
	to := p.To
	if head, ok, err := st.Head(ctx, p.Stream); err != nil {
		return nil, err
	} else if !ok {
		return json.RawMessage("[]"), nil
	} else if head < to {
		to = head
	}
	window := uint64(256)
	for lo := p.From; lo <= to; {
		hi := to
		if hi-lo >= window {
			hi = lo + window - 1
		}
		rows, err := st.Range(ctx, p.Stream, lo, hi)
		if err != nil {
			return nil, err
		}
		if n == 0 && len(rows) > 0 {
			// Room for the whole page at once, from the first rows' sizes
			// (growing by doubling copied every page about twice).
			est := uint64(0)
			for i := range rows {
				est += uint64(wire.EntryRowJSONBound(&rows[i]))
			}
			est = est / uint64(len(rows)) * (to - lo + 1)
			out = slices.Grow(out, int(min(est, limit+64<<10)))
		}
		for i := range rows {
			mark := len(out)
			if n > 0 {
				out = append(out, ',')
			}
			if out, err = wire.AppendEntryRowJSON(out, &rows[i]); err != nil {
				return nil, err
			}
			if n > 0 && uint64(len(out))+1 > limit {
				return append(out[:mark], ']'), nil
			}
			n++
		}
		if hi == to {
			break
		}
		lo = hi + 1
		// The next window: about what still fits the page (rows read
		// beyond it would be read again for the next page).
		window = 256
		if n > 0 {
			if avg := uint64(len(out)) / uint64(n); avg > 0 && limit > uint64(len(out)) {
				window = min(max((limit-uint64(len(out)))/avg+1, 16), 1<<16)
			}
		}
	}
	return append(out, ']'), nil
}

// seqnosPage answers secure-log-segment-entry-seqnos-page.
func seqnosPage(ctx context.Context, st store.Store, p *wire.SegmentEntrySeqnosPageParams) (json.RawMessage, error) {
	seqnos, err := st.SegmentEntrySeqnos(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	count := max(pageLimit(ctx, 0)/21, 1) // a seqno is at most 20 digits and a comma
	if p.MaxCount > 0 && p.MaxCount < count {
		count = p.MaxCount
	}
	page := wire.SeqnosPage{Seqnos: []uint64{}}
	if p.FromLeaf < uint64(len(seqnos)) {
		page.Seqnos = seqnos[p.FromLeaf:]
		if uint64(len(page.Seqnos)) > count {
			page.Seqnos = page.Seqnos[:count]
			next := p.FromLeaf + count
			page.Next = &next
		}
	}
	return wire.EncodeResult(page)
}
