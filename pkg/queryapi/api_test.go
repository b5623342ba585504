package queryapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

type fixture struct {
	srv *httptest.Server
	log *securelog.Log
}

// newFixture serves the API over a memory store with 30 entries in
// "default" (types auth.login / auth.logout / db.query, three producers)
// and a closed segment over the first 10, with reader and writer tokens.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	clock := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	l := securelog.New(st, securelog.Options{Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
	if err := l.Open(ctx, "mem"); err != nil {
		t.Fatal(err)
	}
	types := []string{"auth.login", "auth.logout", "db.query"}
	producers := []string{"sshd", "pg", "opa"}
	for i := range 30 {
		payload := []byte("event " + string(rune('a'+i%26)))
		if i == 7 {
			payload = []byte{0xff, 0xfe}
		}
		if _, err := l.Append(ctx, "default", types[i%3], wire.Severity(i%8), producers[i%3], payload); err != nil {
			t.Fatal(err)
		}
		if i == 9 {
			if _, err := l.CloseSegment(ctx, "default"); err != nil {
				t.Fatal(err)
			}
		}
	}
	rpc, err := rpcserver.New(st, rpcserver.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rpc.SetTokens([]rpcserver.TokenEntry{{Token: "r", Role: rpcserver.RoleReader}, {Token: "w", Role: rpcserver.RoleWriter}})
	h, err := New(Config{Store: st, Log: l.Reader, Authenticate: rpc.Authenticate, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	srv := httptest.NewServer(h.Wrap(http.NotFoundHandler()))
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, log: l}
}

// get fetches path with the token and decodes the JSON answer into v.
func (f *fixture) get(t *testing.T, token, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q, body %s", path, ct, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, b)
		}
	}
	return resp.StatusCode
}

func TestStreams(t *testing.T) {
	f := newFixture(t)
	var out Streams
	if code := f.get(t, "r", "/v1/streams", &out); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(out.Streams) != 1 {
		t.Fatalf("streams %+v", out)
	}
	s := out.Streams[0]
	if s.Name != "default" || s.Entries != 30 || s.HeadSeqno == nil || *s.HeadSeqno != 30 || s.LastSegment == nil ||
		s.LastSegment.SeqEnd != 10 || s.LastSigned != nil || s.WitnessStatus != "none" {
		t.Errorf("stream %+v", s)
	}
}

func TestEntriesFiltersAndPaging(t *testing.T) {
	f := newFixture(t)
	var p Page
	if code := f.get(t, "r", "/v1/streams/default/entries?type=auth.*&severity=warning&order=oldest", &p); code != 200 {
		t.Fatalf("status %d", code)
	}
	// auth.* is i%3 in {0,1}; warning or more urgent is i%8 ≤ 4.
	var want []uint64
	for i := range 30 {
		if i%3 != 2 && i%8 <= 4 {
			want = append(want, uint64(i+1))
		}
	}
	if got := pageSeqnos(p); !equal(got, want) || p.Next != nil {
		t.Fatalf("got %v next %v, want %v", got, p.Next, want)
	}
	// Paging newest first, 7 at a time, walks all 30 exactly once.
	var walked []uint64
	path := "/v1/streams/default/entries?limit=7"
	for range 10 {
		var p Page
		if code := f.get(t, "r", path, &p); code != 200 {
			t.Fatalf("status %d", code)
		}
		walked = append(walked, pageSeqnos(p)...)
		if p.Next == nil {
			break
		}
		path = "/v1/streams/default/entries?limit=7&after=" + url.QueryEscape(*p.Next)
	}
	if len(walked) != 30 || walked[0] != 30 || walked[29] != 1 {
		t.Errorf("walked %v", walked)
	}
	// Payloads: text when UTF-8, base64 otherwise; hashes are hex.
	var one Page
	f.get(t, "r", "/v1/streams/default/entries?producer=pg&order=oldest&limit=3", &one)
	if len(one.Entries) != 3 || one.Entries[2].Seqno != 8 || one.Entries[2].Payload.Base64 == nil ||
		one.Entries[0].Payload.Text == nil || *one.Entries[0].Payload.Text != "event b" {
		t.Errorf("payloads %+v", one.Entries)
	}
}

