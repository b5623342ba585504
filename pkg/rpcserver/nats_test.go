package rpcserver_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/securelog/securelog/pkg/httpserver"
	"github.com/securelog/securelog/pkg/httpserver/httpservertest"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/wire"
)

// natsRequest sends a raw envelope and returns the reply's status header and payload.
func natsRequest(t *testing.T, nc *nats.Conn, subject, token, body string) (string, string) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(body)
	if token != "" {
		m.Header.Set("Authorization", "Bearer "+token)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	r, err := nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		t.Fatalf("request on %s: %v", subject, err)
	}
	return r.Header.Get(wire.NATSStatusHeader), string(r.Data)
}

func TestNATSSameDispatcher(t *testing.T) {
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	st := memStore(t)
	subj := rpctest.ServeNATS(t, nc, st, rpcserver.Config{MaxBody: 4096})
	tests := []struct {
		name, body, status, want string
	}{
		{"init", `{"method":"init","params":["h"]}`, "200", "null"},
		{"insert", insertBody, "200", "1"},
		{"get", `{"method":"secure-log-get","params":[1]}`, "200", insertRow},
		{"head []", `{"method":"secure-log-global-head","params":[]}`, "200", "1"},
		{"malformed", `nope`, "400", "malformed request envelope: "},
		{"unknown", `{"method":"x"}`, "400", `unknown method "x"`},
		{"arity", `{"method":"secure-log-get","params":[1,2]}`, "400", "decode params: secure-log-get: want 1 argument(s), got 2"},
		{"oversized", `{"method":"secure-log-get","params":[` + strings.Repeat(" ", 5000) + `1]}`, "413", "request body too large"},
	}
	for _, tt := range tests {
		status, body := natsRequest(t, nc, subj, "", tt.body)
		if status != tt.status || !strings.HasPrefix(body, tt.want) {
			t.Errorf("%s: got %s %q, want %s %q", tt.name, status, body, tt.status, tt.want)
		}
	}
}

func TestNATSTokens(t *testing.T) {
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	tokens := writeTokens(t, `[{"token":"r","role":"reader"},{"token":"w","role":"writer"}]`)
	subj := rpctest.ServeNATS(t, nc, memStore(t), rpcserver.Config{TokensFile: tokens})
	tests := []struct{ token, body, status string }{
		{"", insertBody, "401"},
		{"x", insertBody, "401"},
		{"r", insertBody, "403"},
		{"r", `{"method":"secure-log-head","params":["default"]}`, "200"},
		{"w", insertBody, "200"},
	}
	for _, tt := range tests {
		if status, body := natsRequest(t, nc, subj, tt.token, tt.body); status != tt.status {
			t.Errorf("token %q: got %s %q, want %s", tt.token, status, body, tt.status)
		}
	}
}

