// Package integration holds end-to-end tests of the JetStream pipeline:
// an embedded nats-server in-process, real stores under t.TempDir, and the
// securelog binary as a subprocess for crash tests.
package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// checkFor polls fn every step until it returns nil or total elapses.
func checkFor(t *testing.T, total, step time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", total, err)
		}
		time.Sleep(step)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("SECURELOG_TEST_VERBOSE") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// startLocal runs node.Up in the background and returns its info;
// the pipeline stops at test cleanup.
func startLocal(t *testing.T, cfg node.UpConfig) node.Info {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan node.Info, 1)
	done := make(chan error, 1)
	go func() { done <- node.Up(ctx, cfg, func(i node.Info) { infoc <- i }) }()
	var info node.Info
	select {
	case info = <-infoc:
	case err := <-done:
		cancel()
		t.Fatalf("node.Up: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("node.Up did not start in 60s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node.Up: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("node.Up did not stop in 30s")
		}
	})
	return info
}

// auditStream runs a full audit of stream over st with the trust file.
func auditStream(t *testing.T, st store.Store, trustFile, stream string, allowUnsignedTail bool) audit.Report {
	t.Helper()
	trust, err := checkpoint.LoadTrustFile(trustFile)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Stream(context.Background(), audit.StoreSource{Store: st}, stream, audit.Options{Trust: trust, AllowUnsignedTail: allowUnsignedTail})
	if err != nil {
		t.Fatalf("audit %s: %v", stream, err)
	}
	return rep
}

// streamEntries returns every entry of stream.
func streamEntries(t *testing.T, st store.Store, stream string) []wire.EntryRow {
	t.Helper()
	ctx := context.Background()
	head, ok, err := st.GlobalHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return nil
	}
	rows, err := st.Range(ctx, stream, 1, head)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func payloadOf(i int) []byte { return fmt.Appendf(nil, "event-%06d", i) }
