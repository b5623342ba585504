package witnessd

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// DefaultCheckInterval is the default period of the cross-check loop.
const DefaultCheckInterval = 10 * time.Second

// AlertSubjectPrefix prefixes the NATS subject alerts are published on:
// "securelog.alert.<stream>" (see AlertSubject).
const AlertSubjectPrefix = wire.KindAlert

// Alert kinds.
const (
	// AlertEquivocation: a validly signed second checkpoint for a witnessed
	// segment was submitted.
	AlertEquivocation = "equivocation"
	// AlertDivergence: the log's store now recomputes the witnessed segment
	// to a different checkpoint hash (or cannot recompute it at all: its
	// entries are gone or malformed).
	AlertDivergence = "divergence"
	// AlertRollback: the log's newest segment of the stream is older than
	// the witnessed one (or the stream has no segments any more).
	AlertRollback = "rollback"
	// AlertMissingSegment: the witnessed segment is gone from the log while
	// newer segments of the stream exist.
	AlertMissingSegment = "missing-segment"
)

// Alert is raised when the witness sees evidence of tampering. It is the
// JSON published on AlertSubject(Stream).
type Alert struct {
	Stream    string `json:"stream"`
	SegmentID uint64 `json:"segment_id"`
	Kind      string `json:"kind"`
	Detail    string `json:"detail"`
}

// AlertSubject returns the NATS subject of a stream's alerts:
// AlertSubjectPrefix + the stream id as one subject token (characters NATS
// forbids or treats specially in a token — '.', '*', '>', whitespace,
// control characters — become '_'; an empty id becomes "_").
func AlertSubject(stream string) string {
	tok := strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, stream)
	if tok == "" {
		tok = "_"
	}
	return AlertSubjectPrefix + tok
}

// Config configures a Server.
type Config struct {
	// Store is the witness log (an initialised store.Store, e.g. opened
	// with store.Open(ctx, "pebble:DIR")). Required. The server does not
	// close it.
	Store store.Store
	// Trust holds the public keys of the log's signers (a trust file,
	// *checkpoint.Trust). Required.
	Trust Verifier
	// Key is the witness's own signing key (Ed25519). Required.
	Key keystore.Key
	// Identity names Key in receipts and in the witness trust file
	// (DefaultIdentity if empty).
	Identity string
	// LogStore reaches the log's store (e.g. a remote store over the log's
	// RPC) for cross-checks; nil disables them. The server does not close it.
	LogStore store.ReadStore
	// CheckInterval is the cross-check period (DefaultCheckInterval).
	CheckInterval time.Duration
	// NATS, if set, receives alerts (AlertSubject) and serves submissions
	// in Run.
	NATS *nats.Conn
	// OnAlert, if set, is called with every alert (after logging it).
	OnAlert func(Alert)
	// EvidenceDir keeps refused, validly signed submissions that conflict
	// with a witnessed head (see Evidence), one file per checkpoint; empty
	// keeps the last MaxEvidenceInMemory in memory only.
	EvidenceDir string
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives decisions and alerts (slog.Default()).
	Logger *slog.Logger
	// Tlog, if set, also serves C2SP tlog-witness (tlogwitness.go).
	Tlog *TlogConfig
}

// lockShards is the number of stream locks; streams hash onto them.
const lockShards = 64

// Server is a witness. It is safe for concurrent use: decisions for one
// stream are serialised, so of two racing submissions at most one can
// become the stream's new head.
type Server struct {
	st       store.Store
	trust    Verifier
	key      keystore.Key
	identity string
	logStore store.ReadStore
	interval time.Duration
	nc       *nats.Conn
	onAlert  func(Alert)
	now      func() time.Time
	log      *slog.Logger

	locks [lockShards]sync.Mutex
	tlog  *tlogWitness // nil: no tlog-witness endpoint

	evidence evidenceKeeper

	alertMu   sync.Mutex
	lastAlert map[string]Alert // stream → alert of the last failed cross-check

	reg         *prometheus.Registry
	submissions *prometheus.CounterVec
	alerts      *prometheus.CounterVec
	checks      *prometheus.CounterVec
}

// New returns a witness server. The key must be an Ed25519 key (DECISIONS
// 12: cosignatures are Ed25519).
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("witnessd: no witness store")
	case cfg.Trust == nil:
		return nil, errors.New("witnessd: no trust file of the log's signers")
	case cfg.Key == nil:
		return nil, errors.New("witnessd: no witness key")
	case cfg.Key.Algorithm() != keystore.Ed25519:
		return nil, fmt.Errorf("witnessd: witness key algorithm %q, want %q", cfg.Key.Algorithm(), keystore.Ed25519)
	}
	s := &Server{
		st: cfg.Store, trust: cfg.Trust, key: cfg.Key, identity: cfg.Identity, logStore: cfg.LogStore,
		interval: cfg.CheckInterval, nc: cfg.NATS, onAlert: cfg.OnAlert, now: cfg.Now, log: cfg.Logger,
		lastAlert: map[string]Alert{}, reg: prometheus.NewRegistry(),
	}
	s.evidence.dir = cfg.EvidenceDir
	if s.identity == "" {
		s.identity = DefaultIdentity
	}
	if s.interval <= 0 {
		s.interval = DefaultCheckInterval
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.submissions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "securelog_witness_submissions_total", Help: "Witness submissions by receipt status (\"error\" = internal failure).",
	}, []string{"status"})
	s.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "securelog_witness_alerts_total", Help: "Alerts raised by the witness, by kind.",
	}, []string{"kind"})
	s.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "securelog_witness_cross_checks_total", Help: "Per-stream cross-checks against the log by result (ok, alert, error).",
	}, []string{"result"})
	s.reg.MustRegister(s.submissions, s.alerts, s.checks)
	if err := s.initTlog(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Identity returns the witness's key identity.
func (s *Server) Identity() string { return s.identity }

// Registry returns the server's private metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

func (s *Server) lockFor(stream string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(stream))
	return &s.locks[h.Sum32()%lockShards]
}

