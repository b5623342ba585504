package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// SealerConfig configures a Sealer. Zero fields take the defaults.
type SealerConfig struct {
	// Conn is the NATS connection (JetStream enabled on the server).
	Conn *nats.Conn
	// Partition is the partition whose segments this sealer closes (zero:
	// the default partition).
	Partition wire.Partition
	// Store, if set, is scanned (normally a remote store) for streams with
	// open entries the sealer has not heard of: at the first start (when
	// its durable consumer is new) and every ScanInterval, as a safety net
	// for a lost announcement.
	Store store.Store
	// MaxEntries closes a segment once it holds this many entries.
	MaxEntries int
	// MaxAge closes a segment whose first entry was announced this long ago.
	MaxAge time.Duration
	// ScanInterval is the period of the store scan (DefaultSealerScan).
	ScanInterval time.Duration
	// RequestTimeout bounds one close request (DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Durable is the sealer's durable consumer on SECURELOG_APPENDED
	// (DefaultSealerDurable); FilterSubject selects its streams
	// (securelog.appended.>).
	Durable       string
	FilterSubject string
	Logger        *slog.Logger
	Metrics       *Metrics
}

// Sealer is the segment-close policy: it counts appended entries per stream
// and asks the ingester to close a stream's segment
// (securelog.close.<stream>) when it reaches MaxEntries or MaxAge. Closing
// is idempotent: an empty-segment answer just resets the stream's state.
//
// The appended announcements come from a durable JetStream consumer on
// SECURELOG_APPENDED. An announcement is acknowledged only once a close
// covers its entries, so the consumer's position is the sealer's state: a
// sealer that was down (or killed) gets every announcement it had not
// acted on again and resumes without scanning the store.
type Sealer struct {
	cfg  SealerConfig
	log  *slog.Logger
	open map[string]*openSeg
}

type openSeg struct {
	count     int
	since     time.Time // when the first open entry was announced
	lastSeqno uint64
	// sealedThrough is the highest seqno a close of this stream covered.
	sealedThrough uint64
	// held are the announcements not yet covered by a close, by JetStream
	// stream sequence (a redelivery replaces, never adds).
	held map[uint64]heldMsg
}

type heldMsg struct {
	msg       jetstream.Msg
	count     int
	lastSeqno uint64
}

