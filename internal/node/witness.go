package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/witnessd"
)

// WitnessConfig configures a witness service (`securelog witness`, and the
// local witness of `securelog up`): its key in DataDir/keys, its own store,
// submissions over HTTP and/or NATS, cross-checks against the log's store
// RPC and, with Tlog, the C2SP tlog-witness endpoint.
type WitnessConfig struct {
	// DataDir holds the witness's key (keys/) and evidence (evidence/).
	DataDir string
	// Identity names the witness's Ed25519 key (witnessd.DefaultIdentity).
	Identity string
	// Store is the witness's own store ("" = pebble:DataDir/log).
	Store string
	// Trust holds the log's public keys.
	Trust *checkpoint.Trust
	// NATS, if its URL or Server is set, serves submissions on Subject and
	// carries alerts; with Conn set, that connection is used instead.
	NATS    NATSClient
	Conn    *nats.Conn
	Subject string
	// LogRPC, if its Transport is set, is the log's store RPC for the
	// cross-checks (over NATS it uses the witness's connection).
	LogRPC        RPCClient
	CheckInterval time.Duration
	// Tlog makes the witness a C2SP tlog-witness (nil = not); the witness
	// closes its State.
	Tlog *witnessd.TlogConfig
	// Listen is the HTTP address ("" = no HTTP); OnListen gets the bound one.
	Listen   string
	OnListen func(addr string)
	Logger   *slog.Logger
}

// WitnessKey returns the witness's Ed25519 key identity in dir/keys,
// creating the directory and the key if needed: the one key rule of
// `securelog witness`, `securelog witness keys` and up's local witness.
func WitnessKey(ctx context.Context, dir, identity string) (keystore.Key, error) {
	if dir == "" {
		return nil, &SettingError{Flag: "--data", Env: "SECURELOG_DATA", Msg: "no witness data directory"}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create witness data directory: %w", err)
	}
	ks, err := keystore.OpenSoftware(filepath.Join(dir, "keys"))
	if err != nil {
		return nil, err
	}
	key, err := ks.GetKeyOrCreate(ctx, identity, keystore.Ed25519)
	if err != nil {
		return nil, fmt.Errorf("witness key %q: %w", identity, err)
	}
	if key.Algorithm() != keystore.Ed25519 {
		return nil, fmt.Errorf("witness key %q in %s is %s; a witness cosigns with ed25519", identity, ks.Dir(), key.Algorithm())
	}
	return key, nil
}

// witness builds a witness service; its resources close with the builder.
func (b *builder) witness(cfg WitnessConfig) (*witnessd.Server, Service, error) {
	srv, svc, _, err := b.witnessConn(cfg)
	return srv, svc, err
}

// witnessConn is witness that also returns its NATS connection (nil if none).
func (b *builder) witnessConn(cfg WitnessConfig) (*witnessd.Server, Service, *nats.Conn, error) {
	if cfg.Identity == "" {
		cfg.Identity = witnessd.DefaultIdentity
	}
	if cfg.Tlog != nil && cfg.Tlog.State != nil {
		b.cl.add(func() { _ = cfg.Tlog.State.Close() })
	}
	key, err := WitnessKey(b.ctx, cfg.DataDir, cfg.Identity)
	if err != nil {
		return nil, Service{}, nil, err
	}
	spec := cfg.Store
	if spec == "" {
		spec = "pebble:" + filepath.Join(cfg.DataDir, "log")
	}
	st, err := b.openStore(StoreConfig{Spec: spec, Create: true})
	if err != nil {
		return nil, Service{}, nil, fmt.Errorf("witness store: %w", err)
	}
	nc := cfg.Conn
	if nc == nil && (cfg.NATS.URL != "" || cfg.NATS.Server != nil) {
		if nc, err = b.connect(cfg.NATS, "securelog-witness"); err != nil {
			return nil, Service{}, nil, err
		}
	}
	var logStore store.Store
	if cfg.LogRPC.Transport != "" {
		rpc := cfg.LogRPC
		if rpc.Transport == TransportNATS {
			if nc == nil {
				return nil, Service{}, nil, &SettingError{Flag: "--nats", Env: "SECURELOG_NATS", Msg: "the log's store RPC over NATS needs a NATS connection"}
			}
			rpc.Conn = nc
		}
		rs, err := b.openRPC(rpc, "witness")
		if err != nil {
			return nil, Service{}, nil, fmt.Errorf("reach the log's store RPC: %w", err)
		}
		logStore = rs
	}
	srv, err := witnessd.New(witnessd.Config{
		Store: st, Trust: cfg.Trust, Key: key, Identity: cfg.Identity, LogStore: logStore,
		CheckInterval: cfg.CheckInterval, NATS: nc, Logger: b.log, Tlog: cfg.Tlog,
		// Refused, validly signed conflicts survive a restart.
		EvidenceDir: filepath.Join(cfg.DataDir, "evidence"),
	})
	if err != nil {
		return nil, Service{}, nil, err
	}
	svc := NewService("witness", func(ctx context.Context) error {
		return srv.Run(ctx, witnessd.RunConfig{Listen: cfg.Listen, Subject: cfg.Subject, OnListen: cfg.OnListen})
	})
	return srv, svc, nc, nil
}

// WitnessStarted describes a built witness to the caller before it runs.
type WitnessStarted struct {
	// TlogVKey is its C2SP cosignature/v1 vkey ("" = no tlog-witness).
	TlogVKey string
	// NATS reports whether it serves submissions over NATS.
	NATS bool
}

// RunWitness runs `securelog witness` until ctx ends; started, if set, is
// called once the witness is built, before it serves.
func RunWitness(ctx context.Context, cfg WitnessConfig, started func(WitnessStarted)) error {
	b := newBuilder(ctx, cfg.Logger)
	defer b.cl.close()
	srv, svc, err := b.witness(cfg)
	if err != nil {
		return err
	}
	if started != nil {
		started(WitnessStarted{TlogVKey: srv.TlogVerifierKey(), NATS: cfg.Conn != nil || cfg.NATS.URL != "" || cfg.NATS.Server != nil})
	}
	return RunAll(ctx, svc)
}
