package rpcserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

const (
	insertBody = `{"method":"secure-log-insert","params":[{"seqno":1,"stream_id":"default","session_id":"sess-1",` +
		`"boot_id":"boot-1","timestamp_rfc3339":"2026-04-10T00:00:01+00:00","event_type":"user.login",` +
		`"severity":"info","producer":"authd","payload_encoding":"cbor","payload":[97,108,105,99,101],` +
		`"prev_entry_hash":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],` +
		`"entry_hash":[234,84,134,53,182,254,241,29,60,149,234,123,239,159,242,103,17,98,86,236,219,75,28,84,43,254,99,177,37,14,149,194]}]}`
	// insertRow is the row of insertBody as a result (params minus the envelope).
	insertRow = `{"seqno":1,"stream_id":"default","session_id":"sess-1",` +
		`"boot_id":"boot-1","timestamp_rfc3339":"2026-04-10T00:00:01+00:00","event_type":"user.login",` +
		`"severity":"info","producer":"authd","payload_encoding":"cbor","payload":[97,108,105,99,101],` +
		`"prev_entry_hash":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],` +
		`"entry_hash":[234,84,134,53,182,254,241,29,60,149,234,123,239,159,242,103,17,98,86,236,219,75,28,84,43,254,99,177,37,14,149,194]}`
)

