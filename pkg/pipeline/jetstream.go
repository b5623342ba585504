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

	"github.com/securelog/securelog/pkg/jswait"
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
	// Partition whose streams are created: SECURELOG_IN, SECURELOG_APPENDED
	// and SECURELOG_SEALED for the default partition, the same names with
	// the suffix _<partition> (subjects securelog.p.<partition>.…) otherwise.
	Partition wire.Partition
	// Wait bounds each JetStream request and says how the creation waits
	// for the cluster (logger, status for /healthz); see jswait.
	Wait jswait.Config
}

// EnsureStreams creates SECURELOG_IN (subjects securelog.in.>, file storage,
// de-duplication by Nats-Msg-Id), SECURELOG_DLQ (securelog.dlq.>) and the
// announcement streams SECURELOG_APPENDED (securelog.appended.>) and
// SECURELOG_SEALED (securelog.sealed.>) if they do not exist. The
// announcement streams are work queues: a message stays until the worker's
// durable consumer (the sealer's, the signer's) acknowledges it, also while
// that worker is down, at most MaxAge and announcementMaxBytes (oldest
// dropped; the workers' store scans cover what was dropped). Existing
// streams are left as configured by their operator. Each request is
// bounded and retried until ctx ends (jswait.Do, logged): without a meta
// leader a request goes unanswered, and creating a replicated stream
// right after a cluster starts can fail with "no suitable peers".
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
		{Name: cfg.Partition.InStream(), Subjects: []string{cfg.Partition.InSubjects()}, Storage: jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy, Duplicates: cfg.Duplicates, MaxAge: cfg.MaxAge, Replicas: cfg.Replicas},
		{Name: wire.DLQStream, Subjects: []string{wire.DLQSubjects}, Storage: jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy, Duplicates: cfg.Duplicates, MaxAge: 30 * 24 * time.Hour, Replicas: cfg.Replicas},
		{Name: cfg.Partition.AppendedStream(), Subjects: []string{cfg.Partition.Wildcard(wire.KindAppended)}, Storage: jetstream.FileStorage,
			Retention: jetstream.WorkQueuePolicy, Duplicates: cfg.Duplicates, MaxAge: cfg.MaxAge,
			MaxBytes: announcementMaxBytes, Discard: jetstream.DiscardOld, Replicas: cfg.Replicas},
		{Name: cfg.Partition.SealedStream(), Subjects: []string{cfg.Partition.Wildcard(wire.KindSealed)}, Storage: jetstream.FileStorage,
			Retention: jetstream.WorkQueuePolicy, Duplicates: cfg.Duplicates, MaxAge: cfg.MaxAge,
			MaxBytes: announcementMaxBytes, Discard: jetstream.DiscardOld, Replicas: cfg.Replicas},
	} {
		if err := ensureStream(ctx, js, cfg.Wait, sc); err != nil {
			return err
		}
	}
	return nil
}

// announcementMaxBytes bounds each announcement stream, for a deployment
// that runs no sealer or signer.
const announcementMaxBytes = 256 << 20

func ensureStream(ctx context.Context, js jetstream.JetStream, wait jswait.Config, sc jetstream.StreamConfig) error {
	return jswait.Do(ctx, wait, "create JetStream stream "+sc.Name, func(ctx context.Context) error {
		_, err := js.Stream(ctx, sc.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, sc)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				err = nil
			}
		}
		return err
	})
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

// announce publishes v as JSON on subject through JetStream (an
// announcement stream keeps it for the durable consumers), de-duplicated by
// msgID. It does not wait for the acknowledgement: a failure is logged by
// the JetStream context's error handler, and the workers' periodic store
// scans cover a lost announcement.
func announce(js jetstream.JetStream, log *slog.Logger, subject, msgID string, v any) {
	b, err := json.Marshal(v)
	if err == nil {
		m := nats.NewMsg(subject)
		m.Data = b
		m.Header.Set(wire.MsgIDHeader, msgID)
		_, err = js.PublishMsgAsync(m)
	}
	if err != nil {
		log.Warn("publish announcement", "subject", subject, "err", err)
	}
}

// durableConsumer returns the durable consumer name on the JetStream stream
// stream, created or updated to cc, and whether it did not exist before
// (a worker then has no position to resume from and scans the store). It
// waits, logging once, until the stream exists: the ingester creates it.
func durableConsumer(ctx context.Context, js jetstream.JetStream, log *slog.Logger, stream string, cc jetstream.ConsumerConfig) (jetstream.Consumer, bool, error) {
	waiting := false
	for {
		actx, cancel := context.WithTimeout(ctx, jswait.DefaultCallTimeout)
		_, err := js.Stream(actx, stream)
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			log.Warn("waiting for JetStream: stream info", "stream", stream, "reason", jswait.Reason(err), "err", err)
		} else if !waiting {
			log.Info("waiting for the ingester to create the JetStream stream", "stream", stream)
			waiting = true
		}
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return nil, false, ctx.Err()
		}
	}
	var (
		cons    jetstream.Consumer
		created bool
	)
	err := jswait.Do(ctx, jswait.Config{Logger: log}, fmt.Sprintf("create JetStream consumer %s on %s", cc.Durable, stream), func(ctx context.Context) error {
		_, err := js.Consumer(ctx, stream, cc.Durable)
		created = errors.Is(err, jetstream.ErrConsumerNotFound)
		if err != nil && !created {
			return fmt.Errorf("consumer %s on %s: %w", cc.Durable, stream, err)
		}
		cons, err = js.CreateOrUpdateConsumer(ctx, stream, cc)
		if err != nil {
			return fmt.Errorf("create consumer %s on %s: %w", cc.Durable, stream, err)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return cons, created, nil
}

// consumeDurable consumes the JetStream stream through the durable consumer
// cc (see durableConsumer) until ctx ends or stop is called: the messages
// arrive on msgs, one goroutine's worth of buffering. created reports that
// the consumer is new (the worker has no position to resume from).
func consumeDurable(ctx context.Context, nc *nats.Conn, log *slog.Logger, stream string, cc jetstream.ConsumerConfig) (msgs <-chan jetstream.Msg, created bool, stop func(), err error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, false, nil, err
	}
	cons, created, err := durableConsumer(ctx, js, log, stream, cc)
	if err != nil {
		return nil, false, nil, err
	}
	ch := make(chan jetstream.Msg, 4096)
	c, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case ch <- m:
		case <-ctx.Done(): // not acknowledged: redelivered later
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		log.Debug("JetStream consumer", "stream", stream, "durable", cc.Durable, "err", err)
	}))
	if err != nil {
		return nil, false, nil, fmt.Errorf("consume %s: %w", stream, err)
	}
	return ch, created, c.Stop, nil
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
