package pipeline

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// Witness is a witness service the signer submits checkpoints to
// (pkg/witnessd's client implements it).
type Witness interface {
	Submit(ctx context.Context, s witness.Submission) (witness.Receipt, error)
}

// SignerConfig configures a Signer.
type SignerConfig struct {
	// Conn is the NATS connection.
	Conn *nats.Conn
	// Partition is the partition whose segments this signer signs (zero:
	// the default partition).
	Partition wire.Partition
	// Log is the signer's own log over the (remote) store, opened, with a
	// keystore (Options.Signer) and a local head file (Options.HeadFile),
	// so that signing refuses a rolled-back store, and with
	// Options.OnAlert = Alerter.LogAlert so that a segment that fails the
	// log's pre-signing check (the stream is then halted) is alerted.
	Log *securelog.Log
	// Identity is the signing key's identity (DefaultIdentity).
	Identity string
	// Witnesses receive every new checkpoint; a refusal is an alert.
	Witnesses []Witness
	// ScanInterval is the period of the safety-net scan for unsigned
	// segments of every stream (DefaultSignerScan).
	ScanInterval time.Duration
	// Durable is the signer's durable consumer on SECURELOG_SEALED
	// (DefaultSignerDurable); FilterSubject selects its streams
	// (securelog.sealed.>).
	Durable       string
	FilterSubject string
	Logger        *slog.Logger
	Metrics       *Metrics
}

// Signer signs sealed segments in order, submits each new checkpoint to
// the witnesses and publishes securelog.checkpoint.<stream>. It consumes
// securelog.sealed.> durably (see Run) and scans the store periodically,
// so a lost announcement or a crash between steps only delays signing. Signed
// segments are skipped: signing is idempotent. Run one signer per store.
type Signer struct {
	cfg   SignerConfig
	log   *slog.Logger
	m     *Metrics
	alert Alerter

	mu sync.Mutex
	// witnessed[i][stream] is the last checkpoint witness i accepted.
	witnessed []map[string]witnessHead
	// lastSigned[stream] is the newest segment this signer signed (or saw
	// signed) with all earlier ones signed.
	lastSigned map[string]witnessHead
}

type witnessHead struct {
	segmentID uint64
	hash      []byte
}

// NewSigner returns a signer.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if cfg.Conn == nil || cfg.Log == nil {
		return nil, errors.New("signer: Conn and Log are required")
	}
	if cfg.Identity == "" {
		cfg.Identity = DefaultIdentity
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultSignerScan
	}
	if cfg.Durable == "" {
		cfg.Durable = cfg.Partition.Durable(DefaultSignerDurable)
	}
	if cfg.FilterSubject == "" {
		cfg.FilterSubject = cfg.Partition.Wildcard(wire.KindSealed)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	s := &Signer{cfg: cfg, log: cfg.Logger.With("worker", "signer", "partition", cfg.Partition.Name()), m: cfg.Metrics}
	s.alert = Alerter{Conn: cfg.Conn, Logger: s.log, Metrics: cfg.Metrics, Source: "signer"}
	for range cfg.Witnesses {
		s.witnessed = append(s.witnessed, map[string]witnessHead{})
	}
	return s, nil
}

// Healthy returns nil unless the signer's log halted a stream (a segment
// failed the check before signing, or the store was rolled back).
func (s *Signer) Healthy() error { return s.cfg.Log.Healthy() }

// Run signs until ctx ends. Sealed announcements come from a durable
// JetStream consumer on SECURELOG_SEALED and are acknowledged once their
// segment is signed, so a signer that was down resumes from its consumer's
// position; the store scan runs at the first start (a new consumer) and
// every ScanInterval as a safety net.
func (s *Signer) Run(ctx context.Context) error {
	ch, created, stop, err := consumeDurable(ctx, s.cfg.Conn, s.log, s.cfg.Partition.SealedStream(), jetstream.ConsumerConfig{
		Durable: s.cfg.Durable, FilterSubject: s.cfg.FilterSubject, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: DefaultSignerAckWait, MaxAckPending: -1, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("signer: %w", err)
	}
	defer func() {
		stop()
		for {
			select {
			case m := <-ch:
				_ = m.Nak() // for the next signer, at once
			default:
				return
			}
		}
	}()
	if created {
		s.scanAll(ctx)
	}
	scan := time.NewTicker(s.cfg.ScanInterval)
	defer scan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-ch:
			// Coalesce everything queued.
			batch := []jetstream.Msg{m}
			for len(batch) < maxSignBatch {
				select {
				case m = <-ch:
					batch = append(batch, m)
					continue
				default:
				}
				break
			}
			s.onSealed(ctx, batch)
		case <-scan.C:
			s.scanAll(ctx)
		}
	}
}

