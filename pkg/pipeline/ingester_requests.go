package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/batch"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// appendReq is one request/reply append waiting for the group commit.
type appendReq struct {
	msg *nats.Msg
	ev  securelog.Event
}

// startHandlers subscribes the request/reply append and close handlers;
// appends are group-committed (batch.Group). The returned function drains
// the subscriptions and waits until every append taken is answered.
func (in *Ingester) startHandlers(ctx context.Context) (func(), error) {
	base := context.WithoutCancel(ctx)
	in.reqs = batch.NewGroup(func(reqs []appendReq) ([]securelog.BatchResult, error) {
		return in.commitAppends(base, reqs)
	}, in.cfg.MaxBatch, 4*in.cfg.MaxBatch)
	p := in.cfg.Partition
	queue := p.Durable(ingesterQueue)
	appSub, err := in.cfg.Conn.QueueSubscribe(p.Wildcard(wire.KindAppend), queue, func(m *nats.Msg) {
		in.onAppend(base, m)
	})
	if err != nil {
		return nil, fmt.Errorf("ingester: subscribe appends: %w", err)
	}
	closeSub, err := in.cfg.Conn.QueueSubscribe(p.Wildcard(wire.KindClose), queue, func(m *nats.Msg) {
		in.onClose(base, m)
	})
	if err != nil {
		_ = appSub.Unsubscribe()
		return nil, fmt.Errorf("ingester: subscribe closes: %w", err)
	}
	lookupSub, err := in.cfg.Conn.QueueSubscribe(p.CommitLookupSubject(), queue, func(m *nats.Msg) {
		in.onLookup(base, m)
	})
	if err != nil {
		_ = appSub.Unsubscribe()
		_ = closeSub.Unsubscribe()
		return nil, fmt.Errorf("ingester: subscribe commit lookups: %w", err)
	}
	return func() {
		dctx, cancel := context.WithTimeout(base, 10*time.Second)
		defer cancel()
		if err := transport.Drain(dctx, appSub, closeSub, lookupSub); err != nil {
			in.log.Warn("ingester: stop request handlers", "err", err)
		}
		in.reqs.Wait() // every queued append committed and answered
	}, nil
}

func respondJSON(m *nats.Msg, v any) {
	if m.Reply == "" {
		return
	}
	_ = m.Respond(mustJSON(v))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("marshal %T: %v", v, err)})
	}
	return b
}

func (in *Ingester) onAppend(ctx context.Context, m *nats.Msg) {
	stream, ok := in.cfg.Partition.StreamOf(wire.KindAppend, m.Subject)
	if !ok {
		respondJSON(m, wire.AppendReply{Error: fmt.Sprintf("subject %q is not %s<stream>", m.Subject, in.cfg.Partition.Kind(wire.KindAppend)), Code: "invalid"})
		return
	}
	if err := in.claim(ctx, stream); err != nil {
		respondJSON(m, wire.AppendReply{Error: err.Error(), Code: wire.ErrorCode(err)})
		return
	}
	ev, err := wire.ParseEventMsg(m.Data, in.cfg.MaxPayload)
	if err != nil {
		in.m.Rejected.WithLabelValues(wire.ErrorCode(err)).Inc()
		respondJSON(m, wire.AppendReply{Error: err.Error(), Code: wire.ErrorCode(err)})
		return
	}
	// Waits while 4×MaxBatch appends are queued: back-pressure on the
	// subscription. The reply goes out once the batch holding it commits.
	req := appendReq{msg: m, ev: securelog.Event{Stream: stream, EventType: ev.Type, Severity: ev.Severity,
		Producer: ev.Producer, Payload: ev.Payload, Encoding: ev.Encoding}}
	in.reqs.Go(req, func(r securelog.BatchResult, err error) {
		switch {
		case err != nil:
			respondJSON(m, wire.AppendReply{Error: err.Error(), Code: wire.ErrorCode(err)})
		case r.Err != nil:
			in.m.Rejected.WithLabelValues(wire.ErrorCode(r.Err)).Inc()
			respondJSON(m, wire.AppendReply{Error: r.Err.Error(), Code: wire.ErrorCode(r.Err)})
		default:
			in.m.Committed.Inc()
			respondJSON(m, wire.AppendReply{Seqno: r.Seqno, EntryHash: r.EntryHash})
		}
	})
}

