// Package rpcserver serves a store.Store over the JSON-RPC contract of
// SPEC §16 on HTTP and on NATS request/reply, with one dispatcher for both.
//
// Behaviour (SPEC §16.5 plus DECISIONS 16 and 17):
//   - HTTP ignores the request method and path, except GET /healthz (200
//     "ok") and GET /metrics (Prometheus text; private registry). Both are
//     served without authentication.
//   - Malformed envelope or unreadable body → 400 "malformed request
//     envelope: …"; body over the limit (default 8 MiB) → 413; unknown
//     method → 400 `unknown method "<m>"`; params that do not decode (wrong
//     arity or types, integers out of range or with a fraction) → 400
//     "decode params: …" (the reference answers both with 500; a caller's
//     mistake is not a server failure); store error → 500 with its text;
//     success → 200 with the result JSON.
//   - init is a handshake answered null; the store is opened once by the
//     caller and shared by all requests, which are served concurrently.
//   - Authentication is on when a tokens file is configured: a JSON array
//     [{"token":"<secret>","role":"reader"|"writer"}, …]. Requests carry
//     "Authorization: Bearer <token>" (an HTTP header, or a NATS message
//     header). No or unknown token → 401; a reader calling a mutating method
//     (wire.MutatingMethods) → 403. Without a tokens file every caller has
//     full access; Run logs a warning if it then listens on a non-loopback
//     address. On NATS, access is primarily enforced by the nats-server's
//     per-user subject permissions; tokens, if configured, apply as well.
//   - NATS replies carry the status in the "Securelog-Status" header and the
//     result (200) or the error text (otherwise) as payload (see pkg/wire).
package rpcserver

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/securelog/securelog/pkg/httpserver"
	"github.com/securelog/securelog/pkg/secretfile"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// DefaultMaxBody is the default request body limit (8 MiB).
const DefaultMaxBody int64 = 8 << 20

// DefaultMaxInFlight bounds the NATS requests handled at once.
const DefaultMaxInFlight = 64

// Config configures the server.
type Config struct {
	// Listen is the HTTP listen address (host:port); empty disables HTTP.
	Listen string
	// NATSURL is the NATS server to serve on; empty disables NATS.
	NATSURL string
	// Subject is the NATS request subject (wire.DefaultNATSSubject if empty).
	Subject string
	// TokensFile is the JSON tokens file; empty turns authentication off.
	// A tokens file other users can read is refused unless
	// AllowReadableTokens is set (then it is used with a warning).
	TokensFile string
	// AllowReadableTokens accepts a TokensFile other users can read.
	AllowReadableTokens bool
	// NATSByUser authorises NATS requests by the subject they arrive on,
	// that is by the requesting NATS user's publish permissions: requests
	// on Subject get the writer role, requests on wire.ReadSubject(Subject)
	// the reader role, and no bearer token is asked for on NATS (a token in
	// a NATS header is readable by every subscriber of the subject; issue 9
	// item 4). Only set it when the nats-server restricts who may publish
	// on Subject. HTTP keeps its tokens.
	NATSByUser bool
	// TLSCert and TLSKey are PEM files; both set turns on HTTPS.
	TLSCert, TLSKey string
	// MaxBody limits a request body in bytes: 0 → DefaultMaxBody, < 0 → unlimited.
	MaxBody int64
	// NATSOptions are extra options for connecting to NATSURL (credentials, TLS, …).
	NATSOptions []nats.Option
	// OnListen, if set, is called with the HTTP listener's address once it listens.
	OnListen func(addr string)
	// Mount, if set, wraps the HTTP handler so other APIs share the
	// listener (serve-rpc mounts the query API this way); it gets the
	// server for its Authenticate.
	Mount func(s *Server, h http.Handler) http.Handler
	// HTTP holds the HTTP listener's limits (timeouts, header cap,
	// connection cap); zero fields take the httpserver defaults.
	HTTP httpserver.Config
}

// Role is the access level of a token.
type Role string

// The two roles of DECISIONS 17.
const (
	RoleReader Role = "reader"
	RoleWriter Role = "writer"
)

