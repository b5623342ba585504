package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/queryapi"
	"github.com/securelog/securelog/pkg/wire"
)

// recordingTransport answers every forwarded request with an empty stream
// list and records it (no network).
type recordingTransport struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, r)
	rt.mu.Unlock()
	status, body := http.StatusOK, `{"streams":[{"name":"remote"}]}`
	if seqno, ok := entryOfPath(r.URL.Path); ok {
		status, body = fakeEntry(seqno, "s")
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

// fakeEntry answers GET /v1/entries/{seqno} of a store holding entry 1
// of stream.
func fakeEntry(seqno, stream string) (int, string) {
	if seqno == "1" {
		return http.StatusOK, `{"entry":{"seqno":1,"stream":"` + stream + `"},"segment":null,"proof":null}`
	}
	b, _ := json.Marshal(queryapi.ErrorBody{Error: queryapi.ErrorInfo{Status: 404, Code: "entry_not_found", Message: "entry " + seqno + " not found"}})
	return http.StatusNotFound, string(b)
}

func (rt *recordingTransport) sent() []*http.Request {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.reqs
}

// routerTo returns a query router of partition "default" whose map gives
// stream "s" to partition "p2", advertised at p2URL.
func routerTo(t *testing.T, p2URL string, plainHTTP bool) (*queryRouter, *recordingTransport) {
	t.Helper()
	ctx := context.Background()
	m := partition.New(partition.NewMemoryKV())
	if _, err := m.Add(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	if err := m.Assign(ctx, "s", "p2"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetHTTP(ctx, "p2", p2URL); err != nil {
		t.Fatal(err)
	}
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if seqno, ok := entryOfPath(r.URL.Path); ok {
			status, body := fakeEntry(seqno, "own")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
		_, _ = io.WriteString(w, `{"streams":[]}`)
	})
	q := newQueryRouter(wire.MustPartition(wire.DefaultPartition), local, nil, m, slog.New(slog.DiscardHandler), plainHTTP)
	rt := &recordingTransport{}
	q.client.Transport = rt
	return q, rt
}

// Risk noted at issue 14's landing: the query API forwarded the caller's
// bearer token to another partition's advertised listener over plain HTTP.
// A request with credentials is forwarded only to https:// or loopback
// addresses, or anywhere with --forward-plain-http.
func TestQueryRouterKeepsTokensOffPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		plain     bool
		auth      bool
		forwarded bool
	}{
		{"plain http off the machine, token", "http://192.0.2.10:8080", false, true, false},
		{"plain http off the machine, no credentials", "http://192.0.2.10:8080", false, false, true},
		{"https, token", "https://p2.example:8443", false, true, true},
		{"loopback, token", "http://127.0.0.1:9", false, true, true},
		{"localhost, token", "http://localhost:9", false, true, true},
		{"plain http allowed, token", "http://192.0.2.10:8080", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, rt := routerTo(t, tc.url, tc.plain)
			req := httptest.NewRequest(http.MethodGet, "/v1/streams/s/entries", nil)
			if tc.auth {
				req.Header.Set(wire.AuthorizationHeader, "Bearer secret-token")
			}
			rec := httptest.NewRecorder()
			q.ServeHTTP(rec, req)
			sent := rt.sent()
			if !tc.forwarded {
				var body queryapi.ErrorBody
				_ = json.Unmarshal(rec.Body.Bytes(), &body)
				if rec.Code != http.StatusForbidden || body.Error.Code != "forward-refused" || !strings.Contains(body.Error.Message, "--forward-plain-http") || len(sent) != 0 {
					t.Fatalf("%d %s, %d requests sent: want 403 forward-refused and nothing sent", rec.Code, rec.Body, len(sent))
				}
				return
			}
			if len(sent) != 1 {
				t.Fatalf("%d %s: %d requests forwarded, want 1", rec.Code, rec.Body, len(sent))
			}
			if got := sent[0].Header.Get(wire.AuthorizationHeader); tc.auth != (got != "") {
				t.Fatalf("forwarded Authorization %q", got)
			}
		})
	}
	// The merged stream list does not send the token either: the refused
	// partition is named in the Securelog-Partial header.
	q, rt := routerTo(t, "http://192.0.2.10:8080", false)
	req := httptest.NewRequest(http.MethodGet, "/v1/streams", nil)
	req.Header.Set(wire.AuthorizationHeader, "Bearer secret-token")
	rec := httptest.NewRecorder()
	q.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || len(rt.sent()) != 0 || !strings.Contains(rec.Header().Get(PartialHeader), "p2: refusing to forward") {
		t.Fatalf("merged list: %d %q, partial %q, %d requests sent", rec.Code, rec.Body, rec.Header().Get(PartialHeader), len(rt.sent()))
	}
}

// Risk noted at issue 14's landing: GET /v1/entries/{seqno} answered only
// for the listener's own partition. Seqnos are numbered per partition, so
// the request names the entry's stream or partition and is routed; a 404
// names the partition asked.
func TestQueryRouterRoutesEntries(t *testing.T) {
	for _, tc := range []struct {
		path      string
		status    int
		forwarded string // the forwarded request's URL ("" = none)
		mention   []string
	}{
		{"/v1/entries/1?stream=s", 200, "/v1/entries/1?stream=s", nil},
		{"/v1/entries/1?partition=p2", 200, "/v1/entries/1?partition=p2", nil},
		{"/v1/entries/1", 200, "", []string{`"stream":"own"`}},
		{"/v1/entries/5?stream=s", 404, "/v1/entries/5?stream=s", []string{"entry 5 not found in partition p2"}},
		{"/v1/entries/999", 404, "", []string{"entry 999 not found in partition default", "?stream=", "partitions: default, p2"}},
		{"/v1/entries/1?partition=nope", 404, "", []string{"partition_not_found", "nope", "p2"}},
		{"/v1/entries/1?stream=s&partition=default", 404, "", []string{`stream \"s\" is in partition p2, not default`}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			q, rt := routerTo(t, "http://127.0.0.1:9", false)
			rec := httptest.NewRecorder()
			q.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			body := rec.Body.String()
			if rec.Code != tc.status {
				t.Fatalf("%d %s, want %d", rec.Code, body, tc.status)
			}
			sent := rt.sent()
			switch {
			case tc.forwarded == "" && len(sent) != 0:
				t.Fatalf("forwarded %s", sent[0].URL)
			case tc.forwarded != "" && (len(sent) != 1 || sent[0].URL.RequestURI() != tc.forwarded):
				t.Fatalf("forwarded %v, want one request for %s", sent, tc.forwarded)
			}
			for _, m := range tc.mention {
				if !strings.Contains(body, m) {
					t.Errorf("answer %s does not mention %s", body, m)
				}
			}
		})
	}
}