func pageSeqnos(p Page) []uint64 {
	out := []uint64{}
	for _, e := range p.Entries {
		out = append(out, e.Seqno)
	}
	return out
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEntryDetail(t *testing.T) {
	f := newFixture(t)
	var d EntryDetail
	if code := f.get(t, "r", "/v1/entries/4", &d); code != 200 {
		t.Fatalf("status %d", code)
	}
	if d.Entry.Seqno != 4 || d.Segment == nil || d.Segment.SeqEnd != 10 || d.Proof == nil || d.Proof.LeafIndex != 3 {
		t.Fatalf("detail %+v", d)
	}
	if err := securelog.VerifyInclusionProof(*d.Proof, d.Segment.MerkleRoot); err != nil {
		t.Errorf("served proof does not verify: %v", err)
	}
	// With ?stream= (the routing key across partitions, whose seqnos are
	// numbered per store), an entry of another stream is not found.
	var same EntryDetail
	if code := f.get(t, "r", "/v1/entries/4?stream="+d.Entry.Stream, &same); code != 200 || same.Entry.Seqno != 4 {
		t.Errorf("entry 4 of its own stream %q: %d %+v", d.Entry.Stream, code, same.Entry)
	}
	var other ErrorBody
	if code := f.get(t, "r", "/v1/entries/4?stream=elsewhere", &other); code != 404 || !strings.Contains(other.Error.Message, `stream "elsewhere"`) {
		t.Errorf("entry 4 asked in another stream: %d %+v", code, other)
	}
	var open EntryDetail
	f.get(t, "r", "/v1/entries/20", &open)
	if open.Segment != nil || open.Proof != nil || open.Entry.Seqno != 20 {
		t.Errorf("unsealed detail %+v", open)
	}
	var segs Segments
	if code := f.get(t, "r", "/v1/streams/default/segments", &segs); code != 200 || len(segs.Segments) != 1 || segs.Segments[0].Signed {
		t.Errorf("segments %d %+v", code, segs)
	}
}

// TestBadInput pins the error answers of issue 12 "Bad input".
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		token, path string
		status      int
		mention     string
	}{
		{"r", "/v1/streams/nope/entries", 404, `stream "nope" not found`},
		{"r", "/v1/streams/nope/segments", 404, "nope"},
		{"r", "/v1/streams/nope/follow", 404, "nope"},
		{"r", "/v1/entries/999", 404, "999"},
		{"r", "/v1/entries/x", 400, `"x"`},
		{"r", "/v1/streams/default/entries?severity=loud", 400, "severity"},
		{"r", "/v1/streams/default/entries?since=soon", 400, "since"},
		{"r", "/v1/streams/default/entries?after=bogus", 400, "after"},
		{"r", "/v1/streams/default/entries?limit=-1", 400, "limit"},
		{"r", "/v1/streams/default/entries?colour=red", 400, "colour"},
		{"r", "/v1/streams/default/segments?before=z", 400, "before"},
		{"r", "/v1/nothing", 404, "/v1/nothing"},
		{"", "/v1/streams", 401, "missing bearer token"},
		{"nope", "/v1/streams", 401, "unknown token"},
		{"r", "/v1/dlq", 503, "NATS"},
	}
	for _, tc := range tests {
		var body ErrorBody
		code := f.get(t, tc.token, tc.path, &body)
		if code != tc.status || body.Error.Status != tc.status || !strings.Contains(body.Error.Message, tc.mention) {
			t.Errorf("GET %s (token %q): %d %+v, want %d mentioning %q", tc.path, tc.token, code, body, tc.status, tc.mention)
		}
	}
	// A cursor of one query is refused by another.
	var p Page
	f.get(t, "r", "/v1/streams/default/entries?limit=2", &p)
	var body ErrorBody
	if code := f.get(t, "r", "/v1/streams/default/entries?limit=2&type=db.query&after="+url.QueryEscape(*p.Next), &body); code != 400 ||
		!strings.Contains(body.Error.Message, "different query") {
		t.Errorf("foreign cursor: %d %+v", code, body)
	}
	// The page size is capped.
	if code := f.get(t, "r", "/v1/streams/default/entries?limit=1000000", &p); code != 200 || p.Limit != 1000 {
		t.Errorf("limit cap: %d limit %d", code, p.Limit)
	}
	// Writers read too (DECISIONS 17: writer ⊇ reader).
	if code := f.get(t, "w", "/v1/streams", nil); code != 200 {
		t.Errorf("writer: %d", code)
	}
}

func TestRolesRefused(t *testing.T) {
	st := memory.New()
	if err := st.Init(context.Background(), "mem"); err != nil {
		t.Fatal(err)
	}
	// A deployment that lets only readers use the API refuses writers.
	h, err := New(Config{Store: st, ReadRoles: []rpcserver.Role{rpcserver.RoleReader},
		Authenticate: func(string) (rpcserver.Role, error) { return rpcserver.RoleWriter, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/streams", nil))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "forbidden") {
		t.Errorf("writer on a reader-only API: %d %s", rec.Code, rec.Body)
	}
}