// TokenEntry is one element of the tokens file.
type TokenEntry struct {
	Token string `json:"token"`
	Role  Role   `json:"role"`
}

// LoadTokens reads a tokens file: a JSON array of {"token","role"} with
// role "reader" or "writer". Tokens must be non-empty and distinct; an
// empty list is an error (it would lock everybody out). A file other users
// can read is refused (see LoadTokensWith).
func LoadTokens(path string) ([]TokenEntry, error) {
	return LoadTokensWith(path, secretfile.Policy{})
}

// LoadTokensWith is LoadTokens with the policy for tokens files other
// users can read.
func LoadTokensWith(path string, p secretfile.Policy) ([]TokenEntry, error) {
	b, err := secretfile.Read("tokens file", path, p)
	if err != nil {
		return nil, err
	}
	var entries []TokenEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("tokens file %s: want a JSON array of {\"token\",\"role\"}: %w", path, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("tokens file %s holds no tokens", path)
	}
	seen := map[string]bool{}
	for i, e := range entries {
		if e.Token == "" {
			return nil, fmt.Errorf("tokens file %s: entry %d has an empty token", path, i)
		}
		if e.Role != RoleReader && e.Role != RoleWriter {
			return nil, fmt.Errorf("tokens file %s: entry %d has role %q, want \"reader\" or \"writer\"", path, i, e.Role)
		}
		if seen[e.Token] {
			return nil, fmt.Errorf("tokens file %s: entry %d repeats a token", path, i)
		}
		seen[e.Token] = true
	}
	return entries, nil
}

// Server answers RPC requests against one store.
type Server struct {
	st      store.Store
	log     *slog.Logger
	maxBody int64
	tokens  map[[32]byte]Role // by SHA-256 of the token; nil = auth off
	byUser  bool              // Config.NATSByUser
	reg     *prometheus.Registry
	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
	sem     chan struct{}
	wg      sync.WaitGroup
}

// New returns a server over st. It loads cfg.TokensFile if set. A nil log
// discards logs.
func New(st store.Store, cfg Config, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{st: st, log: log, maxBody: cfg.MaxBody, sem: make(chan struct{}, DefaultMaxInFlight), byUser: cfg.NATSByUser}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBody
	}
	if cfg.TokensFile != "" {
		entries, err := LoadTokensWith(cfg.TokensFile, secretfile.Policy{AllowReadable: cfg.AllowReadableTokens, Logger: log})
		if err != nil {
			return nil, err
		}
		s.SetTokens(entries)
	}
	s.reg = prometheus.NewRegistry()
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "securelog_rpc_requests_total",
		Help: "RPC requests by transport, method and status code.",
	}, []string{"transport", "method", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "securelog_rpc_request_duration_seconds",
		Help:    "RPC request latency by transport and method.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"transport", "method"})
	s.reg.MustRegister(s.reqs, s.latency)
	return s, nil
}

// SetTokens replaces the accepted tokens; an empty list turns auth off.
// Call it before serving.
func (s *Server) SetTokens(entries []TokenEntry) {
	if len(entries) == 0 {
		s.tokens = nil
		return
	}
	s.tokens = make(map[[32]byte]Role, len(entries))
	for _, e := range entries {
		s.tokens[sha256.Sum256([]byte(e.Token))] = e.Role
	}
}

// AuthEnabled reports whether tokens are required.
func (s *Server) AuthEnabled() bool { return s.tokens != nil }

// Registry returns the server's private metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// reply is the outcome of one request: an HTTP-style status and the body
// (result JSON for 200, plain-text error otherwise).
type reply struct {
	status int
	body   []byte
	method string // the method label (for logs)
}

func errorReply(status int, format string, args ...any) reply {
	return reply{status: status, body: fmt.Appendf(nil, format, args...)}
}

// authenticate maps an Authorization header value to a role. With auth off
// every caller is a writer.
func (s *Server) authenticate(header string) (Role, *reply) {
	if s.tokens == nil {
		return RoleWriter, nil
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		r := errorReply(http.StatusUnauthorized, "unauthorized: missing bearer token")
		return "", &r
	}
	// Looking up the token's hash leaks no timing about the token itself.
	role, found := s.tokens[sha256.Sum256([]byte(strings.TrimSpace(token)))]
	if !found {
		r := errorReply(http.StatusUnauthorized, "unauthorized: unknown token")
		return "", &r
	}
	return role, nil
}