// commitAppends commits one group of request/reply appends and announces
// what was appended; the replies go out from onAppend's callbacks.
func (in *Ingester) commitAppends(ctx context.Context, batch []appendReq) ([]securelog.BatchResult, error) {
	events := make([]securelog.Event, len(batch))
	for i, r := range batch {
		events[i] = r.ev
	}
	in.m.Received.Add(float64(len(batch)))
	start := time.Now()
	res, err := in.cfg.Log.AppendBatch(ctx, events, nil)
	if err != nil {
		in.log.Error("request/reply append batch failed", "events", len(batch), "err", err)
		return nil, err
	}
	in.noteCommitted(res)
	in.m.CommitTime.Observe(time.Since(start).Seconds())
	in.m.BatchSize.Observe(float64(len(batch)))
	appended := map[string]*wire.AppendedMsg{}
	var order []string
	for i, r := range batch {
		if res[i].Err != nil {
			continue
		}
		if appended[r.ev.Stream] == nil {
			order = append(order, r.ev.Stream)
		}
		noteAppended(appended, r.ev.Stream, res[i].AppendResult)
	}
	in.notes.add(appended, order)
	return res, nil
}

// onClose closes the stream's open segment in the ingester's Log and
// publishes securelog.sealed.<stream>.
func (in *Ingester) onClose(ctx context.Context, m *nats.Msg) {
	stream, ok := in.cfg.Partition.StreamOf(wire.KindClose, m.Subject)
	if !ok {
		respondJSON(m, wire.CloseReply{Error: fmt.Sprintf("subject %q is not %s<stream>", m.Subject, in.cfg.Partition.Kind(wire.KindClose)), Code: "invalid"})
		return
	}
	start := time.Now()
	seg, err := in.cfg.Log.CloseSegment(ctx, stream)
	if err != nil {
		if wire.ErrorCode(err) != "empty-segment" {
			in.log.Warn("segment close failed", "stream", stream, "err", err)
		}
		respondJSON(m, wire.CloseReply{Error: err.Error(), Code: wire.ErrorCode(err)})
		return
	}
	in.m.Sealed.Inc()
	in.m.CloseTime.Observe(time.Since(start).Seconds())
	info := wire.SegmentInfoOf(seg)
	respondJSON(m, wire.CloseReply{Segment: &info})
	// Durable (JetStream stream SECURELOG_SEALED): a signer that is down
	// now signs it when it resumes from its consumer's position.
	announce(in.js, in.log, in.cfg.Partition.Subject(wire.KindSealed, stream), fmt.Sprintf("sealed-%s-%d-%d", stream, seg.SegmentID, seg.SeqEnd), info)
	in.log.Debug("segment sealed", "stream", stream, "segment_id", seg.SegmentID, "seq_start", seg.SeqStart, "seq_end", seg.SeqEnd)
}

// onLookup answers a commit lookup from the durable commit index: the
// outcome of one JetStream message of the ingester's stream, for producers
// that missed its commit receipt.
func (in *Ingester) onLookup(ctx context.Context, m *nats.Msg) {
	var q wire.CommitLookup
	if err := json.Unmarshal(m.Data, &q); err != nil || q.JSSeq == 0 {
		respondJSON(m, wire.CommitLookupReply{Error: `want {"js_seq":N} with N > 0`})
		return
	}
	// Position first: the index is installed before the position moves.
	if q.JSSeq > in.pos.Load() {
		respondJSON(m, wire.CommitLookupReply{Status: wire.LookupPending, JSSeq: q.JSSeq})
		return
	}
	seqno, ok, err := in.index.lookup(ctx, q.JSSeq)
	if err != nil {
		respondJSON(m, wire.CommitLookupReply{Error: err.Error(), JSSeq: q.JSSeq})
		return
	}
	if !ok {
		respondJSON(m, wire.CommitLookupReply{Status: wire.LookupNotCommitted, JSSeq: q.JSSeq})
		return
	}
	row, found, err := in.cfg.Log.Store().Get(ctx, seqno)
	if err != nil || !found {
		respondJSON(m, wire.CommitLookupReply{Error: fmt.Sprintf("commit index names seqno %d, which cannot be read: %v", seqno, err), JSSeq: q.JSSeq})
		return
	}
	respondJSON(m, wire.CommitLookupReply{Status: wire.LookupCommitted, JSSeq: q.JSSeq, Stream: row.StreamID, Seqno: seqno, EntryHash: row.EntryHash})
}
