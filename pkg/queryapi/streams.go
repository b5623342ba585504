package queryapi

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// streams serves GET /v1/streams.
func (h *Handler) streams(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		h.badRequest(w, r, fmt.Errorf("GET /v1/streams takes no parameters"))
		return
	}
	ctx := r.Context()
	rows, err := h.cfg.Store.StreamList(ctx)
	if err != nil {
		h.internal(w, r, fmt.Errorf("list streams: %w", err))
		return
	}
	out := Streams{Streams: make([]Stream, 0, len(rows))}
	for _, row := range rows {
		s, err := h.streamInfo(ctx, row)
		if err != nil {
			h.internal(w, r, err)
			return
		}
		out.Streams = append(out.Streams, s)
	}
	h.writeJSON(w, out)
}

// streamInfo gathers one stream's counters, segments and witness state.
func (h *Handler) streamInfo(ctx context.Context, row wire.StreamRow) (Stream, error) {
	st := h.cfg.Store
	s := Stream{Name: row.Name, Tier: row.Tier, Description: row.Description, CreatedAt: row.CreatedAt,
		DeprecatedAt: row.DeprecatedAt, WitnessStatus: "none"}
	n, err := store.CountEntries(ctx, st, row.Name)
	if err != nil {
		return Stream{}, err
	}
	s.Entries = n
	head, ok, err := st.Head(ctx, row.Name)
	if err != nil {
		return Stream{}, fmt.Errorf("head of %q: %w", row.Name, err)
	}
	if ok {
		s.HeadSeqno = &head
	}
	segs, err := st.SegmentsList(ctx, row.Name)
	if err != nil {
		return Stream{}, fmt.Errorf("segments of %q: %w", row.Name, err)
	}
	if len(segs) > 0 {
		last := SegmentOf(segs[len(segs)-1])
		s.LastSegment = &last
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].Signed() {
			signed := SegmentOf(segs[i])
			s.LastSigned = &signed
			if _, _, ck, err := h.log.Checkpoint(ctx, segs[i].SegmentID); err != nil {
				h.logger.Warn("query api: checkpoint of the last signed segment", "stream", row.Name, "segment", segs[i].SegmentID, "error", err)
			} else {
				x := hex.EncodeToString(ck)
				s.LastCheckpointHash = &x
			}
			break
		}
	}
	wr, ok, err := st.WitnessLatest(ctx, row.Name)
	if err != nil {
		return Stream{}, fmt.Errorf("latest witness of %q: %w", row.Name, err)
	}
	if ok {
		s.Witness = &Witness{SegmentID: wr.SegmentID, SeqEnd: wr.SeqEnd, CheckpointHash: wr.CheckpointHashHex,
			SignerIdentity: wr.SignerIdentity, ReceivedAt: wr.ReceivedAt}
		s.WitnessStatus = "behind"
		if s.LastSigned == nil || wr.SegmentID >= s.LastSigned.SegmentID {
			s.WitnessStatus = "current"
		}
	}
	return s, nil
}
