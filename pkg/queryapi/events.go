package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/wire"
)

// alertRing keeps the most recent alerts in memory.
type alertRing struct {
	mu    sync.Mutex
	since time.Time
	buf   []wire.AlertMsg
	next  int
	full  bool
}

func newAlertRing(n int, since time.Time) *alertRing {
	return &alertRing{since: since, buf: make([]wire.AlertMsg, n)}
}

// onMsg records an alert message; one that does not decode is kept with
// its raw text as the message.
func (a *alertRing) onMsg(m *nats.Msg) {
	var msg wire.AlertMsg
	if err := json.Unmarshal(m.Data, &msg); err != nil {
		stream, _ := wire.StreamOf(wire.KindAlert, m.Subject)
		msg = wire.AlertMsg{Stream: stream, Kind: "undecodable", Message: string(m.Data)}
	}
	a.add(msg)
}

func (a *alertRing) add(msg wire.AlertMsg) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf[a.next] = msg
	a.next = (a.next + 1) % len(a.buf)
	if a.next == 0 {
		a.full = true
	}
}

// newest returns up to limit alerts, newest first, optionally of one stream.
func (a *alertRing) newest(limit int, stream string) []wire.AlertMsg {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.next
	if a.full {
		n = len(a.buf)
	}
	out := []wire.AlertMsg{}
	for i := 1; i <= n && len(out) < limit; i++ {
		m := a.buf[(a.next-i+len(a.buf))%len(a.buf)]
		if stream == "" || m.Stream == stream {
			out = append(out, m)
		}
	}
	return out
}

// alertsList serves GET /v1/alerts?stream=&limit=.
func (h *Handler) alertsList(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	limit, _, err := pageParams(v, "", "stream")
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	h.writeJSON(w, Alerts{Since: wire.FormatTime(h.alerts.since), Alerts: h.alerts.newest(limit, v.Get("stream"))})
}

// dlq serves GET /v1/dlq?before=&limit=: the JetStream dead-letter
// stream, newest first.
func (h *Handler) dlq(w http.ResponseWriter, r *http.Request) {
	limit, before, err := pageParams(r.URL.Query(), "before")
	if err != nil {
		h.badRequest(w, r, err)
		return
	}
	if h.cfg.NATS == nil {
		h.fail(w, r, http.StatusServiceUnavailable, "unavailable", errors.New(noNATS("the DLQ is not reachable")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	out, err := readDLQ(ctx, h.cfg.NATS, before, limit)
	if err != nil {
		h.fail(w, r, http.StatusBadGateway, "nats", err)
		return
	}
	h.writeJSON(w, out)
}

// readDLQ reads up to limit messages of the DLQ stream below sequence
// before (0 = from the newest), newest first.
func readDLQ(ctx context.Context, nc *nats.Conn, before uint64, limit int) (DLQ, error) {
	out := DLQ{Entries: []DLQEntry{}}
	js, err := jetstream.New(nc)
	if err != nil {
		return out, fmt.Errorf("jetstream: %w", err)
	}
	s, err := js.Stream(ctx, wire.DLQStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("DLQ stream %s: %w", wire.DLQStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return out, fmt.Errorf("DLQ stream %s: %w", wire.DLQStream, err)
	}
	seq := info.State.LastSeq
	if before != 0 && before-1 < seq {
		seq = before - 1
	}
	// Deleted messages leave gaps: bound the probes too.
	for probes := 0; seq >= info.State.FirstSeq && seq > 0 && probes < 4*limit; seq, probes = seq-1, probes+1 {
		if len(out.Entries) == limit {
			next := out.Entries[limit-1].Seq
			out.Next = &next
			break
		}
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("DLQ message %d: %w", seq, err)
		}
		var d wire.DLQMsg
		e := DLQEntry{Seq: m.Sequence, Time: wire.FormatTime(m.Time)}
		if err := json.Unmarshal(m.Data, &d); err != nil {
			e.Reason = "undecodable DLQ message: " + err.Error()
			e.Data = query.RenderPayload(m.Data)
		} else {
			e.Stream, e.MsgID, e.JSSeq, e.Reason, e.Data = d.Stream, d.MsgID, d.JSSeq, d.Reason, query.RenderPayload(d.Data)
		}
		if e.Stream == "" {
			e.Stream, _ = wire.StreamOf(wire.KindDLQ, m.Subject)
		}
		out.Entries = append(out.Entries, e)
	}
	return out, nil
}
