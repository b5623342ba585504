package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// Checkpointed is an event whose segment is sealed and signed: the signed
// segment, its inclusion proof (checked against the segment's root), the
// checkpoint hash and the witnesses' receipts when the checkpoint event
// was observed. When the log has a C2SP witness policy, the event is also
// inside TlogCheckpoint, a checkpoint of the log's tree that satisfies
// the policy.
type Checkpointed struct {
	Segment        wire.SegmentRow          `json:"segment"`
	Proof          securelog.InclusionProof `json:"proof"`
	CheckpointHash wire.Hex                 `json:"checkpoint_hash,omitempty"`
	Receipts       []witness.Receipt        `json:"receipts,omitempty"`
	// TlogCheckpoint is the witnessed C2SP checkpoint note (with its
	// cosignatures) whose tree holds the event ("" when the log has no
	// witness policy or no checkpointer answers).
	TlogCheckpoint string `json:"tlog_checkpoint,omitempty"`
}

// AwaitCheckpoint waits until the committed entry seqno is in a signed
// segment and returns the segment with the entry's inclusion proof. It
// listens to securelog.checkpoint.<stream> and polls the store as a
// fallback, so a checkpoint that happened before the call is found too.
//
// When the log's checkpointer has a C2SP witness policy (it answers
// securelog.tlog.latest with policy true), AwaitCheckpoint also waits
// until the entry is inside a checkpoint that satisfies the policy (tree
// size ≥ seqno), listening to securelog.tlog.checkpoint and asking
// securelog.tlog.latest. Like the segment's signed state, that answer is
// the node's; verify-proof and audit check signatures and cosignatures.
//
// Seqnos are numbered per partition store: AwaitCheckpoint reads the
// default partition's store (or Options.Store); AwaitCheckpointOf names
// the stream, and so its partition.
func (c *Client) AwaitCheckpoint(ctx context.Context, seqno uint64) (Checkpointed, error) {
	return c.awaitCheckpoint(ctx, wire.Partition{}, seqno)
}

// AwaitCheckpointOf is AwaitCheckpoint for the committed entry seqno of
// stream, in the store of the partition that owns stream.
func (c *Client) AwaitCheckpointOf(ctx context.Context, stream string, seqno uint64) (Checkpointed, error) {
	part, err := c.route(ctx, stream)
	if err != nil {
		return Checkpointed{}, err
	}
	return c.awaitCheckpoint(ctx, part, seqno)
}

func (c *Client) awaitCheckpoint(ctx context.Context, part wire.Partition, seqno uint64) (Checkpointed, error) {
	rd, err := c.readerOf(ctx, part)
	if err != nil {
		return Checkpointed{}, err
	}
	row, err := rd.Read(ctx, seqno)
	if err != nil {
		return Checkpointed{}, fmt.Errorf("producer: read seqno %d: %w", seqno, err)
	}
	ch := make(chan *nats.Msg, 64)
	sub, err := c.nc.ChanSubscribe(part.Subject(wire.KindCheckpoint, row.StreamID), ch)
	if err != nil {
		return Checkpointed{}, fmt.Errorf("producer: subscribe checkpoints: %w", err)
	}
	defer sub.Unsubscribe()
	if err := c.nc.FlushWithContext(ctx); err != nil {
		return Checkpointed{}, fmt.Errorf("producer: subscribe checkpoints: %w", err)
	}
	tlogCh := make(chan *nats.Msg, 16)
	tsub, err := c.nc.ChanSubscribe(part.Tlog(wire.TlogCheckpointSubject), tlogCh)
	if err != nil {
		return Checkpointed{}, fmt.Errorf("producer: subscribe tlog checkpoints: %w", err)
	}
	defer tsub.Unsubscribe()
	poll := time.NewTicker(c.opts.PollInterval)
	defer poll.Stop()
	var msg *wire.CheckpointMsg
	for {
		seg, signed, err := signedSegmentOf(ctx, rd, seqno)
		if err != nil {
			return Checkpointed{}, err
		}
		if signed {
			out, err := c.checkpointed(ctx, rd, seg, row, msg)
			if err != nil {
				return out, err
			}
			out.TlogCheckpoint, err = c.awaitWitnessed(ctx, part, seqno, tlogCh, poll.C)
			return out, err
		}
		select {
		case <-ctx.Done():
			return Checkpointed{}, fmt.Errorf("producer: waiting for the checkpoint of seqno %d: %w", seqno, ctx.Err())
		case m := <-ch:
			var cm wire.CheckpointMsg
			if json.Unmarshal(m.Data, &cm) == nil && cm.SeqStart <= seqno && seqno <= cm.SeqEnd {
				msg = &cm
			}
		case <-poll.C:
		}
	}
}

