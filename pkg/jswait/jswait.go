// Package jswait bounds JetStream API calls and retries them, with
// backoff, while a caller waits for the JetStream cluster: creating
// streams, consumers and key-value buckets, reading the partition map.
//
// A JetStream API request is answered by one server only (the meta leader
// or the stream's leader); the others ignore it. While a stream is being
// created or a leader elected, and while a cluster has no meta leader, a
// request can go unanswered for good, and nats.go's jetstream calls wait
// until their context's deadline (their 5 s default applies only to a
// context without one). Do gives each attempt its own deadline, retries,
// logs what it waits for and why, and records it in a Status that a
// health endpoint reports.
package jswait

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultCallTimeout = 5 * time.Second
	DefaultMinBackoff  = 200 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
	DefaultLogEvery    = 30 * time.Second
)

// JetStream API error codes Reason names.
const (
	codeNoPeers      = 10005 // no suitable peers for placement
	codeClusterNotUp = 10008 // JetStream system temporarily unavailable
)

// Config says how Do waits.
type Config struct {
	// CallTimeout bounds each attempt (DefaultCallTimeout).
	CallTimeout time.Duration
	// MinBackoff and MaxBackoff bound the pause between attempts, which
	// doubles from MinBackoff (DefaultMinBackoff, DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// Logger gets a warning when an attempt first fails, one every
	// LogEvery while it keeps failing (DefaultLogEvery) and an info line
	// when the wait ends (nil: nothing is logged).
	Logger   *slog.Logger
	LogEvery time.Duration
	// Status, if set, records the wait while it lasts.
	Status *Status
}

// permanent marks an error Do returns without retrying.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Do returns it at once (the call failed for a
// reason waiting does not cure, such as a conflicting configuration).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Do calls fn until it returns nil, a Permanent error or ctx ends. Each
// call gets a context bounded by cfg.CallTimeout. what names the wait in
// logs and in the Status ("create JetStream stream SECURELOG_IN").
func Do(ctx context.Context, cfg Config, what string, fn func(ctx context.Context) error) error {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = DefaultLogEvery
	}
	var (
		since    time.Time
		logged   time.Time
		attempts int
		backoff  = cfg.MinBackoff
	)
	defer func() {
		if attempts > 0 && cfg.Status != nil {
			cfg.Status.done(what)
		}
	}()
	for {
		cctx, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
		err := fn(cctx)
		timedOut := cctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			if attempts > 0 && cfg.Logger != nil {
				cfg.Logger.Info("JetStream ready: "+what, "waited", time.Since(since).Round(time.Millisecond), "attempts", attempts+1)
			}
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		}
		if timedOut && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		attempts++
		now := time.Now()
		if attempts == 1 {
			since = now
		}
		reason := Reason(err)
		if cfg.Status != nil {
			cfg.Status.set(what, WaitingError{What: what, Reason: reason, Since: since, Attempts: attempts, Err: err})
		}
		if cfg.Logger != nil && (attempts == 1 || now.Sub(logged) >= cfg.LogEvery) {
			logged = now
			cfg.Logger.Warn("waiting for JetStream: "+what, "reason", reason, "err", err,
				"attempts", attempts, "waiting", now.Sub(since).Round(time.Millisecond), "call_timeout", cfg.CallTimeout)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

// Reason says in words why a JetStream API call failed, for the logs and
// the health endpoint.
func Reason(err error) string {
	var api *jetstream.APIError
	switch {
	case errors.As(err, &api) && api.ErrorCode == codeClusterNotUp:
		return "the JetStream cluster has no meta leader (JetStream system temporarily unavailable): fewer than a majority of its servers are up or they are electing one"
	case errors.As(err, &api) && api.ErrorCode == codeNoPeers,
		err != nil && strings.Contains(err.Error(), "no suitable peers"):
		return "not enough JetStream servers for the replicas yet (no suitable peers for placement)"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "no answer within the call timeout: the JetStream cluster has no meta leader or stream leader yet, is electing one, or is overloaded"
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return "no JetStream answers: the server runs without JetStream, or it is not enabled for this account"
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrConnectionDraining):
		return "not connected to NATS"
	case err == nil:
		return ""
	}
	return err.Error()
}

// WaitingError describes one wait in progress.
type WaitingError struct {
	What     string    // what is waited for
	Reason   string    // Reason of the last error
	Since    time.Time // the first failed attempt
	Attempts int       // failed attempts so far
	Err      error     // the last error
}

func (e *WaitingError) Error() string {
	return fmt.Sprintf("waiting %s for JetStream: %s: %s (%d attempts; last error: %v)",
		time.Since(e.Since).Round(time.Second), e.What, e.Reason, e.Attempts, e.Err)
}

func (e *WaitingError) Unwrap() error { return e.Err }

// Status records the waits in progress; it is safe for concurrent use.
// The zero value is ready to use.
type Status struct {
	mu    sync.Mutex
	waits map[string]WaitingError
}

func (s *Status) set(what string, w WaitingError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waits == nil {
		s.waits = map[string]WaitingError{}
	}
	s.waits[what] = w
}

func (s *Status) done(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waits, what)
}

// Waiting returns the waits in progress, longest first (nil if none).
func (s *Status) Waiting() []*WaitingError {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*WaitingError
	for _, w := range s.waits {
		out = append(out, &w)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].What < out[j].What
	})
	return out
}

// Err is nil when nothing is waited for, else an error naming every wait
// (the first is a *WaitingError for errors.As).
func (s *Status) Err() error {
	ws := s.Waiting()
	if len(ws) == 0 {
		return nil
	}
	errs := make([]error, len(ws))
	for i, w := range ws {
		errs[i] = w
	}
	return errors.Join(errs...)
}