// onSealed signs the announced segments and acknowledges each one that is
// signed; the others come back after a delay. A sealed segment that
// directly extends the last one this signer signed in its stream is signed
// by id (point reads only); anything else falls back to one listing pass
// per stream.
func (s *Signer) onSealed(ctx context.Context, msgs []jetstream.Msg) {
	type announced struct {
		m      jetstream.Msg
		stream string
		id     uint64 // 0: not a segment info; acknowledged after the listing
	}
	var (
		next    []wire.SegmentInfo
		streams = map[string]bool{}
		signed  = map[uint64]bool{}
		got     []announced
	)
	for _, m := range msgs {
		st, ok := s.cfg.Partition.StreamOf(wire.KindSealed, m.Subject())
		if !ok {
			_ = m.Term()
			continue
		}
		var info wire.SegmentInfo
		if json.Unmarshal(m.Data(), &info) == nil && info.Stream == st && info.SegmentID != 0 {
			next = append(next, info)
			got = append(got, announced{m, st, info.SegmentID})
		} else {
			streams[st] = true
			got = append(got, announced{m, st, 0})
		}
	}
	for _, info := range next {
		if !streams[info.Stream] && s.signNext(ctx, info) {
			signed[info.SegmentID] = true
		} else {
			streams[info.Stream] = true
		}
	}
	for st := range streams {
		s.SignStream(ctx, st)
	}
	for _, a := range got {
		if a.id == 0 || signed[a.id] || s.signedThrough(a.stream) >= a.id {
			_ = a.m.Ack()
		} else {
			_ = a.m.NakWithDelay(signerRetry)
		}
	}
}

// maxSignBatch bounds how many queued sealed announcements one pass handles.
const maxSignBatch = 4096

// signerRetry is the delay before a sealed announcement whose segment could
// not be signed is delivered again.
const signerRetry = 5 * time.Second

// signedThrough returns the newest segment id of stream that this signer
// knows is signed with every earlier one (0 if none).
func (s *Signer) signedThrough(stream string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSigned[stream].segmentID
}

func (s *Signer) scanAll(ctx context.Context) {
	s.m.Scans.WithLabelValues("signer").Inc()
	streams, err := s.cfg.Log.ListStreams(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("scan: list streams", "err", err)
		}
		return
	}
	for _, st := range streams {
		if ctx.Err() != nil {
			return
		}
		if s.SignStream(ctx, st.Name) > 0 {
			s.m.ScanFound.WithLabelValues("signer").Inc()
		}
	}
}

// SignStream signs every unsigned segment of stream in id order, submits
// each to the witnesses and publishes its checkpoint event. It returns how
// many segments it signed.
func (s *Signer) SignStream(ctx context.Context, stream string) int {
	segs, err := s.cfg.Log.ListSegments(ctx, stream)
	if err != nil {
		if ctx.Err() == nil { // at shutdown it is not a failure
			s.log.Warn("list segments", "stream", stream, "err", err)
		}
		return 0
	}
	n := 0
	for _, seg := range segs {
		if seg.Signed() {
			continue
		}
		if ctx.Err() != nil {
			return n
		}
		if err := s.signOne(ctx, seg); err != nil {
			return n // retried on the next event or scan
		}

		n++
	}
	if len(segs) > 0 && n == 0 {
		// Nothing to sign: remember the newest (signed) segment so the next
		// sealed event can take the direct path.
		if _, _, h, err := s.cfg.Log.Checkpoint(ctx, segs[len(segs)-1].SegmentID); err == nil {
			s.setLastSigned(stream, segs[len(segs)-1].SegmentID, h)
		}
	}
	return n
}

