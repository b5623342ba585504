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

// NATSServing is the store RPC served on NATS: the request subject and its
// read-only subject (wire.ReadSubject). Stop it with StopNATS.
type NATSServing struct {
	// Subject is the request subject (mutating and read methods).
	Subject string
	// ReadSubject answers read methods only (the reader role).
	ReadSubject string
	subs        []*nats.Subscription
}

// ServeNATS subscribes to subject (wire.DefaultNATSSubject if empty) and to
// its read-only subject wire.ReadSubject(subject), both in the queue group
// wire.NATSQueueGroup, and answers each request with the same dispatcher as
// HTTP, up to DefaultMaxInFlight at once. On the read-only subject callers
// have at most the reader role. With Config.NATSByUser the subject alone
// decides the role (the nats-server's permissions say who may publish
// where); otherwise the bearer token of the request's Authorization header
// does, as on HTTP. Requests are served until StopNATS (or until the
// subscriptions are otherwise closed). ctx is the base context of every
// request.
func (s *Server) ServeNATS(ctx context.Context, nc *nats.Conn, subject string) (*NATSServing, error) {
	if subject == "" {
		subject = wire.DefaultNATSSubject
	}
	sv := &NATSServing{Subject: subject, ReadSubject: wire.ReadSubject(subject)}
	// Paged reads fill a reply up to what the nats-server accepts.
	ctx = withReplyLimit(ctx, nc.MaxPayload()-replyHeadroom)
	for _, sub := range []struct {
		subject string
		role    Role
	}{{sv.Subject, RoleWriter}, {sv.ReadSubject, RoleReader}} {
		ns, err := nc.QueueSubscribe(sub.subject, wire.NATSQueueGroup, func(m *nats.Msg) {
			if m.Reply == "" {
				return // a publish, not a request: nobody to answer
			}
			s.sem <- struct{}{} // back-pressure: the callback blocks while the pool is full
			s.wg.Add(1)
			go func() {
				defer func() { <-s.sem; s.wg.Done() }()
				s.answerNATS(ctx, m, sub.role)
			}()
		})
		if err != nil {
			for _, o := range sv.subs {
				_ = o.Unsubscribe()
			}
			return nil, fmt.Errorf("rpcserver: subscribe %s: %w", sub.subject, err)
		}
		sv.subs = append(sv.subs, ns)
	}
	return sv, nil
}

func (s *Server) answerNATS(ctx context.Context, m *nats.Msg, maxRole Role) {
	var bodyErr error
	if s.maxBody > 0 && int64(len(m.Data)) > s.maxBody {
		bodyErr = errBodyTooLarge
	}
	auth := m.Header.Get(wire.AuthorizationHeader)
	rep := s.serve(ctx, "nats", auth, m.Data, bodyErr, maxRole, s.byUser)
	out := nats.NewMsg(m.Reply)
	out.Header.Set(wire.NATSStatusHeader, wire.FormatStatus(rep.status))
	out.Data = rep.body
	if err := m.RespondMsg(out); err != nil {
		s.log.Warn("rpc reply failed", "transport", "nats", "method", rep.method, "error", err, "bytes", len(rep.body))
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

// StopNATS drains the subscriptions of sv (no new requests; queued ones are
// still handled), waits until they are closed and every request being
// handled has been answered, or ctx ends.
func (s *Server) StopNATS(ctx context.Context, sv *NATSServing) error {
	if err := transport.Drain(ctx, sv.subs...); err != nil {
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

// Unsubscribe stops serving at once (requests being handled still finish
// in the background); StopNATS is the graceful stop.
func (sv *NATSServing) Unsubscribe() error {
	var errs []error
	for _, sub := range sv.subs {
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, fmt.Errorf("rpcserver: unsubscribe %s: %w", sub.Subject, err))
		}
	}
	return errors.Join(errs...)
}