func memStore(t *testing.T) store.Store {
	t.Helper()
	st := memory.New()
	if err := st.Init(t.Context(), "rpcserver-test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

type server struct {
	t   *testing.T
	url string
	st  store.Store
}

func newServer(t *testing.T, cfg rpcserver.Config) *server {
	t.Helper()
	st := memStore(t)
	h, err := rpcserver.NewHandler(st, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return &server{t: t, url: hs.URL, st: st}
}

// do sends one request and returns status and body.
func (s *server) do(method, path, token, body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.t.Context(), method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (s *server) post(body string) (int, string) {
	s.t.Helper()
	return s.do(http.MethodPost, "/", "", body)
}

func TestExactBodies(t *testing.T) {
	s := newServer(t, rpcserver.Config{})
	steps := []struct {
		name, body string
		status     int
		want       string
	}{
		{"init", `{"method":"init","params":[":memory:"]}`, 200, `null`},
		{"empty head", `{"method":"secure-log-global-head","params":null}`, 200, `null`},
		{"insert vector", insertBody, 200, `1`},
		{"global head null", `{"method":"secure-log-global-head","params":null}`, 200, `1`},
		{"global head []", `{"method":"secure-log-global-head","params":[]}`, 200, `1`},
		{"get", `{"method":"secure-log-get","params":[1]}`, 200, insertRow},
		{"get missing", `{"method":"secure-log-get","params":[2]}`, 200, `null`},
		{"range", `{"method":"secure-log-range","params":["default",1,10]}`, 200, `[` + insertRow + `]`},
		{"range empty", `{"method":"secure-log-range","params":["default",5,1]}`, 200, `[]`},
		{"head", `{"method":"secure-log-head","params":["default"]}`, 200, `1`},
		{"last", `{"method":"secure-log-last","params":["default"]}`, 200, insertRow},
		{"duplicate", insertBody, 500, "UNIQUE constraint failed: secure_log.seqno (1)"},
		{"segment insert", `{"method":"secure-log-segment-insert","params":[{"segment_id":null,"stream_id":"default",` +
			`"seq_start":1,"seq_end":1,"merkle_root":[1],"last_entry_hash":[2],"prev_checkpoint_hash":[3],` +
			`"closed_at_rfc3339":"2026-04-10T00:00:02+00:00","signature":null,"signer_identity":null},[[1,0]]]}`, 200, `1`},
		{"set signature", `{"method":"secure-log-segment-set-signature","params":[1,[9,8],"k1"]}`, 200, `null`},
		{"segment get", `{"method":"secure-log-segment-get","params":[1]}`, 200, `{"segment_id":1,"stream_id":"default",` +
			`"seq_start":1,"seq_end":1,"merkle_root":[1],"last_entry_hash":[2],"prev_checkpoint_hash":[3],` +
			`"closed_at_rfc3339":"2026-04-10T00:00:02+00:00","signature":[9,8],"signer_identity":"k1"}`},
		{"segments list", `{"method":"secure-log-segments-list","params":["nope"]}`, 200, `[]`},
		{"segment last seqno", `{"method":"secure-log-segment-last-seqno","params":["default"]}`, 200, `1`},
		{"segment entry seqnos", `{"method":"secure-log-segment-entry-seqnos","params":[1]}`, 200, `[1]`},
		{"segment for seqno", `{"method":"secure-log-segment-for-seqno","params":[1]}`, 200, `1`},
		{"set signature missing", `{"method":"secure-log-segment-set-signature","params":[7,[1],"k"]}`, 500, "segment not found: 7"},
		{"witness insert", `{"method":"witness-log-insert","params":[{"id":null,"stream_id":"default","segment_id":1,` +
			`"seq_start":1,"seq_end":1,"checkpoint_hash_hex":"ab","signature_hex":"cd","signer_identity":"k1",` +
			`"received_at_rfc3339":"2026-04-10T00:00:03+00:00"}]}`, 200, `1`},
		{"witness latest", `{"method":"witness-log-latest","params":["default"]}`, 200, `{"id":1,"stream_id":"default",` +
			`"segment_id":1,"seq_start":1,"seq_end":1,"checkpoint_hash_hex":"ab","signature_hex":"cd",` +
			`"signer_identity":"k1","received_at_rfc3339":"2026-04-10T00:00:03+00:00"}`},
		{"witness list", `{"method":"witness-log-list","params":["x"]}`, 200, `[]`},
		{"witness stream ids", `{"method":"witness-log-stream-ids","params":null}`, 200, `["default"]`},
		{"witness gc", `{"method":"witness-log-gc","params":[null,5,null]}`, 200, `0`},
		{"stream upsert", `{"method":"secure-log-stream-upsert","params":[{"name":"s2","tier":"public",` +
			`"description":null,"created_at_rfc3339":"2026-04-10T00:00:04+00:00","deprecated_at_rfc3339":null}]}`, 200, `null`},
		{"stream set tier", `{"method":"secure-log-stream-set-tier","params":["s2","protected"]}`, 200, `null`},
		{"stream deprecate", `{"method":"secure-log-stream-deprecate","params":["s2","2026-04-10T00:00:05+00:00"]}`, 200, `null`},
		{"stream get", `{"method":"secure-log-stream-get","params":["s2"]}`, 200, `{"name":"s2","tier":"protected",` +
			`"description":null,"created_at_rfc3339":"2026-04-10T00:00:04+00:00","deprecated_at_rfc3339":"2026-04-10T00:00:05+00:00"}`},
		{"stream get missing", `{"method":"secure-log-stream-get","params":["zz"]}`, 200, `null`},
		{"stream set tier missing", `{"method":"secure-log-stream-set-tier","params":["zz","public"]}`, 500, "stream not found: zz"},
	}
	for _, st := range steps {
		status, body := s.post(st.body)
		if status != st.status || body != st.want {
			t.Errorf("%s: got %d %s\nwant %d %s", st.name, status, body, st.status, st.want)
		}
	}
	// stream-list: the default stream (created at init) and s2, in creation order.
	status, body := s.post(`{"method":"secure-log-stream-list","params":null}`)
	var rows []wire.StreamRow
	if status != 200 || json.Unmarshal([]byte(body), &rows) != nil || len(rows) != 2 || rows[0].Name != "default" || rows[1].Name != "s2" {
		t.Errorf("stream list = %d %s", status, body)
	}
}

func TestErrorsLeaveStoreUnchanged(t *testing.T) {
	s := newServer(t, rpcserver.Config{MaxBody: 1024})
	big := `{"method":"secure-log-insert","params":[{"seqno":1,"payload":[` + strings.Repeat("1,", 600) + `1]}]}`
	tests := []struct {
		name, body string
		status     int
		prefix     string
	}{
		{"not JSON", `{"method":`, 400, "malformed request envelope: "},
		{"empty body", ``, 400, "malformed request envelope: "},
		{"no method", `{"params":[1]}`, 400, `malformed request envelope: missing "method"`},
		{"method not a string", `{"method":1,"params":[]}`, 400, "malformed request envelope: "},
		// Client mistakes are 400 (issue 9 item 6); 500 stays for store failures.
		{"unknown method", `{"method":"drop-table","params":[]}`, 400, `unknown method "drop-table"`},
		{"too few params", `{"method":"secure-log-insert","params":[]}`, 400, "decode params: secure-log-insert: want 1 argument(s), got 0"},
		{"too many params", `{"method":"secure-log-range","params":["default",1,2,3]}`, 400, "decode params: secure-log-range: want 3 argument(s), got 4"},
		{"params null", `{"method":"secure-log-insert","params":null}`, 400, "decode params: secure-log-insert: want a JSON array of 1 argument(s), got null"},
		{"bad row", `{"method":"secure-log-insert","params":[{"seqno":1,"severity":"loud"}]}`, 400, "decode params: secure-log-insert: argument 1: "},
		{"zero-arg with args", `{"method":"secure-log-stream-list","params":[1]}`, 400, "decode params: secure-log-stream-list: takes no arguments"},
		{"params not an array", `{"method":"secure-log-get","params":{"seqno":1}}`, 400, "decode params: secure-log-get: "},
		{"string for integer", `{"method":"secure-log-get","params":["1"]}`, 400, "decode params: secure-log-get: argument 1: "},
		{"integer for string", `{"method":"secure-log-head","params":[7]}`, 400, "decode params: secure-log-head: argument 1: "},
		{"negative integer", `{"method":"secure-log-get","params":[-1]}`, 400, "decode params: secure-log-get: argument 1: "},
		{"2^64", `{"method":"secure-log-get","params":[18446744073709551616]}`, 400, "decode params: secure-log-get: argument 1: "},
		{"fraction", `{"method":"secure-log-get","params":[1.5]}`, 400, "decode params: secure-log-get: argument 1: "},
		{"exponent fraction", `{"method":"secure-log-range","params":["default",1,1e-3]}`, 400, "decode params: secure-log-range: argument 3: "},
		{"2^32 for u32", `{"method":"witness-log-gc","params":[null,4294967296,null]}`, 400, "decode params: witness-log-gc: argument 2: "},
		{"negative in row", `{"method":"secure-log-insert","params":[{"seqno":-1}]}`, 400, "decode params: secure-log-insert: argument 1: "},
		{"bytes out of range", `{"method":"secure-log-segment-set-signature","params":[1,[256],"k"]}`, 400, "decode params: secure-log-segment-set-signature: argument 2: "},
		{"bool for bytes", `{"method":"secure-log-segment-set-signature","params":[1,true,"k"]}`, 400, "decode params: secure-log-segment-set-signature: argument 2: "},
		{"oversized", big, 413, "request body too large: limit is 1024 bytes"},
	}
	for _, tt := range tests {
		status, body := s.post(tt.body)
		if status != tt.status || !strings.HasPrefix(body, tt.prefix) {
			t.Errorf("%s: got %d %q, want %d %q…", tt.name, status, body, tt.status, tt.prefix)
		}
	}
	if _, ok, err := s.st.GlobalHead(t.Context()); ok || err != nil {
		t.Errorf("store changed by failed requests: head present=%v err=%v", ok, err)
	}
}

func TestHealthzMetricsAndAnyPath(t *testing.T) {
	s := newServer(t, rpcserver.Config{})
	if status, body := s.do(http.MethodGet, "/healthz", "", ""); status != 200 || body != "ok" {
		t.Errorf("healthz = %d %q", status, body)
	}
	// The RPC ignores HTTP method and path (SPEC §16.5).
	if status, body := s.do(http.MethodPut, "/any/path", "", insertBody); status != 200 || body != "1" {
		t.Errorf("PUT /any/path insert = %d %q", status, body)
	}
	s.post(`{"method":"nope"}`)
	status, body := s.do(http.MethodGet, "/metrics", "", "")
	if status != 200 {
		t.Fatalf("metrics status %d", status)
	}
	for _, want := range []string{
		`securelog_rpc_requests_total{code="200",method="secure-log-insert",transport="http"} 1`,
		`securelog_rpc_requests_total{code="400",method="unknown",transport="http"} 1`,
		`securelog_rpc_request_duration_seconds_count{method="secure-log-insert",transport="http"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func writeTokens(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthMatrix(t *testing.T) {
	tokens := writeTokens(t, `[{"token":"r-secret","role":"reader"},{"token":"w-secret","role":"writer"}]`)
	s := newServer(t, rpcserver.Config{TokensFile: tokens})
	read := `{"method":"secure-log-global-head","params":null}`
	tests := []struct {
		name, token, body string
		status            int
		want              string
	}{
		{"no token read", "", read, 401, "unauthorized: missing bearer token"},
		{"no token write", "", insertBody, 401, "unauthorized: missing bearer token"},
		{"unknown token", "guess", read, 401, "unauthorized: unknown token"},
		{"reader read", "r-secret", read, 200, "null"},
		{"reader handshake", "r-secret", `{"method":"init","params":["x"]}`, 200, "null"},
		{"reader write", "r-secret", insertBody, 403, `forbidden: method "secure-log-insert" needs the writer role`},
		{"reader gc", "r-secret", `{"method":"witness-log-gc","params":[null,1,null]}`, 403, `forbidden: method "witness-log-gc" needs the writer role`},
		{"writer write", "w-secret", insertBody, 200, "1"},
		{"writer read", "w-secret", read, 200, "1"},
	}
	for _, tt := range tests {
		status, body := s.do(http.MethodPost, "/", tt.token, tt.body)
		if status != tt.status || body != tt.want {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, status, body, tt.status, tt.want)
		}
	}
	// Health stays open for probes.
	if status, _ := s.do(http.MethodGet, "/healthz", "", ""); status != 200 {
		t.Errorf("healthz with auth on = %d", status)
	}
	// Basic scheme is not accepted.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url, strings.NewReader(read))
	req.Header.Set("Authorization", "Basic dzp3LXNlY3JldA==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("Basic auth = %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestLoadTokensErrors(t *testing.T) {
	tests := map[string]string{
		"not json":       `{`,
		"object":         `{"token":"a","role":"reader"}`,
		"empty list":     `[]`,
		"empty token":    `[{"token":"","role":"reader"}]`,
		"bad role":       `[{"token":"a","role":"admin"}]`,
		"duplicate":      `[{"token":"a","role":"reader"},{"token":"a","role":"writer"}]`,
		"missing role":   `[{"token":"a"}]`,
		"uppercase role": `[{"token":"a","role":"Writer"}]`,
	}
	for name, content := range tests {
		if _, err := rpcserver.LoadTokens(writeTokens(t, content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := rpcserver.New(memStore(t), rpcserver.Config{TokensFile: writeTokens(t, content)}, nil); err == nil {
			t.Errorf("%s: New accepted the tokens file", name)
		}
	}
	if _, err := rpcserver.LoadTokens(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestConcurrentRequests(t *testing.T) {
	s := newServer(t, rpcserver.Config{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			body := strings.Replace(insertBody, `"seqno":1`, `"seqno":`+itoa(i+1), 1)
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.url, strings.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("insert %d: status %d", i+1, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if head, ok, err := s.st.GlobalHead(t.Context()); err != nil || !ok || head != 16 {
		t.Errorf("GlobalHead = %d %v %v, want 16", head, ok, err)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestDispatchCoversEveryMethod(t *testing.T) {
	st := memStore(t)
	params := map[string]string{
		wire.MethodInit: `["x"]`, wire.MethodInsert: `[{"seqno":1,"stream_id":"default","severity":"info"}]`,
		wire.MethodGlobalHead: `null`, wire.MethodGet: `[1]`, wire.MethodRange: `["default",1,2]`,
		wire.MethodHead: `["default"]`, wire.MethodLast: `["default"]`,
		wire.MethodSegmentInsert: `[{"stream_id":"default","seq_start":1,"seq_end":1},[[1,0]]]`,
		wire.MethodSegmentGet:    `[1]`, wire.MethodSegmentsList: `["default"]`, wire.MethodSegmentLastSeqno: `["default"]`,
		wire.MethodSegmentEntrySeqnos: `[1]`, wire.MethodSegmentForSeqno: `[1]`,
		wire.MethodSegmentSetSignature: `[1,[1],"k"]`, wire.MethodWitnessInsert: `[{"stream_id":"default"}]`,
		wire.MethodWitnessLatest: `["default"]`, wire.MethodWitnessList: `["default"]`,
		wire.MethodWitnessStreamIDs: `null`, wire.MethodWitnessGC: `[null,null,null]`,
		wire.MethodStreamUpsert: `[{"name":"n","tier":"public","created_at_rfc3339":"2026-01-01T00:00:00Z"}]`,
		wire.MethodStreamGet:    `["n"]`, wire.MethodStreamList: `null`, wire.MethodStreamSetTier: `["n","public"]`,
		wire.MethodStreamDeprecate: `["n","2026-01-02T00:00:00Z"]`,
		wire.MethodSegmentReserve:  `["n"]`, wire.MethodSegmentReservation: `["n"]`,
		wire.MethodRangePage: `["default",1,2,0]`, wire.MethodSegmentEntrySeqnosPage: `[1,0,0]`,
		wire.MethodSegmentInsertTree: `[{"stream_id":"default","seq_start":2,"seq_end":2},[[2,0]],[[0,0,[]]]]`,
		wire.MethodSegmentLeaf:       `[1]`, wire.MethodSegmentTreeChunk: `[1,0,0]`, wire.MethodSegmentTreeNodes: `[1,[[0,0]]]`,
	}
	for _, m := range wire.Methods {
		p, ok := params[m]
		if !ok {
			t.Errorf("no params for %s", m)
			continue
		}
		res, err := rpcserver.Dispatch(t.Context(), st, m, json.RawMessage(p))
		if err != nil {
			t.Errorf("Dispatch(%s, %s): %v", m, p, err)
			continue
		}
		if !json.Valid(res) {
			t.Errorf("Dispatch(%s) result %q is not JSON", m, res)
		}
	}
}

// TestReadableTokensFileRefused reproduces issue 9 item 7 for bearer token
// files: a tokens file other users can read used to be loaded silently.
func TestReadableTokensFileRefused(t *testing.T) {
	p := writeTokens(t, `[{"token":"w","role":"writer"}]`)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := rpcserver.LoadTokens(p); err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("LoadTokens of a 0644 file: %v", err)
	}
	if _, err := rpcserver.New(memStore(t), rpcserver.Config{TokensFile: p}, nil); err == nil {
		t.Fatal("New accepted a readable tokens file")
	}
	if _, err := rpcserver.New(memStore(t), rpcserver.Config{TokensFile: p, AllowReadableTokens: true}, nil); err != nil {
		t.Fatalf("AllowReadableTokens: %v", err)
	}
}