// NewSealer returns a sealer.
func NewSealer(cfg SealerConfig) (*Sealer, error) {
	if cfg.Conn == nil {
		return nil, errors.New("sealer: Conn is required")
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultSealerScan
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Durable == "" {
		cfg.Durable = cfg.Partition.Durable(DefaultSealerDurable)
	}
	if cfg.FilterSubject == "" {
		cfg.FilterSubject = cfg.Partition.Wildcard(wire.KindAppended)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	return &Sealer{cfg: cfg, log: cfg.Logger.With("worker", "sealer", "partition", cfg.Partition.Name()), open: map[string]*openSeg{}}, nil
}

// ackWait is how long the broker waits before redelivering an announcement
// the sealer holds: a close is due after MaxAge, so a held announcement is
// normally acknowledged well before; redeliveries are harmless.
func (s *Sealer) ackWait() time.Duration {
	return max(2*s.cfg.MaxAge+s.cfg.RequestTimeout, 30*time.Second)
}

// Run applies the policy until ctx ends. Announcements still held then are
// handed back to the broker (nak) so the next sealer gets them at once.
func (s *Sealer) Run(ctx context.Context) error {
	ch, created, stop, err := consumeDurable(ctx, s.cfg.Conn, s.log, s.cfg.Partition.AppendedStream(), jetstream.ConsumerConfig{
		Durable: s.cfg.Durable, FilterSubject: s.cfg.FilterSubject, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: s.ackWait(), MaxAckPending: -1, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sealer: %w", err)
	}
	defer func() {
		stop()
		s.release()
	}()
	if created {
		// No position to resume from: the store may hold entries announced
		// before the announcement stream existed (an upgrade).
		s.scan(ctx)
	}
	tick := time.NewTicker(max(s.cfg.MaxAge/4, 5*time.Millisecond))
	defer tick.Stop()
	scan := time.NewTicker(s.cfg.ScanInterval)
	defer scan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-ch:
			s.onAppended(ctx, m)
		case now := <-tick.C:
			for name, o := range s.open {
				if o.count > 0 && now.Sub(o.since) >= s.cfg.MaxAge {
					s.close(ctx, name)
				}
			}
		case <-scan.C:
			s.scan(ctx)
		}
	}
}

// onAppended counts one announcement and closes the stream's segment when
// it is full.
func (s *Sealer) onAppended(ctx context.Context, m jetstream.Msg) {
	var a wire.AppendedMsg
	stream, ok := s.cfg.Partition.StreamOf(wire.KindAppended, m.Subject())
	if err := json.Unmarshal(m.Data(), &a); err != nil || !ok || a.Stream != stream {
		s.log.Warn("malformed appended message dropped", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	meta, err := m.Metadata()
	if err != nil {
		s.log.Warn("appended message without JetStream metadata dropped", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	o := s.state(stream)
	if a.LastSeqno != 0 && a.LastSeqno <= o.sealedThrough {
		_ = m.Ack() // a redelivery of entries already sealed
		return
	}
	if o.held == nil {
		o.held = map[uint64]heldMsg{}
	}
	if prev, ok := o.held[meta.Sequence.Stream]; ok {
		o.count -= prev.count // redelivered: replaces, never adds
	} else if o.count == 0 || meta.Timestamp.Before(o.since) {
		o.since = meta.Timestamp // a resumed sealer closes old entries at once
	}
	o.held[meta.Sequence.Stream] = heldMsg{msg: m, count: a.Count, lastSeqno: a.LastSeqno}
	o.count += a.Count
	o.lastSeqno = max(o.lastSeqno, a.LastSeqno)
	if o.count >= s.cfg.MaxEntries {
		s.close(ctx, stream)
	}
}

func (s *Sealer) state(stream string) *openSeg {
	o := s.open[stream]
	if o == nil {
		o = &openSeg{}
		s.open[stream] = o
	}
	if o.count == 0 {
		o.since = time.Now()
	}
	return o
}

// scan marks every stream whose head is past its last segment as open.
func (s *Sealer) scan(ctx context.Context) {
	if s.cfg.Store == nil {
		return
	}
	s.cfg.Metrics.Scans.WithLabelValues("sealer").Inc()
	streams, err := s.cfg.Store.StreamList(ctx)
	if err != nil {
		s.log.Warn("scan: list streams", "err", err)
		return
	}
	for _, st := range streams {
		if wire.CheckStreamToken(st.Name) != nil {
			continue
		}
		head, ok, err := s.cfg.Store.Head(ctx, st.Name)
		if err != nil || !ok {
			continue
		}
		last, _, err := s.cfg.Store.SegmentLastSeqno(ctx, st.Name)
		if err != nil || head <= last {
			continue
		}
		o := s.state(st.Name)
		if o.count == 0 {
			o.count = 1 // at least one; the age rule closes it
			s.cfg.Metrics.ScanFound.WithLabelValues("sealer").Inc()
		}
		o.lastSeqno = max(o.lastSeqno, head)
	}
}

// close asks the ingester to close stream's segment and acknowledges the
// announcements the close covered.
func (s *Sealer) close(ctx context.Context, stream string) {
	o := s.open[stream]
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	reply, err := s.cfg.Conn.RequestWithContext(rctx, s.cfg.Partition.Subject(wire.KindClose, stream), nil)
	if err != nil && ctx.Err() != nil {
		return // shutdown: the next sealer closes it
	}
	if err != nil {
		s.log.Warn("close request failed; will retry", "stream", stream, "err", err)
		o.since = time.Now() // retry after another MaxAge
		return
	}
	var r wire.CloseReply
	if err := json.Unmarshal(reply.Data, &r); err != nil {
		s.log.Warn("malformed close reply", "stream", stream, "err", err)
		return
	}
	switch {
	case r.Segment != nil:
		o.covered(r.Segment.SeqEnd)
		if o.lastSeqno > r.Segment.SeqEnd {
			// Entries arrived after the close.
			o.count, o.since = max(o.count, 1), time.Now()
			return
		}
	case r.Code == "empty-segment":
		// Nothing open: every announced entry (committed before it was
		// announced, so before this close) is in a segment.
		o.covered(o.lastSeqno)
	default:
		s.log.Warn("close refused; will retry", "stream", stream, "err", r.Error, "code", r.Code)
		o.since = time.Now()
		return
	}
	o.count = 0
}

// covered acknowledges the held announcements whose entries are at or
// below seqno and recounts the rest.
func (o *openSeg) covered(seqno uint64) {
	o.sealedThrough = max(o.sealedThrough, seqno)
	o.count = 0
	for seq, h := range o.held {
		if h.lastSeqno <= o.sealedThrough {
			_ = h.msg.Ack()
			delete(o.held, seq)
			continue
		}
		o.count += h.count
	}
}

// release hands every held announcement back to the broker for immediate
// redelivery (to the next sealer on the durable consumer).
func (s *Sealer) release() {
	for _, o := range s.open {
		for seq, h := range o.held {
			_ = h.msg.Nak()
			delete(o.held, seq)
		}
	}
}
