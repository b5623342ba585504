package wire

import (
	"encoding/json"
	"fmt"
)

// This file holds this module's additive extensions of the JSON-RPC
// contract (SPEC §16) for large segments: paged reads, so that no reply
// needs to exceed a transport's size limit (NATS max_payload), and the
// segment tree of store.SegmentTreeStore, so that a client of a remote
// store proves an entry with O(log n) reads. The v1 methods are unchanged;
// byte strings are integer arrays as everywhere in the contract.

// Extension method names (see the Params types for params and results).
const (
	MethodRangePage              = "secure-log-range-page"
	MethodSegmentEntrySeqnosPage = "secure-log-segment-entry-seqnos-page"
	MethodSegmentInsertTree      = "secure-log-segment-insert-tree"
	MethodSegmentLeaf            = "secure-log-segment-leaf"
	MethodSegmentTreeChunk       = "secure-log-segment-tree-chunk"
	MethodSegmentTreeNodes       = "secure-log-segment-tree-nodes"
)

// RangePageParams is [stream_id, from, to, max_bytes]. The result is
// [row, …]: the stream's first rows with from ≤ seqno ≤ to, ascending, as
// many as fit in max_bytes of result JSON (at least one when the range
// holds any; 0 = the server's own limit). The server may send fewer (its
// transport's limit); a caller continues after the last row returned and
// stops at an empty page.
type RangePageParams struct {
	Stream   string
	From, To uint64
	MaxBytes uint64
}

// SegmentEntrySeqnosPageParams is [segment_id, from_leaf, max_count]. The
// result is a SeqnosPage: the members of leaf index from_leaf onwards, in
// leaf order, at most max_count of them (0 = the server's own limit).
type SegmentEntrySeqnosPageParams struct {
	ID       uint64
	FromLeaf uint64
	MaxCount uint64
}

// SeqnosPage is the result of secure-log-segment-entry-seqnos-page:
// {"seqnos": [seqno, …], "next": leaf index or null}; next is where the
// following page starts, null after the last member.
type SeqnosPage struct {
	Seqnos []uint64 `json:"seqnos"`
	Next   *uint64  `json:"next"`
}

// TreeChunk is one stored piece of a segment's Merkle tree on the wire:
// [level, chunk, [bytes…]] (store.TreeChunk).
type TreeChunk struct {
	Level int
	Chunk uint64
	Nodes []byte
}

// MarshalJSON writes [level, chunk, [bytes…]].
func (c TreeChunk) MarshalJSON() ([]byte, error) {
	b := fmt.Appendf(nil, "[%d,%d,", c.Level, c.Chunk)
	b = appendIntArray(b, c.Nodes)
	return append(b, ']'), nil
}

// UnmarshalJSON reads [level, chunk, [bytes…]].
func (c *TreeChunk) UnmarshalJSON(b []byte) error {
	var a []json.RawMessage
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("tree chunk: %w", err)
	}
	if len(a) != 3 {
		return fmt.Errorf("tree chunk: want [level, chunk, [bytes…]], got %d elements", len(a))
	}
	var level uint8
	if err := json.Unmarshal(a[0], &level); err != nil {
		return fmt.Errorf("tree chunk: level: %w", err)
	}
	if err := json.Unmarshal(a[1], &c.Chunk); err != nil {
		return fmt.Errorf("tree chunk: chunk: %w", err)
	}
	nodes, err := parseIntArray(a[2])
	if err != nil {
		return fmt.Errorf("tree chunk: nodes: %w", err)
	}
	c.Level, c.Nodes = int(level), nodes
	return nil
}

// TreeNodeRef names one node of a stored tree on the wire: [level, index].
type TreeNodeRef struct {
	Level int
	Index uint64
}

// MarshalJSON writes [level, index].
func (n TreeNodeRef) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "[%d,%d]", n.Level, n.Index), nil
}

// UnmarshalJSON reads [level, index].
func (n *TreeNodeRef) UnmarshalJSON(b []byte) error {
	var a []uint64
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("tree node: %w", err)
	}
	if len(a) != 2 || a[0] > 64 {
		return fmt.Errorf("tree node: want [level ≤ 64, index], got %s", abbrev(b))
	}
	n.Level, n.Index = int(a[0]), a[1]
	return nil
}

// SegmentLeafResult is the result of secure-log-segment-leaf:
// {"segment_id", "index", "size"} (store.SegmentLeaf).
type SegmentLeafResult struct {
	SegmentID uint64 `json:"segment_id"`
	Index     uint64 `json:"index"`
	Size      uint64 `json:"size"`
}

// SegmentInsertTreeParams is [segment, [[seqno, leaf_index], …],
// [[level, chunk, [bytes…]], …]]: secure-log-segment-insert with the
// segment's tree, stored in the same atomic write. The result is the
// segment id. A server whose store keeps no trees stores the segment
// alone (as secure-log-segment-insert).
type SegmentInsertTreeParams struct {
	Row     SegmentRow
	Entries []SegmentEntry
	Chunks  []TreeChunk
}