// signNext signs the announced segment if it is the direct successor of
// the last segment this signer signed in its stream (its stored
// prev_checkpoint_hash names that checkpoint); it reports whether it did.
// Skipping a listing is safe: a segment between the two would have been
// announced and signed first, and the log recomputes the checkpoint anyway.
func (s *Signer) signNext(ctx context.Context, info wire.SegmentInfo) bool {
	s.mu.Lock()
	last, ok := s.lastSigned[info.Stream]
	s.mu.Unlock()
	if !ok || info.SegmentID <= last.segmentID || !bytes.Equal(info.PrevCheckpointHash, last.hash) {
		return false
	}
	seg, err := s.cfg.Log.ReadSegment(ctx, info.SegmentID)
	if err != nil || seg.StreamID != info.Stream {
		return false
	}
	if seg.Signed() {
		return true
	}
	return s.signOne(ctx, seg) == nil
}

func (s *Signer) setLastSigned(stream string, id uint64, h []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastSigned == nil {
		s.lastSigned = map[string]witnessHead{}
	}
	if cur, ok := s.lastSigned[stream]; !ok || id > cur.segmentID {
		s.lastSigned[stream] = witnessHead{segmentID: id, hash: h}
	}
}

func (s *Signer) signOne(ctx context.Context, seg wire.SegmentRow) error {
	start := time.Now()
	h, sig, err := s.cfg.Log.SignSegment(ctx, s.cfg.Identity, seg.SegmentID)
	if err != nil && ctx.Err() != nil {
		// Shutdown cut the sign short: not an error; the segment stays
		// unsigned and is signed by the next run (its announcement is not
		// acknowledged).
		s.log.Debug("sign segment interrupted by shutdown", "stream", seg.StreamID, "segment_id", seg.SegmentID, "err", err)
		return err
	}
	if err != nil {
		var halted *securelog.StreamHaltedError
		var cb *wire.ChainBrokenError
		switch {
		case errors.As(err, &halted):
			// The log raised the alert (its OnAlert) when it halted the
			// stream; it stays halted, so this is only logged.
			s.log.Error("segment not signed: stream halted", "stream", seg.StreamID, "segment_id", seg.SegmentID, "err", err)
		case errors.As(err, &cb):
			s.alert.Alert(seg.StreamID, "rollback", seg.SegmentID, err.Error())
		default:
			s.log.Error("sign segment", "stream", seg.StreamID, "segment_id", seg.SegmentID, "err", err)
		}
		return err
	}
	s.m.Signed.Inc()
	s.m.SignTime.Observe(time.Since(start).Seconds())
	s.setLastSigned(seg.StreamID, seg.SegmentID, h)
	seg.Signature, seg.SignerIdentity = sig, &s.cfg.Identity
	receipts := s.submit(ctx, seg, h)
	cm := wire.CheckpointMsg{Stream: seg.StreamID, SegmentID: seg.SegmentID, SeqStart: seg.SeqStart, SeqEnd: seg.SeqEnd,
		CheckpointHash: h, Signature: sig, SignerIdentity: s.cfg.Identity}
	for _, r := range receipts {
		b, _ := json.Marshal(r)
		cm.Receipts = append(cm.Receipts, b)
	}
	publishJSON(s.cfg.Conn, s.log, s.cfg.Partition.Subject(wire.KindCheckpoint, seg.StreamID), cm)
	s.log.Debug("segment signed", "stream", seg.StreamID, "segment_id", seg.SegmentID, "witness_receipts", len(receipts))
	return nil
}

