package stackcheck

import (
	"slices"
	"testing"
)

// The serve-rpc subprocess must not inherit the caller's securelog
// settings: with SECURELOG_NATS pointing at a running `securelog up`, the
// throwaway server joined up's store RPC subject (and, with up
// authenticated, failed to start).
func TestServeRPCEnvDropsSecurelogSettings(t *testing.T) {
	env := serveRPCEnv([]string{"PATH=/bin", "SECURELOG_NATS=nats://127.0.0.1:4222", "SECURE_LOG_RPC_URL=x", "HOME=/h"}, "/tmp/db")
	want := []string{"PATH=/bin", "HOME=/h", "SECURE_LOG_STORE_CONFIG=/tmp/db"}
	if !slices.Equal(env, want) {
		t.Fatalf("env %q, want %q", env, want)
	}
}
