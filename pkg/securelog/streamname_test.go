package securelog

import (
	"context"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/wire"
)

// TestStreamNameRule: the library creates streams only under the rule the
// pipeline and the CLI use (wire.CheckStreamToken, issue 9 item 11): an
// empty name, '.', '*', '>', spaces, over 255 bytes, control, bidi-override
// and zero-width characters are refused by CreateStream and by the first
// Append (which creates the stream), and nothing is stored.
func TestStreamNameRule(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, nil)
	before, err := e.log.Store().StreamList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{"", ".", "a.b", "*", ">", "has space", strings.Repeat("x", 300), "ab\u202ecd", "zero\u200bwidth", "tab\tname", "nl\n"}
	for _, name := range bad {
		wantErr[*wire.InvalidError](t, e.log.CreateStream(ctx, name, "public", nil))
		if _, err := e.log.Append(ctx, name, "t", wire.Info, "p", []byte("x")); err == nil {
			t.Errorf("Append to stream %q accepted", name)
		}
	}
	streams, err := e.log.Store().StreamList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != len(before) {
		t.Fatalf("streams created under invalid names: %v", streams)
	}
	for _, name := range []string{"default", "a:b", "auth-login_2", "日本"} {
		if _, err := e.log.Append(ctx, name, "t", wire.Info, "p", []byte("x")); err != nil {
			t.Errorf("Append to stream %q: %v", name, err)
		}
	}
}