// SegmentLeafParams is [seqno]; the result is a SegmentLeafResult or null
// (no segment holds seqno, or its segment was stored without a tree).
type SegmentLeafParams struct{ Seqno uint64 }

// SegmentTreeChunkParams is [segment_id, level, chunk]; the result is the
// chunk's bytes or null.
type SegmentTreeChunkParams struct {
	ID    uint64
	Level int
	Chunk uint64
}

// SegmentTreeNodesParams is [segment_id, [[level, index], …]]; the result
// is [[bytes…] or null, …], one per node asked, in order.
type SegmentTreeNodesParams struct {
	ID    uint64
	Nodes []TreeNodeRef
}

// Method returns "secure-log-range-page".
func (RangePageParams) Method() string { return MethodRangePage }

// Method returns "secure-log-segment-entry-seqnos-page".
func (SegmentEntrySeqnosPageParams) Method() string { return MethodSegmentEntrySeqnosPage }

// Method returns "secure-log-segment-insert-tree".
func (SegmentInsertTreeParams) Method() string { return MethodSegmentInsertTree }

// Method returns "secure-log-segment-leaf".
func (SegmentLeafParams) Method() string { return MethodSegmentLeaf }

// Method returns "secure-log-segment-tree-chunk".
func (SegmentTreeChunkParams) Method() string { return MethodSegmentTreeChunk }

// Method returns "secure-log-segment-tree-nodes".
func (SegmentTreeNodesParams) Method() string { return MethodSegmentTreeNodes }

func (p RangePageParams) args() []any { return []any{p.Stream, p.From, p.To, p.MaxBytes} }
func (p SegmentEntrySeqnosPageParams) args() []any {
	return []any{p.ID, p.FromLeaf, p.MaxCount}
}
func (p SegmentInsertTreeParams) args() []any {
	entries, chunks := p.Entries, p.Chunks
	if entries == nil {
		entries = []SegmentEntry{}
	}
	if chunks == nil {
		chunks = []TreeChunk{}
	}
	return []any{p.Row, entries, chunks}
}
func (p SegmentLeafParams) args() []any      { return []any{p.Seqno} }
func (p SegmentTreeChunkParams) args() []any { return []any{p.ID, p.Level, p.Chunk} }
func (p SegmentTreeNodesParams) args() []any {
	nodes := p.Nodes
	if nodes == nil {
		nodes = []TreeNodeRef{}
	}
	return []any{p.ID, nodes}
}

func (p *RangePageParams) targets() []any { return []any{&p.Stream, &p.From, &p.To, &p.MaxBytes} }
func (p *SegmentEntrySeqnosPageParams) targets() []any {
	return []any{&p.ID, &p.FromLeaf, &p.MaxCount}
}
func (p *SegmentInsertTreeParams) targets() []any {
	return []any{&p.Row, &p.Entries, &p.Chunks}
}
func (p *SegmentLeafParams) targets() []any      { return []any{&p.Seqno} }
func (p *SegmentTreeChunkParams) targets() []any { return []any{&p.ID, &p.Level, &p.Chunk} }
func (p *SegmentTreeNodesParams) targets() []any { return []any{&p.ID, &p.Nodes} }

func init() {
	for m, mk := range map[string]func() argTargets{
		MethodRangePage:              func() argTargets { return &RangePageParams{} },
		MethodSegmentEntrySeqnosPage: func() argTargets { return &SegmentEntrySeqnosPageParams{} },
		MethodSegmentInsertTree:      func() argTargets { return &SegmentInsertTreeParams{} },
		MethodSegmentLeaf:            func() argTargets { return &SegmentLeafParams{} },
		MethodSegmentTreeChunk:       func() argTargets { return &SegmentTreeChunkParams{} },
		MethodSegmentTreeNodes:       func() argTargets { return &SegmentTreeNodesParams{} },
	} {
		newParams[m] = mk
	}
}

// EntryRowJSONBound is an upper bound of the length of r's JSON (for
// sizing buffers; AppendEntryRowJSON writes at most this for rows whose
// text needs no escaping).
func EntryRowJSONBound(r *EntryRow) int {
	return 400 + len(r.StreamID) + len(r.SessionID) + len(r.BootID) + len(r.Timestamp) + len(r.EventType) + len(r.Producer) +
		len(r.PayloadEncoding) + 4*(len(r.Payload)+len(r.PrevEntryHash)+len(r.EntryHash))
}

// AppendEntryRowJSON appends r's JSON exactly as the v1 contract writes a
// row (byte-identical to its MarshalJSON).
func AppendEntryRowJSON(dst []byte, r *EntryRow) ([]byte, error) {
	if out, ok := appendEntryRowFast(dst, r); ok {
		return out, nil
	}
	b, err := marshalNoEscape(*r)
	if err != nil {
		return dst, fmt.Errorf("encode row %d: %w", r.Seqno, err)
	}
	return append(dst, b...), nil
}
