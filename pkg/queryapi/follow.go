package queryapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/wire"
)

// noNATS is the message of a 503 for an endpoint that needs NATS on a
// listener without it: it says which listeners have it.
func noNATS(what string) string {
	return "this listener has no NATS connection, so " + what + ": `securelog up` and `securelog ingester` connect one; " +
		"start `securelog serve-rpc` with --nats URL (and --creds FILE for an authenticated server)"
}

// followWindow is how many seqnos one catch-up read spans.
const followWindow = 4096

// follow serves GET /v1/streams/{stream}/follow?type=&producer=&severity=&from=
// as Server-Sent Events: one "entry" event (id = seqno, data = Entry JSON)
// per newly committed entry of the stream that passes the filters, in
// seqno order. from (or the Last-Event-ID header a reconnecting
// EventSource sends) is the last seqno the caller has: entries after it
// are sent first; without it only entries committed from now on are sent.
// Receipts on securelog.committed.<stream> wake the reader; entries are
// read from the store, so a dropped receipt delays but loses nothing.
func (h *Handler) follow(w http.ResponseWriter, r *http.Request) {
	st, ok := h.stream(w, r)
	if !ok {
		return
	}
	v := r.URL.Query()
	fromText := v.Get("from")
	v.Del("from")
	for k := range v {
		if k != "type" && k != "producer" && k != "severity" {
			h.badRequest(w, r, &query.ParamError{Param: k, Value: v.Get(k), Reason: "unknown parameter for follow (known: type, producer, severity, from)"})
			return
		}
	}
	f, err := query.Parse(st.Name, v, h.cfg.Now())
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	if fromText == "" {
		fromText = r.Header.Get("Last-Event-ID")
	}
	ctx := r.Context()
	var last uint64
	if fromText != "" {
		if last, err = strconv.ParseUint(fromText, 10, 64); err != nil {
			h.badRequest(w, r, &query.ParamError{Param: "from", Value: fromText, Reason: "want the last seqno received (a whole number)"})
			return
		}
	} else if last, _, err = h.cfg.Store.GlobalHead(ctx); err != nil {
		h.internal(w, r, fmt.Errorf("global head: %w", err))
		return
	}
	if h.cfg.NATS == nil {
		h.fail(w, r, http.StatusServiceUnavailable, "unavailable", errors.New(noNATS("follow is not available")))
		return
	}
	wake := make(chan *nats.Msg, 64)
	sub, err := h.cfg.NATS.ChanSubscribe(wire.SubjectFor(wire.KindCommitted, st.Name), wake)
	if err != nil {
		h.fail(w, r, http.StatusBadGateway, "nats", fmt.Errorf("subscribe to commits of %q: %w", st.Name, err))
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	// A slow reader must not make the connection a slow consumer: wake-ups
	// are only hints, so dropping them is harmless.
	_ = sub.SetPendingLimits(64, 64<<10)

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(2*h.cfg.Heartbeat + 10*time.Second))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte(": following " + st.Name + "\n\n")) {
		return
	}
	tick := time.NewTicker(h.cfg.Heartbeat)
	defer tick.Stop()
	for {
		// Catch up from the store: everything after last, in windows.
		for {
			head, ok, err := h.cfg.Store.GlobalHead(ctx)
			if err != nil || !ok || head <= last {
				if err != nil {
					h.logger.Warn("query api follow: global head", "error", err)
				}
				break
			}
			hi := min(head, last+followWindow)
			rows, err := h.cfg.Store.Range(ctx, st.Name, last+1, hi)
			if err != nil {
				h.logger.Warn("query api follow: read entries", "stream", st.Name, "error", err)
				return
			}
			for _, row := range rows {
				if !f.MatchFields(row) {
					continue
				}
				b, err := json.Marshal(h.render(r, row))
				if err != nil {
					return
				}
				if !send(fmt.Appendf(nil, "id: %d\nevent: entry\ndata: %s\n\n", row.Seqno, b)) {
					return
				}
			}
			last = hi
		}
		select {
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-wake:
		case <-tick.C:
			if !send([]byte(": ping\n\n")) {
				return
			}
		}
	}
}
