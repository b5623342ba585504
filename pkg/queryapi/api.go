// Package queryapi is the HTTP JSON query API of a securelog store (issue
// 12, docs/query.md): streams, filtered and paged entries, one entry with
// its segment and inclusion proof, segments, alerts, dead-lettered events,
// and a Server-Sent Events follow of newly committed entries. Every path is
// under /v1/; callers need a reader (or writer) token when the listener has
// tokens. Filter and cursor logic is package query; indexed evaluation is
// the store's (store.QueryEntries).
package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// Prefix is the path prefix of every endpoint.
const Prefix = "/v1/"

// Config configures a Handler.
type Config struct {
	// Store is read by every endpoint (required).
	Store store.Store
	// Log builds inclusion proofs and opens sealed payloads (a Log's
	// Reader, or securelog.NewReader with the KEK); nil builds proofs with
	// a Reader over Store and opens nothing.
	Log *securelog.Reader
	// CanOpen says the Log has the payload KEK: then callers whose role
	// may open (OpenRoles) get sealed payloads decrypted.
	CanOpen bool
	// Authenticate maps the Authorization header to a role (see
	// rpcserver.Server.Authenticate); nil means no authentication (every
	// caller is a writer).
	Authenticate func(header string) (rpcserver.Role, error)
	// ReadRoles may call the API (default reader and writer); OpenRoles
	// may see sealed payloads opened (default writer: the role that holds
	// full access, and every caller when authentication is off).
	ReadRoles, OpenRoles []rpcserver.Role
	// NATS, if set, feeds follow (securelog.committed.*), alerts
	// (securelog.alert.*) and the DLQ (JetStream SECURELOG_DLQ).
	NATS *nats.Conn
	// AlertBuffer is how many recent alerts /v1/alerts keeps (default 1000).
	AlertBuffer int
	// Heartbeat is the interval of follow's keep-alive comments (default 15s).
	Heartbeat time.Duration
	// Logger receives request failures; nil discards.
	Logger *slog.Logger
	// Now is the clock for relative since/until (default time.Now).
	Now func() time.Time
}

// Handler serves the query API. Close it when the listener stops so
// follow streams end.
type Handler struct {
	cfg    Config
	log    *securelog.Reader
	mux    *http.ServeMux
	alerts *alertRing
	sub    *nats.Subscription
	done   chan struct{}
	once   sync.Once
	logger *slog.Logger
}

// New returns the handler; with cfg.NATS it subscribes to alerts at once.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("query api: no store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.ReadRoles) == 0 {
		cfg.ReadRoles = []rpcserver.Role{rpcserver.RoleReader, rpcserver.RoleWriter}
	}
	if len(cfg.OpenRoles) == 0 {
		cfg.OpenRoles = []rpcserver.Role{rpcserver.RoleWriter}
	}
	if cfg.AlertBuffer <= 0 {
		cfg.AlertBuffer = 1000
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	h := &Handler{cfg: cfg, log: cfg.Log, done: make(chan struct{}), logger: cfg.Logger,
		alerts: newAlertRing(cfg.AlertBuffer, cfg.Now())}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	if h.log == nil {
		h.log = securelog.NewReader(cfg.Store, securelog.ReaderOptions{})
	}
	if cfg.NATS != nil {
		sub, err := cfg.NATS.Subscribe(wire.WildcardFor(wire.KindAlert), h.alerts.onMsg)
		if err != nil {
			return nil, fmt.Errorf("query api: subscribe to alerts: %w", err)
		}
		h.sub = sub
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /v1/streams", h.streams)
	m.HandleFunc("GET /v1/streams/{stream}/entries", h.entries)
	m.HandleFunc("GET /v1/streams/{stream}/segments", h.segments)
	m.HandleFunc("GET /v1/streams/{stream}/follow", h.follow)
	m.HandleFunc("GET /v1/entries/{seqno}", h.entry)
	m.HandleFunc("GET /v1/alerts", h.alertsList)
	m.HandleFunc("GET /v1/dlq", h.dlq)
	m.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Errorf("method %s not allowed: the query API is read-only (GET)", r.Method))
			return
		}
		h.fail(w, r, http.StatusNotFound, "not_found", fmt.Errorf("no endpoint %s (see docs/query.md)", r.URL.Path))
	})
	h.mux = m
	return h, nil
}