// signedSegmentOf returns the segment holding seqno, if it is closed, and
// whether it is signed.
func signedSegmentOf(ctx context.Context, rd *securelog.Reader, seqno uint64) (wire.SegmentRow, bool, error) {
	seg, ok, err := rd.SegmentOf(ctx, seqno)
	if err != nil || !ok {
		return wire.SegmentRow{}, false, err
	}
	return seg, seg.Signed(), nil
}

// checkpointed builds the result: the entry's inclusion proof in its
// signed segment (securelog.Reader: O(log n) reads where the store keeps
// the segment's tree, else one membership and one range read), checked
// against the segment's stored root.
func (c *Client) checkpointed(ctx context.Context, rd *securelog.Reader, seg wire.SegmentRow, row wire.EntryRow, msg *wire.CheckpointMsg) (Checkpointed, error) {
	proof, err := rd.BuildInclusionProof(ctx, row.Seqno)
	if err != nil {
		return Checkpointed{}, fmt.Errorf("producer: inclusion proof of seqno %d: %w", row.Seqno, err)
	}
	if proof.SegmentID != seg.SegmentID {
		return Checkpointed{}, fmt.Errorf("producer: seqno %d is not a member of segment %d", row.Seqno, seg.SegmentID)
	}
	if err := securelog.VerifyInclusionProof(proof, seg.MerkleRoot); err != nil {
		return Checkpointed{}, fmt.Errorf("producer: inclusion proof of seqno %d: %w", row.Seqno, err)
	}
	out := Checkpointed{Segment: seg, Proof: proof}
	if msg != nil && msg.SegmentID == seg.SegmentID {
		out.CheckpointHash = msg.CheckpointHash
		for _, raw := range msg.Receipts {
			var r witness.Receipt
			if json.Unmarshal(raw, &r) == nil {
				out.Receipts = append(out.Receipts, r)
			}
		}
	}
	return out, nil
}

// awaitWitnessed waits until the log's latest witnessed C2SP checkpoint
// covers seqno and returns it; "" when no checkpointer answers or it has
// no witness policy.
func (c *Client) awaitWitnessed(ctx context.Context, part wire.Partition, seqno uint64, announced <-chan *nats.Msg, poll <-chan time.Time) (string, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, tlogLatestTimeout)
		m, err := c.nc.RequestWithContext(rctx, part.Tlog(wire.TlogLatestSubject), nil)
		cancel()
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return "", nil // no C2SP checkpointer: the v1 level only
		case err == nil:
			var r wire.TlogLatestReply
			if err := json.Unmarshal(m.Data, &r); err != nil {
				return "", fmt.Errorf("producer: %s reply: %w", part.Tlog(wire.TlogLatestSubject), err)
			}
			if !r.Policy {
				return "", nil
			}
			if r.Checkpoint != "" && r.Size >= 0 && uint64(r.Size) >= seqno {
				return r.Checkpoint, nil
			}
		case ctx.Err() != nil:
		default:
			c.log.Debug("asking for the latest tlog checkpoint", "err", err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("producer: waiting for a witnessed checkpoint covering seqno %d: %w", seqno, ctx.Err())
		case <-announced:
		case <-poll:
		}
	}
}

// tlogLatestTimeout bounds one securelog.tlog.latest request.
const tlogLatestTimeout = 2 * time.Second
