package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/securelog/securelog/pkg/wire"
)

// NATS is the NATS request/reply transport. The request payload is the same
// envelope the HTTP transport POSTs, sent to the subject (default
// "securelog.rpc"), with an optional "Authorization: Bearer <token>" header.
// The reply's "Securelog-Status" header carries the status the HTTP server
// would answer: 200 → the payload is the result JSON; anything else → a
// *StatusError "transport-nats: server returned <status>: <payload>".
//
// Read methods (those not in wire.MutatingMethods) are sent to the
// read-only subject wire.ReadSubject(subject), which servers answer with
// the reader role, so a NATS user allowed to publish only there can read
// the store and nothing else; a server that does not serve it (no
// responders) is asked on the subject itself from then on. Access control
// on NATS is the server's subject permissions; a token, if configured, is
// sent too (for servers that still check it), but any subscriber of the
// subject can read it.
type NATS struct {
	nc      *nats.Conn
	owned   bool // Close closes nc
	subject string
	read    string      // wire.ReadSubject(subject)
	noRead  atomic.Bool // the server does not serve read
	token   string
	cfg     Config
}

// NewNATS returns a NATS transport: it uses cfg.NATSConn if set, else dials
// cfg.NATSURL (empty fields filled as by New) with cfg.NATSOptions and, for
// cfg.TLS / cfg.CAFile, TLS.
func NewNATS(cfg Config) (*NATS, error) {
	cfg = cfg.withDefaults()
	if err := validSubject(cfg.Subject); err != nil {
		return nil, err
	}
	t := &NATS{nc: cfg.NATSConn, subject: cfg.Subject, read: wire.ReadSubject(cfg.Subject), token: cfg.Token, cfg: cfg}
	if t.nc == nil {
		opts := append([]nats.Option{nats.Name("securelog-rpc-client")}, cfg.NATSOptions...)
		tc, err := cfg.tlsConfig()
		if err != nil {
			return nil, err
		}
		if tc != nil {
			opts = append(opts, nats.Secure(tc))
		}
		nc, err := nats.Connect(cfg.NATSURL, opts...)
		if err != nil {
			return nil, fmt.Errorf("transport-nats: connect %s: %w", cfg.NATSURL, err)
		}
		t.nc, t.owned = nc, true
	}
	return t, nil
}

// validSubject rejects subjects NATS cannot publish to.
func validSubject(s string) error {
	if s == "" {
		return errors.New("transport-nats: empty subject")
	}
	for _, c := range s {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '*' || c == '>' {
			return fmt.Errorf("transport-nats: invalid subject %q (no whitespace or wildcards)", s)
		}
	}
	return nil
}

// Call sends one request and waits for the reply. Read methods are retried
// on no-responders, attempt timeouts and 502/503/504; mutating methods are
// sent once.
func (t *NATS) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	body, err := wire.EncodeEnvelope(method, params)
	if err != nil {
		return nil, fmt.Errorf("transport-nats: %w", err)
	}
	readOnly := !wire.MutatingMethods[method]
	return withRetry(ctx, t.cfg, method, func(actx context.Context) (json.RawMessage, error) {
		if readOnly && !t.noRead.Load() {
			res, err := t.attempt(ctx, actx, t.read, body)
			if !errors.Is(err, nats.ErrNoResponders) {
				return res, err
			}
			res, err = t.attempt(ctx, actx, t.subject, body)
			var se *StatusError
			if err == nil || errors.As(err, &se) {
				t.noRead.Store(true) // an older server answers on the subject only
			}
			return res, err
		}
		return t.attempt(ctx, actx, t.subject, body)
	})
}

func (t *NATS) attempt(parent, ctx context.Context, subject string, body []byte) (json.RawMessage, error) {
	msg := nats.NewMsg(subject)
	msg.Data = body
	if t.token != "" {
		msg.Header.Set(wire.AuthorizationHeader, "Bearer "+t.token)
	}
	reply, err := t.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		err = fmt.Errorf("transport-nats: %s: %w", subject, err)
		if parent.Err() == nil && (errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrConnectionReconnecting)) {
			return nil, &transientError{err}
		}
		return nil, err
	}
	st := reply.Header.Get(wire.NATSStatusHeader)
	code, err := strconv.Atoi(st)
	if err != nil {
		return nil, fmt.Errorf("transport-nats: reply without a valid %s header (got %q)", wire.NATSStatusHeader, st)
	}
	if code < 200 || code > 299 {
		return nil, &StatusError{Prefix: "transport-nats", Status: code, Body: string(reply.Data)}
	}
	return reply.Data, nil
}

// MessageLimit is the most bytes one request or reply may carry on this
// connection: the nats-server's max_payload less room for headers (see
// Limiter).
func (t *NATS) MessageLimit() int64 { return t.nc.MaxPayload() - messageHeadroom }

// messageHeadroom is kept free under max_payload for a message's headers.
const messageHeadroom = 1 << 10

// Close closes the connection if the transport dialled it.
func (t *NATS) Close() error {
	if t.owned {
		t.nc.Close()
	}
	return nil
}
