package witnessd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// HTTP endpoints and the NATS subject of the witness.
const (
	// SubmitPath takes POST of a JSON witness.Submission and answers a JSON
	// witness.Receipt (status codes: see HTTPStatus).
	SubmitPath = "/v1/witness/submit"
	// HeadPath + <stream> answers GET with the stream's witnessed head, a
	// JSON witness log row (SPEC §3.9); 404 if the stream has none.
	HeadPath = "/v1/witness/head/"
	// DefaultSubject is the NATS request/reply subject of submissions:
	// request = the Submission JSON, reply = the Receipt JSON with header
	// wire.NATSStatusHeader carrying the HTTP status (HTTPStatus); on a
	// status ≥ 500 the payload is a plain-text error.
	DefaultSubject = "securelog.witness.submit"
	// MaxSubmissionBytes bounds a submission body (HTTP and NATS).
	MaxSubmissionBytes = 8 << 20
)

// HTTPStatus maps a receipt status to the HTTP status of its answer:
// 200 accepted; 409 equivocation, stale, not-extending (a conflict with
// the witnessed head); 403 bad-signature, unknown-signer; 400 invalid.
func HTTPStatus(status string) int {
	switch status {
	case StatusAccepted:
		return http.StatusOK
	case StatusEquivocation, StatusStale, StatusNotExtending:
		return http.StatusConflict
	case StatusBadSignature, StatusUnknownSigner:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// answer decodes one submission body and returns the status and body of
// the reply (a Receipt JSON, or plain text on an internal failure).
func (s *Server) answer(ctx context.Context, body []byte) (int, []byte) {
	var sub witness.Submission
	var rec witness.Receipt
	if err := json.Unmarshal(body, &sub); err != nil {
		reason := fmt.Sprintf("submission is not valid JSON: %v", err)
		rec = witness.Receipt{Reason: &reason, ReceivedAt: wire.FormatTime(s.now()), Status: StatusInvalid, WitnessIdentity: s.identity}
		s.submissions.WithLabelValues(StatusInvalid).Inc()
	} else {
		var err error
		rec, err = s.Submit(ctx, sub)
		if err != nil {
			s.log.Error("witness submission failed", "stream", sub.StreamID, "segment_id", sub.SegmentID, "error", err)
			return http.StatusInternalServerError, []byte(err.Error())
		}
	}
	out, err := json.Marshal(rec)
	if err != nil {
		return http.StatusInternalServerError, []byte("encode receipt: " + err.Error())
	}
	return HTTPStatus(rec.Status), out
}

// Handler returns the HTTP handler: POST SubmitPath, GET HeadPath<stream>,
// GET /healthz, GET /metrics (the server's private registry), and POST
// TlogAddCheckpointPath when Config.Tlog is set (C2SP tlog-witness).
// Submissions need no authentication: they are self-authenticating
// (signed by a key in the trust file).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+SubmitPath, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSubmissionBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, fmt.Sprintf("submission larger than %d bytes", MaxSubmissionBytes), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "read submission: "+err.Error(), http.StatusBadRequest)
			return
		}
		code, out := s.answer(r.Context(), body)
		if code < 500 {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.WriteHeader(code)
		_, _ = w.Write(out)
	})
	mux.HandleFunc("GET "+HeadPath+"{stream...}", func(w http.ResponseWriter, r *http.Request) {
		stream := r.PathValue("stream")
		row, ok, err := s.Head(r.Context(), stream)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if !ok {
			http.Error(w, fmt.Sprintf("stream %q has no witnessed checkpoint", stream), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(row)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.routeTlog(mux)
	return mux
}

// ServeNATS answers submissions on subject (DefaultSubject if empty) over
// nc until the subscription is drained or unsubscribed. Every witness needs
// its own subject when several share a NATS server (a request gets one
// answer). Requests are handled one at a time, in arrival order.
func (s *Server) ServeNATS(ctx context.Context, nc *nats.Conn, subject string) (*nats.Subscription, error) {
	if subject == "" {
		subject = DefaultSubject
	}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		code, out := http.StatusRequestEntityTooLarge, []byte(fmt.Sprintf("submission larger than %d bytes", MaxSubmissionBytes))
		if len(m.Data) <= MaxSubmissionBytes {
			code, out = s.answer(ctx, m.Data)
		}
		reply := nats.NewMsg(m.Reply)
		reply.Header.Set(wire.NATSStatusHeader, wire.FormatStatus(code))
		reply.Data = out
		if err := m.RespondMsg(reply); err != nil {
			s.log.Warn("witness: NATS reply failed", "subject", subject, "error", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("witnessd: subscribe %q: %w", subject, err)
	}
	return sub, nil
}
