package securelog

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Kinds of integrity failure that halt a stream (StreamHaltedError.Kind);
// the pipeline publishes them as the alert kind.
const (
	// HaltForgedEntry: a stored entry the log was about to chain onto does
	// not verify (its entry hash is not the hash of its contents, or it does
	// not link to the stream's previous entry).
	HaltForgedEntry = "forged-entry"
	// HaltInvalidSegment: a segment submitted for signing does not verify
	// against the stream's entries and previous checkpoint.
	HaltInvalidSegment = "segment-invalid"
	// HaltRollback: the store is behind the head file (or another anchor).
	HaltRollback = "rollback"
)

// StreamHaltedError is returned for a stream whose entries or segments
// failed an integrity check in this Log: appends (the whole batch) and
// signing of that stream are refused from then on, so nothing is ever
// chained onto or signed over data the log did not write or verify.
//
// The halt lasts for the life of the Log. An operator investigates with
// `securelog verify`, repairs the store (for example restores it from a
// backup and replays the events), and restarts the process; the restarted
// log checks again and halts again if the defect is still there.
type StreamHaltedError struct {
	Stream string
	Kind   string // HaltForgedEntry, HaltInvalidSegment, HaltRollback
	Err    error  // the failed check, usually *wire.ChainBrokenError
}

func (e *StreamHaltedError) Error() string {
	if e.Kind == HaltMissingHead {
		return fmt.Sprintf("stream %q halted (%s): %v", e.Stream, e.Kind, e.Err) // the error says what to do
	}
	return fmt.Sprintf("stream %q halted (%s): %v; repair the store and restart (see `securelog verify`)", e.Stream, e.Kind, e.Err)
}

// Unwrap returns the failed check.
func (e *StreamHaltedError) Unwrap() error { return e.Err }

// halt records that stream failed an integrity check and raises one alert
// (Options.OnAlert) the first time. It returns the error to report.
func (l *Log) halt(stream, kind string, err error) error {
	var already *StreamHaltedError
	if errors.As(err, &already) {
		return err
	}
	h := &StreamHaltedError{Stream: stream, Kind: kind, Err: err}
	l.haltMu.Lock()
	if prev, ok := l.halted[stream]; ok {
		l.haltMu.Unlock()
		return prev
	}
	if l.halted == nil {
		l.halted = map[string]*StreamHaltedError{}
	}
	l.halted[stream] = h
	l.haltMu.Unlock()
	l.alert(stream, h)
	return h
}

// Halt halts stream after an integrity check made outside the log found
// it unsafe to extend (for example the pipeline's ingester finding its
// store behind what it committed): appends of every batch and closes and
// signatures of the stream are refused from then on, one alert is raised,
// and Healthy reports it. It returns the *StreamHaltedError.
func (l *Log) Halt(stream, kind string, err error) error {
	return l.halt(stream, kind, err)
}

// haltedErr returns the stream's halt, or nil.
func (l *Log) haltedErr(stream string) error {
	l.haltMu.Lock()
	defer l.haltMu.Unlock()
	if h, ok := l.halted[stream]; ok {
		return h
	}
	return nil
}

// anyHalted returns one halt of any stream, or nil.
func (l *Log) anyHalted() error {
	l.haltMu.Lock()
	defer l.haltMu.Unlock()
	for _, h := range l.halted {
		return h
	}
	return nil
}

// Halted returns the halted streams and why, sorted by stream name.
func (l *Log) Halted() []*StreamHaltedError {
	l.haltMu.Lock()
	defer l.haltMu.Unlock()
	out := make([]*StreamHaltedError, 0, len(l.halted))
	for _, h := range l.halted {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// Healthy returns nil while no stream is halted, else an error naming every
// halted stream (for /healthz and readiness).
func (l *Log) Healthy() error {
	hs := l.Halted()
	if len(hs) == 0 {
		return nil
	}
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = fmt.Sprintf("%s (%s)", h.Stream, h.Kind)
	}
	return fmt.Errorf("integrity check failed, halted: %s", strings.Join(parts, ", "))
}
