package queryapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

// TestSealedPayloads: a sealed payload is served as ciphertext to a reader
// and opened for a writer when the server has the KEK; without the KEK
// nobody gets it opened.
func TestSealedPayloads(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	kek := make([]byte, 32)
	for i := range kek {
		kek[i] = byte(i)
	}
	l := securelog.New(st, securelog.Options{KEK: kek})
	if err := l.Open(ctx, "mem"); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateStream(ctx, "secret", "protected", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendSealed(ctx, "secret", "auth.login", wire.Info, "sshd", []byte("the plaintext")); err != nil {
		t.Fatal(err)
	}
	rpc, err := rpcserver.New(st, rpcserver.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rpc.SetTokens([]rpcserver.TokenEntry{{Token: "r", Role: rpcserver.RoleReader}, {Token: "w", Role: rpcserver.RoleWriter}})
	for _, canOpen := range []bool{true, false} {
		h, err := New(Config{Store: st, Log: l.Reader, CanOpen: canOpen, Authenticate: rpc.Authenticate})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		f := &fixture{srv: srv, log: l}
		for _, tc := range []struct {
			token  string
			opened bool
		}{{"r", false}, {"w", canOpen}} {
			var p Page
			if code := f.get(t, tc.token, "/v1/streams/secret/entries", &p); code != http.StatusOK || len(p.Entries) != 1 {
				t.Fatalf("status %d, %d entries", code, len(p.Entries))
			}
			e := p.Entries[0]
			plain := e.Payload.Text != nil && *e.Payload.Text == "the plaintext"
			if !e.Sealed || e.Opened != tc.opened || plain != tc.opened {
				t.Errorf("kek %v token %q: sealed %v opened %v payload %+v", canOpen, tc.token, e.Sealed, e.Opened, e.Payload)
			}
		}
		srv.Close()
		h.Close()
	}
}

func TestAlertRing(t *testing.T) {
	a := newAlertRing(3, queryBase())
	for i, s := range []string{"a", "b", "a", "a", "b"} {
		a.add(wire.AlertMsg{Stream: s, Message: string(rune('0' + i))})
	}
	got := a.newest(10, "")
	if len(got) != 3 || got[0].Message != "4" || got[2].Message != "2" {
		t.Errorf("newest = %+v", got)
	}
	if got := a.newest(10, "a"); len(got) != 2 || got[0].Message != "3" {
		t.Errorf("newest of a = %+v", got)
	}
	if got := a.newest(1, ""); len(got) != 1 || got[0].Message != "4" {
		t.Errorf("limit 1 = %+v", got)
	}
}

func queryBase() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
