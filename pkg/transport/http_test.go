package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// clearEnv is kept for the tests' shape: the package reads no
// environment, so there is nothing to clear.
func clearEnv(t *testing.T) { t.Helper() }

func TestNewHTTPConfigErrors(t *testing.T) {
	clearEnv(t)
	tests := []struct{ url, want string }{
		{"", "transport-http: SECURE_LOG_RPC_URL is not set"},
		{"localhost:8080", `transport-http: URL "localhost:8080"`},
		{"127.0.0.1:8080", `transport-http: invalid URL "127.0.0.1:8080"`},
		{"ftp://host/", `unsupported scheme "ftp"`},
		{"http://", "has no host"},
		{"example.com/rpc", "has no scheme"},
	}
	for _, tt := range tests {
		_, err := transport.New("http", transport.Config{URL: tt.url})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(http, %q) = %v, want error containing %q", tt.url, err, tt.want)
		}
	}
	if _, err := transport.New("carrier-pigeon", transport.Config{}); err == nil || !strings.Contains(err.Error(), `unknown kind "carrier-pigeon"`) {
		t.Errorf("unknown kind: %v", err)
	}
	// An empty kind is DefaultKind (http), whatever the environment says.
	t.Setenv("SECURE_LOG_TRANSPORT", "smoke")
	if _, err := transport.New("", transport.Config{}); err == nil || !strings.Contains(err.Error(), "SECURE_LOG_RPC_URL is not set") {
		t.Errorf("empty kind: %v", err)
	}
}

