package witnessd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
)

// CrossCheck compares, for every stream the witness has accepted a
// checkpoint of, the witnessed head with what the log's store (Config.
// LogStore) holds now, and raises an alert for each stream that differs:
//
//   - the stream's newest segment in the log is older than the witnessed
//     one, or the stream has no segments → AlertRollback;
//   - the witnessed segment is missing while newer ones exist →
//     AlertMissingSegment;
//   - the segment recomputes (securelog.Reader.Checkpoint, SPEC §8.1) to a
//     different checkpoint hash, or cannot be recomputed because its data
//     is gone or malformed → AlertDivergence.
//
// An alert is raised once per distinct finding: the same finding in later
// rounds is counted in the metrics but not raised again until the stream
// checks clean. Failures to reach the log (storage/transport errors) are
// not alerts; they are logged, counted and returned joined. Each round
// uses a fresh securelog.Reader, so nothing is served from a cache.
func (s *Server) CrossCheck(ctx context.Context) ([]Alert, error) {
	if s.logStore == nil {
		return nil, errors.New("witnessd: cross-check needs the log's store (Config.LogStore)")
	}
	streams, err := s.st.WitnessStreamIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("witness log: stream ids: %w", err)
	}
	l := securelog.NewReader(s.logStore, securelog.ReaderOptions{})
	var alerts []Alert
	var errs []error
	for _, stream := range streams {
		row, ok, err := s.Head(ctx, stream)
		if err != nil || !ok {
			errs = append(errs, err)
			continue
		}
		a, err := checkStream(ctx, l, row)
		switch {
		case err != nil:
			s.checks.WithLabelValues("error").Inc()
			s.log.Warn("witness cross-check could not reach the log", "stream", stream, "error", err)
			errs = append(errs, fmt.Errorf("stream %q: %w", stream, err))
		case a != nil:
			s.checks.WithLabelValues("alert").Inc()
			alerts = append(alerts, *a)
			if s.remember(stream, a) {
				s.raise(*a)
			}
		default:
			s.checks.WithLabelValues("ok").Inc()
			s.remember(stream, nil)
		}
	}
	return alerts, errors.Join(errs...)
}

// remember records the stream's latest finding and reports whether it is
// new (differs from the previous round's).
func (s *Server) remember(stream string, a *Alert) bool {
	s.alertMu.Lock()
	defer s.alertMu.Unlock()
	if a == nil {
		delete(s.lastAlert, stream)
		return false
	}
	prev, seen := s.lastAlert[stream]
	s.lastAlert[stream] = *a
	return !seen || prev != *a
}

// checkStream compares one witnessed head with the log. It returns an
// alert, or an error if the log could not be read.
func checkStream(ctx context.Context, l *securelog.Reader, row wire.WitnessRow) (*Alert, error) {
	alert := func(kind, format string, args ...any) (*Alert, error) {
		return &Alert{Stream: row.StreamID, SegmentID: row.SegmentID, Kind: kind, Detail: fmt.Sprintf(format, args...)}, nil
	}
	segs, err := l.ListSegments(ctx, row.StreamID)
	if err != nil {
		return nil, err
	}
	var newest uint64
	for _, sg := range segs {
		newest = max(newest, sg.SegmentID)
	}
	if newest < row.SegmentID {
		return alert(AlertRollback, "log's newest segment of stream %q is %d, but the witness accepted segment %d (checkpoint %s)",
			row.StreamID, newest, row.SegmentID, row.CheckpointHashHex)
	}
	seg, _, h, err := l.Checkpoint(ctx, row.SegmentID)
	var notFound *wire.SegmentNotFoundError
	var storage *wire.StorageError
	switch {
	case errors.As(err, &notFound):
		return alert(AlertMissingSegment, "witnessed segment %d of stream %q (checkpoint %s) is missing from the log, whose newest segment is %d",
			row.SegmentID, row.StreamID, row.CheckpointHashHex, newest)
	case errors.As(err, &storage):
		return nil, err
	case err != nil:
		return alert(AlertDivergence, "witnessed segment %d of stream %q (checkpoint %s) cannot be recomputed from the log: %v",
			row.SegmentID, row.StreamID, row.CheckpointHashHex, err)
	case seg.StreamID != row.StreamID:
		return alert(AlertDivergence, "witnessed segment %d of stream %q belongs to stream %q in the log",
			row.SegmentID, row.StreamID, seg.StreamID)
	}
	if local := hex.EncodeToString(h); local != row.CheckpointHashHex {
		return alert(AlertDivergence, "witness divergence at segment %d of stream %q: witnessed=%s log=%s",
			row.SegmentID, row.StreamID, row.CheckpointHashHex, local)
	}
	return nil, nil
}

// RunCrossChecks runs CrossCheck now and then every CheckInterval until ctx
// ends. It does nothing without a LogStore.
func (s *Server) RunCrossChecks(ctx context.Context) {
	if s.logStore == nil {
		return
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		if _, err := s.CrossCheck(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("witness cross-check round incomplete", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
