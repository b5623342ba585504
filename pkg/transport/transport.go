// Package transport carries the remote store's JSON-RPC calls (SPEC §16.1):
// one call is (method, params JSON) → result JSON or an error. Two providers
// exist: "http" (SPEC §16.4: POST {"method","params"} to Config.URL, which the
// CLI takes from --rpc-url / SECURELOG_RPC_URL / SECURE_LOG_RPC_URL) and
// "nats" (request/reply on a subject, framing in pkg/wire). The package takes
// its configuration as a value and never reads the environment.
//
// Both providers retry only read methods (those not in wire.MutatingMethods)
// and only on failures that cannot be an answer from the store: network
// errors, timeouts of an attempt, no responders, HTTP 502/503/504. A 500 is
// the RPC error channel (the store's own error text) and is never retried; a
// mutating call is never retried, because it may have been applied.
package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/securelog/securelog/pkg/wire"
)

// Transport is one RPC channel to a store server.
type Transport interface {
	// Call sends one request and returns the result JSON. A non-success
	// answer of the server is an error carrying its text.
	Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
}

// Defaults of Config.
const (
	// DefaultKind is the provider New uses for an empty kind.
	DefaultKind = "http"
	// DefaultTimeout bounds one attempt of a call.
	DefaultTimeout = 30 * time.Second
	// DefaultRetries is the number of extra attempts of a read call.
	DefaultRetries = 3
	// DefaultBackoff is the wait before the first retry; it doubles per retry.
	DefaultBackoff = 100 * time.Millisecond
	// MaxBackoff caps the wait between retries.
	MaxBackoff = 2 * time.Second
)

// Config configures a transport. Zero fields take the default named in
// their comment.
type Config struct {
	// URL is the HTTP endpoint, scheme://authority[/path] (required for http).
	URL string
	// NATSURL is the NATS server URL (nats.DefaultURL).
	NATSURL string
	// Subject is the NATS request subject (wire.DefaultNATSSubject).
	Subject string
	// Token is sent as "Authorization: Bearer <token>" ("" = none).
	Token string
	// CAFile is a PEM bundle trusted for https; ignored if TLS is set.
	CAFile string
	// TLS is the client TLS configuration for https (and tls:// NATS URLs).
	TLS *tls.Config
	// Timeout bounds one attempt (DefaultTimeout).
	Timeout time.Duration
	// Retries is the number of extra attempts of read calls: 0 → DefaultRetries, < 0 → none.
	Retries int
	// Backoff is the first retry's wait (DefaultBackoff), doubling up to MaxBackoff.
	Backoff time.Duration
	// NATSConn, if set, is used instead of dialling NATSURL; Close leaves it open.
	NATSConn *nats.Conn
	// NATSOptions are extra options for dialling NATSURL (credentials, name, …).
	NATSOptions []nats.Option
}

// New returns the transport of the given kind: "http" or "nats"; an empty
// kind is DefaultKind.
func New(kind string, cfg Config) (Transport, error) {
	if kind == "" {
		kind = DefaultKind
	}
	switch kind {
	case "http":
		return NewHTTP(cfg)
	case "nats":
		return NewNATS(cfg)
	default:
		return nil, fmt.Errorf("transport: unknown kind %q (want \"http\" or \"nats\")", kind)
	}
}

// withDefaults fills empty fields with the defaults.
func (c Config) withDefaults() Config {
	if c.NATSURL == "" {
		c.NATSURL = nats.DefaultURL
	}
	if c.Subject == "" {
		c.Subject = wire.DefaultNATSSubject
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries // negative stays: no retries
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	return c
}

// tlsConfig returns cfg.TLS, or a config trusting CAFile, or nil.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.TLS != nil || c.CAFile == "" {
		return c.TLS, nil
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("transport: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("transport: CA file %s holds no PEM certificate", c.CAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Limiter is implemented by transports whose messages have a size limit
// (NATS: the server's max_payload). Callers that can split a request or
// ask for a reply in pages (the remote store's paged reads) keep each
// message under MessageLimit bytes.
type Limiter interface {
	MessageLimit() int64
}

// StatusError is a non-success answer of the server: its status and body
// text. Error() is "<prefix>: server returned <status>: <body>".
type StatusError struct {
	Prefix string // "transport-http" or "transport-nats"
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return e.Prefix + ": server returned " + strconv.Itoa(e.Status) + ": " + e.Body
}

// retryable is implemented by errors that allow another attempt of a read.
type retryable interface{ Retryable() bool }

// Retryable reports whether the status is a gateway/availability failure.
func (e *StatusError) Retryable() bool {
	return e.Status == 502 || e.Status == 503 || e.Status == 504
}

// transientError marks a failure before any answer (network, attempt timeout).
type transientError struct{ err error }

func (e *transientError) Error() string   { return e.err.Error() }
func (e *transientError) Unwrap() error   { return e.err }
func (e *transientError) Retryable() bool { return true }

// withRetry runs attempt until it succeeds, fails permanently, the retries
// are spent or ctx ends. Mutating methods get exactly one attempt.
func withRetry(ctx context.Context, cfg Config, method string,
	attempt func(context.Context) (json.RawMessage, error)) (json.RawMessage, error) {
	tries := 1
	if !wire.MutatingMethods[method] {
		tries += max(cfg.Retries, 0)
	}
	wait := cfg.Backoff
	var err error
	for i := 0; i < tries; i++ {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("%w (after: %w)", ctx.Err(), err)
			case <-t.C:
			}
			wait = min(2*wait, MaxBackoff)
		}
		var res json.RawMessage
		actx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		res, err = attempt(actx)
		cancel()
		if err == nil {
			return res, nil
		}
		var r retryable
		if !errors.As(err, &r) || !r.Retryable() || ctx.Err() != nil {
			break
		}
	}
	var te *transientError
	if errors.As(err, &te) {
		return nil, te.err
	}
	return nil, err
}
