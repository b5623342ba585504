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
	w, err := c.watch(ctx, part, row.StreamID)
	if err != nil {
		return Checkpointed{}, err
	}
	defer w.Close()
	return w.await(ctx, rd, row)
}

// CheckpointWatch listens to one stream's checkpoint announcements from
// the moment it was created. AwaitCheckpoint reports the witnesses'
// receipts only when it observes the announcement of the entry's segment,
// and a segment can be sealed, signed and announced between the commit
// and the call: a caller that wants the receipts creates the watch before
// publishing and awaits through it.
type CheckpointWatch struct {
	c      *Client
	part   wire.Partition
	stream string
	ch     chan *nats.Msg
	tlogCh chan *nats.Msg
	sub    *nats.Subscription
	tsub   *nats.Subscription
	seen   []wire.CheckpointMsg // the latest announcements, newest last
	// grace is how long await waits for the announcement of a segment the
	// store already shows signed (the signer stores the signature, asks
	// the witnesses, then announces the segment with their receipts).
	grace time.Duration
}

// watchSeen bounds the announcements a CheckpointWatch remembers.
const watchSeen = 256

// WatchCheckpoints starts listening to the checkpoint announcements of
// stream (in the partition that owns it) and to its partition's C2SP
// checkpoints. Close it when done.
func (c *Client) WatchCheckpoints(ctx context.Context, stream string) (*CheckpointWatch, error) {
	part, err := c.route(ctx, stream)
	if err != nil {
		return nil, err
	}
	w, err := c.watch(ctx, part, stream)
	if err != nil {
		return nil, err
	}
	// Every entry committed after this point is announced after it.
	w.grace = watchGrace
	return w, nil
}

func (c *Client) watch(ctx context.Context, part wire.Partition, stream string) (*CheckpointWatch, error) {
	w := &CheckpointWatch{c: c, part: part, stream: stream,
		ch: make(chan *nats.Msg, watchSeen), tlogCh: make(chan *nats.Msg, 16), grace: announceGrace}
	var err error
	if w.sub, err = c.nc.ChanSubscribe(part.Subject(wire.KindCheckpoint, stream), w.ch); err != nil {
		return nil, fmt.Errorf("producer: subscribe checkpoints of %q: %w", stream, err)
	}
	if w.tsub, err = c.nc.ChanSubscribe(part.Tlog(wire.TlogCheckpointSubject), w.tlogCh); err != nil {
		w.Close()
		return nil, fmt.Errorf("producer: subscribe tlog checkpoints: %w", err)
	}
	if err := c.nc.FlushWithContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("producer: subscribe checkpoints of %q: %w", stream, err)
	}
	return w, nil
}

// Close stops listening.
func (w *CheckpointWatch) Close() {
	if w.sub != nil {
		_ = w.sub.Unsubscribe()
	}
	if w.tsub != nil {
		_ = w.tsub.Unsubscribe()
	}
}

// Await is AwaitCheckpoint for the committed entry seqno of the watched
// stream, with the receipts of every announcement since the watch began.
func (w *CheckpointWatch) Await(ctx context.Context, seqno uint64) (Checkpointed, error) {
	rd, err := w.c.readerOf(ctx, w.part)
	if err != nil {
		return Checkpointed{}, err
	}
	row, err := rd.Read(ctx, seqno)
	if err != nil {
		return Checkpointed{}, fmt.Errorf("producer: read seqno %d: %w", seqno, err)
	}
	if row.StreamID != w.stream {
		return Checkpointed{}, fmt.Errorf("producer: seqno %d is in stream %q, not the watched stream %q", seqno, row.StreamID, w.stream)
	}
	return w.await(ctx, rd, row)
}

// note keeps an announcement (the latest watchSeen).
func (w *CheckpointWatch) note(m *nats.Msg) {
	var cm wire.CheckpointMsg
	if json.Unmarshal(m.Data, &cm) != nil {
		return
	}
	if len(w.seen) == watchSeen {
		w.seen = append(w.seen[:0], w.seen[1:]...)
	}
	w.seen = append(w.seen, cm)
}

// covering returns the newest remembered announcement covering seqno.
func (w *CheckpointWatch) covering(seqno uint64) *wire.CheckpointMsg {
	for i := len(w.seen) - 1; i >= 0; i-- {
		if cm := &w.seen[i]; cm.SeqStart <= seqno && seqno <= cm.SeqEnd {
			return cm
		}
	}
	return nil
}

func (w *CheckpointWatch) await(ctx context.Context, rd *securelog.Reader, row wire.EntryRow) (Checkpointed, error) {
	seqno := row.Seqno
	poll := time.NewTicker(w.c.opts.PollInterval)
	defer poll.Stop()
	for {
		for drained := false; !drained; {
			select {
			case m := <-w.ch:
				w.note(m)
			default:
				drained = true
			}
		}
		seg, signed, err := signedSegmentOf(ctx, rd, seqno)
		if err != nil {
			return Checkpointed{}, err
		}
		if signed {
			// The announcement follows the signature: wait for it if the
			// store showed the signature first.
			if w.covering(seqno) == nil {
				timeout := time.NewTimer(w.grace)
				for w.covering(seqno) == nil {
					select {
					case m := <-w.ch:
						w.note(m)
						continue
					case <-timeout.C:
					case <-ctx.Done():
					}
					break
				}
				timeout.Stop()
			}
			out, err := w.c.checkpointed(ctx, rd, seg, row, w.covering(seqno))
			if err != nil {
				return out, err
			}
			out.TlogCheckpoint, err = w.c.awaitWitnessed(ctx, w.part, seqno, w.tlogCh, poll.C)
			return out, err
		}
		select {
		case <-ctx.Done():
			return Checkpointed{}, fmt.Errorf("producer: waiting for the checkpoint of seqno %d: %w", seqno, ctx.Err())
		case m := <-w.ch:
			w.note(m)
		case <-poll.C:
		}
	}
}

// announceGrace is how long AwaitCheckpoint waits for the announcement
// of a segment the store already shows signed (it may have been announced
// before the call); watchGrace is the same for a CheckpointWatch created
// before the entry was committed, which sees every later announcement
// (the signer asks the witnesses before it announces).
const (
	announceGrace = 250 * time.Millisecond
	watchGrace    = 10 * time.Second
)

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