// Close ends follow streams and the alert subscription. It is idempotent.
func (h *Handler) Close() {
	h.once.Do(func() {
		close(h.done)
		if h.sub != nil {
			_ = h.sub.Unsubscribe()
		}
	})
}

// Handles reports whether the request is for the query API (path under
// /v1/), so a listener can route it here.
func Handles(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, Prefix) }

// Wrap returns a handler that sends query API requests to h and every
// other request to next.
func (h *Handler) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Handles(r) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type roleKey struct{}

// ServeHTTP authenticates the caller, checks its role and serves the
// request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	role := rpcserver.RoleWriter
	if h.cfg.Authenticate != nil {
		var err error
		role, err = h.cfg.Authenticate(r.Header.Get(wire.AuthorizationHeader))
		if err != nil {
			status := http.StatusUnauthorized
			var ae *rpcserver.AuthError
			if errors.As(err, &ae) && ae.Status != 0 {
				status = ae.Status
			}
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="securelog"`)
			}
			h.fail(w, r, status, "unauthorized", err)
			return
		}
	}
	if !hasRole(h.cfg.ReadRoles, role) {
		h.fail(w, r, http.StatusForbidden, "forbidden", fmt.Errorf("forbidden: role %q cannot read the query API", role))
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), roleKey{}, role)))
}

func hasRole(roles []rpcserver.Role, r rpcserver.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// mayOpen reports whether the request's caller gets sealed payloads opened.
func (h *Handler) mayOpen(r *http.Request) bool {
	role, _ := r.Context().Value(roleKey{}).(rpcserver.Role)
	return h.cfg.CanOpen && hasRole(h.cfg.OpenRoles, role)
}

// writeJSON answers 200 with v.
func (h *Handler) writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.logger.Error("query api: encode answer", "error", err)
		http.Error(w, `{"error":{"status":500,"code":"internal","message":"encode answer"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// fail answers an error as ErrorBody JSON.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, code string, err error) {
	if status >= 500 {
		h.logger.Warn("query api request failed", "path", r.URL.Path, "status", status, "error", err)
	}
	b, _ := json.Marshal(ErrorBody{Error: ErrorInfo{Status: status, Code: code, Message: err.Error()}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// badRequest answers 400 naming the bad input.
func (h *Handler) badRequest(w http.ResponseWriter, r *http.Request, err error) {
	h.fail(w, r, http.StatusBadRequest, "bad_request", err)
}

// internal answers 500.
func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	h.fail(w, r, http.StatusInternalServerError, "internal", err)
}

// stream resolves the {stream} path value: 404 if the stream is unknown.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request) (wire.StreamRow, bool) {
	name := r.PathValue("stream")
	row, ok, err := h.cfg.Store.StreamGet(r.Context(), name)
	if err != nil {
		h.internal(w, r, fmt.Errorf("get stream %q: %w", name, err))
		return wire.StreamRow{}, false
	}
	if !ok {
		h.fail(w, r, http.StatusNotFound, "stream_not_found", fmt.Errorf("stream %q not found", name))
		return wire.StreamRow{}, false
	}
	return row, true
}

// render renders a row, opening a sealed payload when the caller may.
func (h *Handler) render(r *http.Request, row wire.EntryRow) Entry {
	e := EntryOf(row)
	if e.Sealed && h.mayOpen(r) {
		pt, err := h.log.OpenPayload(r.Context(), row.Seqno)
		if err != nil {
			h.logger.Warn("query api: open sealed payload", "seqno", row.Seqno, "error", err)
			return e
		}
		e.Payload, e.Opened = query.RenderPayload(pt), true
	}
	return e
}

// entries serves GET /v1/streams/{stream}/entries.
func (h *Handler) entries(w http.ResponseWriter, r *http.Request) {
	st, ok := h.stream(w, r)
	if !ok {
		return
	}
	f, err := query.Parse(st.Name, r.URL.Query(), h.cfg.Now())
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	rows, more, err := store.QueryEntries(r.Context(), h.cfg.Store, f)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	p := Page{Stream: st.Name, Order: f.Order.String(), Limit: f.PageSize(), Entries: make([]Entry, len(rows))}
	for i, row := range rows {
		p.Entries[i] = h.render(r, row)
	}
	if more && len(rows) > 0 {
		next := f.Cursor(query.Key(rows[len(rows)-1]))
		p.Next = &next
	}
	h.writeJSON(w, p)
}

// entry serves GET /v1/entries/{seqno}[?stream=S]. Seqnos are numbered
// per store (per partition); with stream, an entry of another stream is
// not found.
func (h *Handler) entry(w http.ResponseWriter, r *http.Request) {
	s := r.PathValue("seqno")
	seqno, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seqno == 0 {
		h.badRequest(w, r, fmt.Errorf("bad seqno %q: want a whole number of 1 or more", s))
		return
	}
	ctx := r.Context()
	row, found, err := h.cfg.Store.Get(ctx, seqno)
	if err != nil {
		h.internal(w, r, fmt.Errorf("get seqno %d: %w", seqno, err))
		return
	}
	if !found {
		h.fail(w, r, http.StatusNotFound, "entry_not_found", fmt.Errorf("entry %d not found", seqno))
		return
	}
	if want := r.URL.Query().Get("stream"); want != "" && row.StreamID != want {
		h.fail(w, r, http.StatusNotFound, "entry_not_found", fmt.Errorf("entry %d not found in stream %q", seqno, want))
		return
	}
	d := EntryDetail{Entry: h.render(r, row)}
	segID, sealed, err := h.cfg.Store.SegmentForSeqno(ctx, seqno)
	if err != nil {
		h.internal(w, r, fmt.Errorf("segment of seqno %d: %w", seqno, err))
		return
	}
	if sealed {
		seg, ok, err := h.cfg.Store.SegmentGet(ctx, segID)
		if err != nil {
			h.internal(w, r, fmt.Errorf("get segment %d: %w", segID, err))
			return
		}
		if ok {
			s := SegmentOf(seg)
			d.Segment = &s
		}
		proof, err := h.log.BuildInclusionProof(ctx, seqno)
		if err != nil {
			h.internal(w, r, fmt.Errorf("inclusion proof of seqno %d: %w", seqno, err))
			return
		}
		d.Proof = &proof
	}
	h.writeJSON(w, d)
}

// segments serves GET /v1/streams/{stream}/segments?before=&limit=.
func (h *Handler) segments(w http.ResponseWriter, r *http.Request) {
	st, ok := h.stream(w, r)
	if !ok {
		return
	}
	limit, before, err := pageParams(r.URL.Query(), "before")
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	segs, err := h.cfg.Store.SegmentsList(r.Context(), st.Name)
	if err != nil {
		h.internal(w, r, fmt.Errorf("segments of %q: %w", st.Name, err))
		return
	}
	out := Segments{Stream: st.Name, Segments: []Segment{}}
	for i := len(segs) - 1; i >= 0; i-- {
		if before != 0 && segs[i].SegmentID >= before {
			continue
		}
		if len(out.Segments) == limit {
			next := out.Segments[limit-1].SegmentID
			out.Next = &next
			break
		}
		out.Segments = append(out.Segments, SegmentOf(segs[i]))
	}
	h.writeJSON(w, out)
}

// pageParams reads limit (default query.DefaultLimit, capped at
// query.MaxLimit) and the exclusive upper bound named bound ("" = none);
// parameters other than those and extra are refused.
func pageParams(v url.Values, bound string, extra ...string) (limit int, before uint64, err error) {
	known := append([]string{"limit"}, extra...)
	if bound != "" {
		known = append(known, bound)
	}
	for k, vs := range v {
		if !slices.Contains(known, k) {
			return 0, 0, &query.ParamError{Param: k, Value: v.Get(k), Reason: "unknown parameter (known: " + strings.Join(known, ", ") + ")"}
		}
		if len(vs) > 1 {
			return 0, 0, &query.ParamError{Param: k, Value: v.Get(k), Reason: "given more than once"}
		}
	}
	limit = query.DefaultLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, &query.ParamError{Param: "limit", Value: s, Reason: "want a whole number of 1 or more"}
		}
		limit = min(n, query.MaxLimit)
	}
	if s := v.Get(bound); bound != "" && s != "" {
		if before, err = strconv.ParseUint(s, 10, 64); err != nil || before == 0 {
			return 0, 0, &query.ParamError{Param: bound, Value: s, Reason: "want a whole number of 1 or more (the next value of a previous page)"}
		}
	}
	return limit, before, nil
}
