package rpcserver

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// NewHandler returns the HTTP handler of a new server over st (see New).
func NewHandler(st store.Store, cfg Config, log *slog.Logger) (http.Handler, error) {
	s, err := New(st, cfg, log)
	if err != nil {
		return nil, err
	}
	return s.Handler(), nil
}

// Handler returns the HTTP handler: GET /healthz, GET /metrics, and the RPC
// endpoint for every other request (any method, any path).
func (s *Server) Handler() http.Handler {
	metrics := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			switch r.URL.Path {
			case "/healthz":
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				_, _ = io.WriteString(w, "ok")
				return
			case "/metrics":
				metrics.ServeHTTP(w, r)
				return
			}
		}
		s.serveHTTP(w, r)
	})
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get(wire.AuthorizationHeader)
	var body []byte
	var bodyErr error
	// Authentication comes before reading the body, so an unauthenticated
	// caller cannot make the server buffer up to the body limit.
	if _, deny := s.authenticate(auth); deny == nil {
		rd := io.Reader(r.Body)
		if s.maxBody > 0 {
			rd = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		body, bodyErr = io.ReadAll(rd)
		var mbe *http.MaxBytesError
		if errors.As(bodyErr, &mbe) {
			bodyErr = errBodyTooLarge
		}
	}
	rep := s.serve(r.Context(), "http", auth, body, bodyErr, RoleWriter, false)
	if rep.status == http.StatusOK {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if rep.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="securelog"`)
		}
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}