func TestParseURLDefaultsPath(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":      "http://127.0.0.1:8080/",
		"https://h/rpc":              "https://h/rpc",
		"http://[::1]:9/a?b=c":       "http://[::1]:9/a?b=c",
		"HTTP://upper.example:80/x/": "http://upper.example:80/x/",
	} {
		u, err := transport.ParseURL(in)
		if err != nil || u.String() != want {
			t.Errorf("ParseURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
}

// recorder is an HTTP endpoint that records requests and answers from a script.
type recorder struct {
	calls  atomic.Int32
	answer func(n int32, w http.ResponseWriter, r *http.Request)
	last   atomic.Value // string: method path auth body
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := rc.calls.Add(1)
	b, _ := io.ReadAll(r.Body)
	rc.last.Store(r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization") + " " + string(b))
	rc.answer(n, w, r)
}

func newHTTP(t *testing.T, rc *recorder, cfg transport.Config) transport.Transport {
	t.Helper()
	clearEnv(t)
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	if cfg.URL == "" {
		cfg.URL = hs.URL
	} else {
		cfg.URL = hs.URL + cfg.URL
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	tr, err := transport.New("http", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestHTTPCallSendsExactBody(t *testing.T) {
	rc := &recorder{answer: func(_ int32, w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "[1,2]") }}
	tr := newHTTP(t, rc, transport.Config{URL: "/rpc", Token: "tok"})
	res, err := tr.Call(t.Context(), wire.MethodRange, json.RawMessage(`["default",1,10]`))
	if err != nil || string(res) != "[1,2]" {
		t.Fatalf("Call = %s, %v", res, err)
	}
	want := `POST /rpc Bearer tok {"method":"secure-log-range","params":["default",1,10]}`
	if got := rc.last.Load().(string); got != want {
		t.Errorf("request:\n got %s\nwant %s", got, want)
	}
	if _, err := tr.Call(t.Context(), wire.MethodStreamList, nil); err != nil {
		t.Fatal(err)
	}
	if got := rc.last.Load().(string); got != `POST /rpc Bearer tok {"method":"secure-log-stream-list","params":null}` {
		t.Errorf("zero-arg request = %s", got)
	}
}

// TestHTTPConfigValue: URL and token come from the Config value only.
func TestHTTPConfigValue(t *testing.T) {
	rc := &recorder{answer: func(_ int32, w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "null") }}
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	t.Setenv("SECURE_LOG_RPC_TOKEN", "ignored")
	tr, err := transport.New("", transport.Config{URL: hs.URL, Token: "env-token"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Call(t.Context(), wire.MethodInit, json.RawMessage(`["x"]`)); err != nil {
		t.Fatal(err)
	}
	if got := rc.last.Load().(string); got != `POST / Bearer env-token {"method":"init","params":["x"]}` {
		t.Errorf("request = %s", got)
	}
}

func TestHTTPStatusAndRetries(t *testing.T) {
	fail := func(status int, failures int32) func(int32, http.ResponseWriter, *http.Request) {
		return func(n int32, w http.ResponseWriter, _ *http.Request) {
			if n <= failures {
				w.WriteHeader(status)
				_, _ = io.WriteString(w, "try later")
				return
			}
			_, _ = io.WriteString(w, "7")
		}
	}
	hangup := func(n int32, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "7")
	}
	tests := []struct {
		name    string
		answer  func(int32, http.ResponseWriter, *http.Request)
		method  string
		wantErr string
		calls   int32
	}{
		{"read retried on 503", fail(503, 2), wire.MethodGet, "", 3},
		{"read retried on 502", fail(502, 1), wire.MethodHead, "", 2},
		{"read not retried on 500", fail(500, 5), wire.MethodGet, "transport-http: server returned 500: try later", 1},
		{"read not retried on 400", fail(400, 5), wire.MethodGet, "transport-http: server returned 400: try later", 1},
		{"retries exhausted", fail(503, 10), wire.MethodGet, "transport-http: server returned 503: try later", 4},
		{"write not retried on 503", fail(503, 1), wire.MethodInsert, "transport-http: server returned 503: try later", 1},
		{"read retried on hang-up", hangup, wire.MethodGet, "", 3},
		{"write not retried on hang-up", hangup, wire.MethodWitnessGC, "transport-http: ", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &recorder{answer: tt.answer}
			tr := newHTTP(t, rc, transport.Config{})
			res, err := tr.Call(t.Context(), tt.method, json.RawMessage(`[1]`))
			if tt.wantErr == "" {
				if err != nil || string(res) != "7" {
					t.Fatalf("Call = %s, %v", res, err)
				}
			} else if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("Call error = %v, want prefix %q", err, tt.wantErr)
			}
			if got := rc.calls.Load(); got != tt.calls {
				t.Errorf("server saw %d calls, want %d", got, tt.calls)
			}
		})
	}
}

func TestHTTPStatusErrorIsTyped(t *testing.T) {
	rc := &recorder{answer: func(_ int32, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "stream not found: x", 500)
	}}
	tr := newHTTP(t, rc, transport.Config{})
	_, err := tr.Call(t.Context(), wire.MethodStreamSetTier, json.RawMessage(`["x","public"]`))
	var se *transport.StatusError
	if !errors.As(err, &se) || se.Status != 500 || se.Body != "stream not found: x\n" {
		t.Fatalf("err = %#v", err)
	}
}

func TestHTTPTimeout(t *testing.T) {
	rc := &recorder{answer: func(_ int32, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }}
	tr := newHTTP(t, rc, transport.Config{Timeout: 50 * time.Millisecond, Retries: -1})
	start := time.Now()
	_, err := tr.Call(t.Context(), wire.MethodGet, json.RawMessage(`[1]`))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v", d)
	}
	if rc.calls.Load() != 1 {
		t.Errorf("Retries -1 made %d calls", rc.calls.Load())
	}
}

func TestHTTPContextCancelStopsRetries(t *testing.T) {
	rc := &recorder{answer: func(_ int32, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }}
	tr := newHTTP(t, rc, transport.Config{Backoff: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := tr.Call(ctx, wire.MethodGet, json.RawMessage(`[1]`))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "server returned 503") {
		t.Fatalf("err = %v, want the context error wrapping the last failure", err)
	}
}