// submit sends the new checkpoint to every witness. When the witness's
// last accepted checkpoint is the segment's predecessor (the steady
// state), the submission is built directly; otherwise it carries the
// intermediate checkpoints (BuildWitnessSubmission). A refusal is an alert,
// never silently retried; the one exception is a "not-extending" answer
// while this signer does not yet know the witness's head, answered by one
// resubmission that links from the head the witness reported.
func (s *Signer) submit(ctx context.Context, seg wire.SegmentRow, h []byte) []witness.Receipt {
	if len(s.cfg.Witnesses) == 0 {
		return nil
	}
	var out []witness.Receipt
	for i, w := range s.cfg.Witnesses {
		s.mu.Lock()
		head, known := s.witnessed[i][seg.StreamID]
		s.mu.Unlock()
		var sub witness.Submission
		var err error
		if !known || bytes.Equal(head.hash, seg.PrevCheckpointHash) {
			sub, err = s.direct(ctx, seg, h)
		} else {
			sub, err = s.cfg.Log.BuildWitnessSubmission(ctx, seg.StreamID, head.segmentID)
		}
		if err != nil {
			if ctx.Err() != nil {
				return out
			}
			s.log.Error("build witness submission", "stream", seg.StreamID, "segment_id", seg.SegmentID, "err", err)
			continue
		}
		r, err := w.Submit(ctx, sub)
		if ctx.Err() != nil {
			return out // shutdown: not a witness failure (the next submission carries this checkpoint)
		}
		if err == nil && !r.Accepted && r.Status == "not-extending" && !known && r.CurrentHead != nil {
			s.log.Warn("witness does not know this stream's recent checkpoints; resubmitting with the chain from its head",
				"stream", seg.StreamID, "segment_id", seg.SegmentID, "witness_head", r.CurrentHead.SegmentID)
			if sub, err = s.cfg.Log.BuildWitnessSubmission(ctx, seg.StreamID, r.CurrentHead.SegmentID); err == nil {
				r, err = w.Submit(ctx, sub)
			}
		}
		switch {
		case err != nil:
			s.m.Witnessed.WithLabelValues("error").Inc()
			s.alert.Alert(seg.StreamID, "witness-unreachable", seg.SegmentID, fmt.Sprintf("witness %d: %v", i, err))
			continue
		case !r.Accepted:
			s.m.Witnessed.WithLabelValues("refused").Inc()
			reason := r.Status
			if r.Reason != nil {
				reason += ": " + *r.Reason
			}
			s.alert.Alert(seg.StreamID, "witness-refusal", seg.SegmentID, fmt.Sprintf("witness %d refused checkpoint %s: %s", i, hex.EncodeToString(h), reason))
		default:
			s.m.Witnessed.WithLabelValues("accepted").Inc()
			s.mu.Lock()
			s.witnessed[i][seg.StreamID] = witnessHead{segmentID: seg.SegmentID, hash: h}
			s.mu.Unlock()
			// Keep the cosignature in the log's witness log so exports
			// carry it to auditors (see witness.ReceiptRow).
			if _, err := s.cfg.Log.Store().WitnessInsert(ctx, witness.ReceiptRow(sub, r)); err != nil {
				s.log.Error("record witness cosignature", "stream", seg.StreamID, "segment_id", seg.SegmentID, "err", err)
			}
		}
		out = append(out, r)
	}
	return out
}

// direct builds the submission of seg alone.
func (s *Signer) direct(ctx context.Context, seg wire.SegmentRow, h []byte) (witness.Submission, error) {
	_, f, fh, err := s.cfg.Log.Checkpoint(ctx, seg.SegmentID)
	if err != nil {
		return witness.Submission{}, err
	}
	if !bytes.Equal(fh, h) {
		return witness.Submission{}, fmt.Errorf("checkpoint of segment %d recomputes to %x, signed %x", seg.SegmentID, fh, h)
	}
	cj := securelog.CheckpointJSON(f)
	return witness.Submission{
		StreamID: seg.StreamID, SegmentID: seg.SegmentID, SeqStart: seg.SeqStart, SeqEnd: seg.SeqEnd,
		CheckpointHashHex: hex.EncodeToString(h), SignatureHex: hex.EncodeToString(seg.Signature),
		SignerIdentity: seg.Signer(), PrevCheckpointHashHex: hex.EncodeToString(f.PrevCheckpointHash), Checkpoint: &cj,
	}, nil
}
