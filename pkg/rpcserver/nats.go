package rpcserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// ServeNATS subscribes to subject (wire.DefaultNATSSubject if empty) in the
// queue group wire.NATSQueueGroup and answers each request with the same
// dispatcher as HTTP, up to DefaultMaxInFlight at once. Requests are served
// until StopNATS (or until the subscription is otherwise closed). ctx is the
// base context of every request.
func (s *Server) ServeNATS(ctx context.Context, nc *nats.Conn, subject string) (*nats.Subscription, error) {
	if subject == "" {
		subject = wire.DefaultNATSSubject
	}
	return nc.QueueSubscribe(subject, wire.NATSQueueGroup, func(m *nats.Msg) {
		if m.Reply == "" {
			return // a publish, not a request: nobody to answer
		}
		s.sem <- struct{}{} // back-pressure: the callback blocks while the pool is full
		s.wg.Add(1)
		go func() {
			defer func() { <-s.sem; s.wg.Done() }()
			s.answerNATS(ctx, m)
		}()
	})
}

func (s *Server) answerNATS(ctx context.Context, m *nats.Msg) {
	var bodyErr error
	if s.maxBody > 0 && int64(len(m.Data)) > s.maxBody {
		bodyErr = errBodyTooLarge
	}
	auth := m.Header.Get(wire.AuthorizationHeader)
	rep := s.serve(ctx, "nats", auth, m.Data, bodyErr)
	out := nats.NewMsg(m.Reply)
	out.Header.Set(wire.NATSStatusHeader, wire.FormatStatus(rep.status))
	out.Data = rep.body
	if err := m.RespondMsg(out); err != nil {
		s.log.Warn("rpc reply failed", "transport", "nats", "error", err, "bytes", len(rep.body))
		if rep.status == http.StatusOK {
			// Most likely the result exceeds the server's max_payload: tell
			// the caller instead of letting it time out (413: a caller can
			// ask for less, as the remote store's Range does).
			status := http.StatusInternalServerError
			if errors.Is(err, nats.ErrMaxPayload) {
				status = http.StatusRequestEntityTooLarge
			}
			fail := nats.NewMsg(m.Reply)
			fail.Header.Set(wire.NATSStatusHeader, wire.FormatStatus(status))
			fail.Data = []byte("reply failed: " + err.Error())
			_ = m.RespondMsg(fail)
		}
	}
}

// StopNATS drains sub (no new requests; queued ones are still handled),
// waits until the subscription is closed and every request being handled
// has been answered, or ctx ends.
func (s *Server) StopNATS(ctx context.Context, sub *nats.Subscription) error {
	if err := transport.Drain(ctx, sub); err != nil {
		return fmt.Errorf("rpcserver: %w", err)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rpcserver: waiting for NATS requests: %w", ctx.Err())
	}
}