// AuthError is a refused credential: Status is 401 (no or unknown token).
type AuthError struct {
	Status int
	Msg    string
}

// Error returns the message.
func (e *AuthError) Error() string { return e.Msg }

// Authenticate maps an Authorization header value to the caller's role, as
// the RPC endpoint does; other HTTP APIs on the same listener (the query
// API) use it so one tokens file governs them all. With auth off every
// caller is a writer. A refusal is an *AuthError.
func (s *Server) Authenticate(header string) (Role, error) {
	role, deny := s.authenticate(header)
	if deny != nil {
		return "", &AuthError{Status: deny.status, Msg: string(deny.body)}
	}
	return role, nil
}

// process handles one authenticated request body; it returns the reply and
// the method label for metrics.
func (s *Server) process(ctx context.Context, role Role, body []byte) (reply, string) {
	env, err := wire.DecodeEnvelope(body)
	if err != nil {
		return errorReply(http.StatusBadRequest, "%s", err), "invalid"
	}
	label := env.Method
	if !isMethod(label) {
		label = "unknown"
	}
	if role != RoleWriter && wire.MutatingMethods[env.Method] {
		return errorReply(http.StatusForbidden, "forbidden: method %q needs the writer role", env.Method), label
	}
	res, err := Dispatch(ctx, s.st, env.Method, env.Params)
	if err != nil {
		return reply{status: dispatchStatus(err), body: []byte(err.Error())}, label
	}
	return reply{status: http.StatusOK, body: res}, label
}

// serve runs authentication, the size check and process for one request.
// bodyErr is the error reading the body, errBodyTooLarge for the limit.
// maxRole caps the caller's role (the read-only NATS subject); byUser
// skips the token check (the subject's publish permission decided).
func (s *Server) serve(ctx context.Context, transport, authHeader string, body []byte, bodyErr error, maxRole Role, byUser bool) reply {
	start := time.Now()
	label := "invalid"
	r := func() reply {
		role := RoleWriter
		if !byUser {
			var deny *reply
			if role, deny = s.authenticate(authHeader); deny != nil {
				return *deny
			}
		}
		if maxRole == RoleReader {
			role = RoleReader
		}
		if errors.Is(bodyErr, errBodyTooLarge) {
			return errorReply(http.StatusRequestEntityTooLarge, "request body too large: limit is %d bytes", s.maxBody)
		}
		if bodyErr != nil {
			return errorReply(http.StatusBadRequest, "malformed request envelope: read body: %s", bodyErr)
		}
		var rep reply
		rep, label = s.process(ctx, role, body)
		return rep
	}()
	r.method = label
	s.reqs.WithLabelValues(transport, label, strconv.Itoa(r.status)).Inc()
	s.latency.WithLabelValues(transport, label).Observe(time.Since(start).Seconds())
	lvl := slog.LevelDebug
	switch {
	case r.status >= 500:
		lvl = slog.LevelWarn
	case r.status >= 400:
		lvl = slog.LevelInfo
	}
	if s.log.Enabled(ctx, lvl) {
		attrs := []any{"transport", transport, "method", label, "status", r.status, "duration", time.Since(start)}
		if r.status != http.StatusOK {
			attrs = append(attrs, "error", string(r.body))
		}
		s.log.Log(ctx, lvl, "rpc request", attrs...)
	}
	return r
}

// dispatchStatus maps a Dispatch error to its status: the caller's mistakes
// (unknown method, params that do not decode) are 400; everything else is
// a store failure, 500 as in the reference (SPEC §16.5).
func dispatchStatus(err error) int {
	var um *wire.UnknownMethodError
	var pe *wire.ParamsError
	if errors.As(err, &um) || errors.As(err, &pe) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

func isMethod(m string) bool {
	for _, k := range wire.Methods {
		if k == m {
			return true
		}
	}
	return false
}

// errBodyTooLarge marks a request body over the limit.
var errBodyTooLarge = errors.New("request body too large")