func TestRunServesHTTPAndNATSUntilCancelled(t *testing.T) {
	ns := rpctest.StartNATS(t)
	st := memStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- rpcserver.Run(ctx, st, rpcserver.Config{
			Listen: "127.0.0.1:0", NATSURL: ns.ClientURL(), Subject: "securelog.rpc.run",
			OnListen: func(a string) { addrc <- a },
		}, nil)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not listen within 10s")
	}
	resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(insertBody))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "1" {
		t.Fatalf("HTTP insert = %d %s", resp.StatusCode, b)
	}
	// NATS: the subscription may not be registered yet when OnListen fires;
	// poll (bounded) until a responder answers.
	nc := rpctest.Connect(t, ns)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := nats.NewMsg("securelog.rpc.run")
		m.Data = []byte(`{"method":"secure-log-global-head","params":null}`)
		r, err := nc.RequestMsg(m, time.Second)
		if err == nil {
			if r.Header.Get(wire.NATSStatusHeader) != "200" || string(r.Data) != "1" {
				t.Fatalf("NATS head = %s %s", r.Header.Get(wire.NATSStatusHeader), r.Data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no NATS responder: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // poll step
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("HTTP still served after Run returned")
	}
}

func TestRunConfigErrors(t *testing.T) {
	st := memStore(t)
	tests := map[string]rpcserver.Config{
		"nothing to serve": {},
		"cert without key": {Listen: "127.0.0.1:0", TLSCert: "c.pem"},
		"missing cert":     {Listen: "127.0.0.1:0", TLSCert: "/nonexistent/c.pem", TLSKey: "/nonexistent/k.pem"},
		"bad listen":       {Listen: "256.0.0.1:99999"},
		"bad tokens":       {Listen: "127.0.0.1:0", TokensFile: "/nonexistent/tokens.json"},
	}
	for name, cfg := range tests {
		if err := rpcserver.Run(t.Context(), st, cfg, nil); err == nil {
			t.Errorf("%s: Run returned nil", name)
		}
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunWarnsWithoutAuthOnNonLoopback(t *testing.T) {
	for _, tt := range []struct {
		listen, tokens string
		warn           bool
	}{
		{"127.0.0.1:0", "", false},
		{"0.0.0.0:0", "", true},
		{"0.0.0.0:0", `[{"token":"w","role":"writer"}]`, false},
	} {
		var logs syncBuffer
		cfg := rpcserver.Config{Listen: tt.listen}
		if tt.tokens != "" {
			cfg.TokensFile = writeTokens(t, tt.tokens)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cfg.OnListen = func(string) { cancel() }
		if err := rpcserver.Run(ctx, memStore(t), cfg, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
			t.Fatalf("Run(%s): %v", tt.listen, err)
		}
		if got := strings.Contains(logs.String(), "authentication is OFF"); got != tt.warn {
			t.Errorf("listen %s tokens %q: warning logged = %v, want %v\n%s", tt.listen, tt.tokens, got, tt.warn, logs.String())
		}
	}
}

// TestRunCutsSlowClients: clients dribbling their request body or headers
// are disconnected once the read timeouts expire (issue 9 item 5: they
// used to stay connected for as long as they kept sending).
func TestRunCutsSlowClients(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- rpcserver.Run(ctx, memStore(t), rpcserver.Config{
			Listen:   "127.0.0.1:0",
			OnListen: func(a string) { addrc <- a },
			HTTP:     httpserver.Config{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond},
		}, nil)
	}()
	addr := <-addrc
	httpservertest.DribbleBodies(t, addr, "/", 40, 10*time.Second)
	httpservertest.DribbleHeaders(t, addr, 40, 10*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The read-only subject answers with the reader role whatever the token;
// with NATSByUser the subject alone decides (the nats-server's publish
// permissions say who may use which), so no token travels in a header
// every subscriber could read (issue 9 item 4).
func TestNATSReadSubjectAndByUser(t *testing.T) {
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	tokens := writeTokens(t, `[{"token":"r","role":"reader"},{"token":"w","role":"writer"}]`)
	head := `{"method":"secure-log-head","params":["default"]}`
	subj := rpctest.ServeNATS(t, nc, memStore(t), rpcserver.Config{TokensFile: tokens})
	read := wire.ReadSubject(subj)
	for _, tt := range []struct{ subject, token, body, status string }{
		{read, "w", insertBody, "403"},
		{read, "", head, "401"},
		{read, "r", head, "200"},
		{subj, "w", insertBody, "200"},
	} {
		if status, body := natsRequest(t, nc, tt.subject, tt.token, tt.body); status != tt.status {
			t.Errorf("tokens: %s token %q: got %s %q, want %s", tt.subject, tt.token, status, body, tt.status)
		}
	}
	subj = rpctest.ServeNATS(t, nc, memStore(t), rpcserver.Config{TokensFile: tokens, NATSByUser: true})
	read = wire.ReadSubject(subj)
	for _, tt := range []struct{ subject, token, body, status string }{
		{read, "", insertBody, "403"},
		{read, "w", insertBody, "403"},
		{read, "", head, "200"},
		{subj, "", insertBody, "200"},
	} {
		if status, body := natsRequest(t, nc, tt.subject, tt.token, tt.body); status != tt.status {
			t.Errorf("by user: %s token %q: got %s %q, want %s", tt.subject, tt.token, status, body, tt.status)
		}
	}
}
