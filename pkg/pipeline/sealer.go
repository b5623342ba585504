package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// SealerConfig configures a Sealer. Zero fields take the defaults.
type SealerConfig struct {
	// Conn is the NATS connection.
	Conn *nats.Conn
	// Store, if set, is scanned (normally a remote store) at start and every
	// ScanInterval for streams with open entries the sealer has not heard of.
	Store store.Store
	// MaxEntries closes a segment once it holds this many entries.
	MaxEntries int
	// MaxAge closes a segment whose first entry was seen this long ago.
	MaxAge time.Duration
	// ScanInterval is the period of the store scan (DefaultSealerScan).
	ScanInterval time.Duration
	// RequestTimeout bounds one close request (DefaultRequestTimeout).
	RequestTimeout time.Duration
	Logger         *slog.Logger
	Metrics        *Metrics
}

// Sealer is the segment-close policy: it counts appended entries per stream
// (securelog.appended.>) and asks the ingester to close a stream's segment
// (securelog.close.<stream>) when it reaches MaxEntries or MaxAge. Closing
// is idempotent: an empty-segment answer just resets the stream's state.
type Sealer struct {
	cfg  SealerConfig
	log  *slog.Logger
	open map[string]*openSeg
}

type openSeg struct {
	count     int
	since     time.Time // when the first open entry was seen
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
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	return &Sealer{cfg: cfg, log: cfg.Logger.With("worker", "sealer"), open: map[string]*openSeg{}}, nil
}

// Run applies the policy until ctx ends.
func (s *Sealer) Run(ctx context.Context) error {
	ch := make(chan *nats.Msg, 4096)
	sub, err := s.cfg.Conn.ChanSubscribe(wire.WildcardFor(wire.KindAppended), ch)
	if err != nil {
		return fmt.Errorf("sealer: subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)
	s.scan(ctx)
	tick := time.NewTicker(max(s.cfg.MaxAge/4, 5*time.Millisecond))
	defer tick.Stop()
	scan := time.NewTicker(s.cfg.ScanInterval)
	defer scan.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-ch:
			var a wire.AppendedMsg
			if err := json.Unmarshal(m.Data, &a); err != nil || wire.CheckStreamToken(a.Stream) != nil {
				s.log.Warn("malformed appended message", "subject", m.Subject, "err", err)
				continue
			}
			o := s.state(a.Stream)
			o.count += a.Count
			o.lastSeqno = max(o.lastSeqno, a.LastSeqno)
			if o.count >= s.cfg.MaxEntries {
				s.close(ctx, a.Stream)
			}
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
		}
		o.lastSeqno = max(o.lastSeqno, head)
	}
}

// close asks the ingester to close stream's segment.
func (s *Sealer) close(ctx context.Context, stream string) {
	o := s.open[stream]
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	reply, err := s.cfg.Conn.RequestWithContext(rctx, wire.SubjectFor(wire.KindClose, stream), nil)
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
		if o.lastSeqno > r.Segment.SeqEnd {
			o.count, o.since = 1, time.Now() // entries arrived after the close
			return
		}
	case r.Code == "empty-segment":
	default:
		s.log.Warn("close refused; will retry", "stream", stream, "err", r.Error, "code", r.Code)
		o.since = time.Now()
		return
	}
	o.count = 0
}
