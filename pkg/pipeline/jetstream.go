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

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
)

// StreamConfig describes the JetStream streams of the pipeline.
type StreamConfig struct {
	// Replicas is the replication factor (1 for `securelog up`, 3 in a cluster).
	Replicas int
	// Duplicates is the de-duplication window (DefaultDuplicates).
	Duplicates time.Duration
	// MaxAge bounds how long SECURELOG_IN keeps messages (DefaultInMaxAge).
	MaxAge time.Duration
}

// EnsureStreams creates SECURELOG_IN (subjects securelog.in.>, file storage,
// de-duplication by Nats-Msg-Id) and SECURELOG_DLQ (securelog.dlq.>) if
// they do not exist. Existing streams are left as configured by their
// operator. Creating a replicated stream right after a cluster starts can
// fail with "no suitable peers": it is retried until ctx ends.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = DefaultDuplicates
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultInMaxAge
	}
	for _, sc := range []jetstream.StreamConfig{
		{Name: wire.InStream, Subjects: []string{wire.InSubjects}, Storage: jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy, Duplicates: cfg.Duplicates, MaxAge: cfg.MaxAge, Replicas: cfg.Replicas},
		{Name: wire.DLQStream, Subjects: []string{wire.DLQSubjects}, Storage: jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy, Duplicates: cfg.Duplicates, MaxAge: 30 * 24 * time.Hour, Replicas: cfg.Replicas},
	} {
		if err := ensureStream(ctx, js, sc); err != nil {
			return err
		}
	}
	return nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	for {
		// Bound each attempt: without a meta leader a request stays unanswered.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.Stream(actx, sc.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(actx, sc)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				err = nil
			}
		}
		cancel()
		if err == nil {
			return nil
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("create JetStream stream %s: %w (last error: %v)", sc.Name, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Alerter raises alerts: slog.Error, the alerts metric, and a message on
// securelog.alert.<stream>.
type Alerter struct {
	Conn    *nats.Conn
	Logger  *slog.Logger
	Metrics *Metrics
	Source  string
}

// Alert raises one alert of kind about stream.
func (a Alerter) Alert(stream, kind string, segmentID uint64, msg string) {
	log := a.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Error("securelog alert", "stream", stream, "kind", kind, "segment_id", segmentID, "message", msg, "source", a.Source)
	if a.Metrics != nil {
		a.Metrics.Alerts.WithLabelValues(kind).Inc()
	}
	if a.Conn == nil || wire.CheckStreamToken(stream) != nil {
		return
	}
	b, _ := json.Marshal(wire.AlertMsg{Stream: stream, Kind: kind, SegmentID: segmentID, Message: msg,
		Source: a.Source, Time: time.Now().UTC().Format(time.RFC3339Nano)})
	if err := a.Conn.Publish(wire.SubjectFor(wire.KindAlert, stream), b); err != nil {
		log.Error("publish alert", "stream", stream, "err", err)
	}
}

// LogAlert is a securelog.Options.OnAlert that publishes the log's alerts:
// a halted stream (*securelog.StreamHaltedError) as an alert of its kind
// ("forged-entry", "segment-invalid", "rollback") and the
// securelog_pipeline_stream_halted gauge; anything else as "log-alert".
func (a Alerter) LogAlert(stream string, err error) {
	var h *securelog.StreamHaltedError
	if errors.As(err, &h) {
		if a.Metrics != nil {
			a.Metrics.Halted.WithLabelValues(stream, h.Kind).Set(1)
		}
		a.Alert(stream, h.Kind, 0, err.Error())
		return
	}
	a.Alert(stream, "log-alert", 0, err.Error())
}

// publishJSON publishes v as JSON on subject (core NATS), logging failures.
func publishJSON(nc *nats.Conn, log *slog.Logger, subject string, v any) {
	b, err := json.Marshal(v)
	if err == nil {
		err = nc.Publish(subject, b)
	}
	if err != nil {
		log.Warn("publish", "subject", subject, "err", err)
	}
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