// Submit decides a submission (Decide) against the stream's witnessed head
// and answers with a receipt. An accepted new checkpoint is recorded in the
// witness log (WitnessInsert) before the receipt is returned; every
// accepted receipt carries the witness identity and its cosignature (see
// Cosign). A refusal is a receipt with Accepted false, not an error; the
// error is for failures of the witness itself (its store, its key).
func (s *Server) Submit(ctx context.Context, sub witness.Submission) (witness.Receipt, error) {
	mu := s.lockFor(sub.StreamID)
	mu.Lock()
	defer mu.Unlock()
	var last *wire.WitnessRow
	if sub.StreamID != "" {
		row, ok, err := s.st.WitnessLatest(ctx, sub.StreamID)
		if err != nil {
			s.submissions.WithLabelValues("error").Inc()
			return witness.Receipt{}, fmt.Errorf("witness log: latest row of stream %q: %w", sub.StreamID, err)
		}
		if ok {
			last = &row
		}
	}
	d := Decide(s.trust, last, sub)
	now := wire.FormatTime(s.now())
	rec := witness.Receipt{
		StreamID: sub.StreamID, SegmentID: sub.SegmentID, CheckpointHashHex: sub.CheckpointHashHex,
		Accepted: d.Accepted(), ReceivedAt: now, Status: d.Status, WitnessIdentity: s.identity,
	}
	if d.Hash != nil {
		rec.CheckpointHashHex = hex.EncodeToString(d.Hash)
	}
	if !d.Accepted() {
		reason := d.Reason
		rec.Reason = &reason
		switch d.Status {
		case StatusStale, StatusEquivocation, StatusNotExtending:
			rec.CurrentHead = d.Head
		}
		if d.Status == StatusStale {
			rows, err := s.st.WitnessList(ctx, sub.StreamID)
			if err != nil {
				s.submissions.WithLabelValues("error").Inc()
				return witness.Receipt{}, fmt.Errorf("witness log: rows of stream %q: %w", sub.StreamID, err)
			}
			if kind, detail := StaleConflict(rows, sub, d.Hash); kind != "" {
				d.Evidence, d.Reason = kind, d.Reason+"; "+detail
				reason = d.Reason
			}
		}
		s.submissions.WithLabelValues(d.Status).Inc()
		s.log.Warn("witness refused submission", "stream", sub.StreamID, "segment_id", sub.SegmentID,
			"status", d.Status, "reason", d.Reason)
		if d.Evidence != "" {
			// A validly signed checkpoint that conflicts with the
			// witnessed head: alert and keep it (issue 9 item 8).
			s.keepEvidence(sub, d, now)
		}
		return rec, nil
	}
	cosig, err := Cosign(s.key, d.Hash)
	if err != nil {
		s.submissions.WithLabelValues("error").Inc()
		return witness.Receipt{}, err
	}
	if d.Store {
		row := wire.WitnessRow{
			StreamID: sub.StreamID, SegmentID: sub.SegmentID, SeqStart: sub.SeqStart, SeqEnd: sub.SeqEnd,
			CheckpointHashHex: rec.CheckpointHashHex, SignatureHex: strings.ToLower(sub.SignatureHex),
			SignerIdentity: sub.SignerIdentity, ReceivedAt: now,
		}
		if _, err := s.st.WitnessInsert(ctx, row); err != nil {
			s.submissions.WithLabelValues("error").Inc()
			return witness.Receipt{}, fmt.Errorf("witness log: record segment %d of stream %q: %w", sub.SegmentID, sub.StreamID, err)
		}
		if last == nil {
			s.log.Info("witness: first checkpoint of stream accepted (trust on first use)", "stream", sub.StreamID, "segment_id", sub.SegmentID)
		}
	}
	rec.CosignatureHex = hex.EncodeToString(cosig)
	s.submissions.WithLabelValues(StatusAccepted).Inc()
	s.log.Debug("witness accepted submission", "stream", sub.StreamID, "segment_id", sub.SegmentID,
		"checkpoint_hash", rec.CheckpointHashHex, "new", d.Store)
	return rec, nil
}

// Head returns the witnessed head of a stream.
func (s *Server) Head(ctx context.Context, stream string) (wire.WitnessRow, bool, error) {
	row, ok, err := s.st.WitnessLatest(ctx, stream)
	if err != nil {
		return wire.WitnessRow{}, false, fmt.Errorf("witness log: latest row of stream %q: %w", stream, err)
	}
	return row, ok, nil
}

// raise logs an alert, counts it, publishes it on NATS if configured and
// calls the OnAlert hook.
func (s *Server) raise(a Alert) {
	s.log.Error("witness alert", "stream", a.Stream, "segment_id", a.SegmentID, "kind", a.Kind, "detail", a.Detail)
	s.alerts.WithLabelValues(a.Kind).Inc()
	if s.nc != nil {
		// The pipeline's alert envelope, so every publisher on
		// securelog.alert.<stream> speaks one shape.
		msg := wire.AlertMsg{Stream: a.Stream, Kind: a.Kind, SegmentID: a.SegmentID, Message: a.Detail,
			Source: "witness", Time: wire.FormatTime(s.now())}
		if data, err := json.Marshal(msg); err == nil {
			if err := s.nc.Publish(AlertSubject(a.Stream), data); err != nil {
				s.log.Warn("witness: publish alert failed", "subject", AlertSubject(a.Stream), "error", err)
			}
		}
	}
	if s.onAlert != nil {
		s.onAlert(a)
	}
}
