package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/witness"

	// Store backends selectable by spec.
	_ "github.com/securelog/securelog/pkg/store/filestore"
	_ "github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	_ "github.com/securelog/securelog/pkg/store/sqlitestore"
)

// Transport kinds of RPCClient.Transport.
const (
	TransportNATS = "nats"
	TransportHTTP = "http"
)

// RPCClient says how to reach a store RPC server (the remote store).
type RPCClient struct {
	// Transport is TransportNATS or TransportHTTP.
	Transport string
	// URL is the HTTP endpoint (TransportHTTP).
	URL string
	// Subject is the NATS request subject ("" = wire.DefaultNATSSubject).
	Subject string
	// Token is the bearer token of HTTP calls.
	Token string
	// CAFile is a PEM bundle trusted for https.
	CAFile string
	// NATS dials the NATS server when Conn is nil (TransportNATS).
	NATS NATSClient
	// Conn, if set, carries NATS calls (it stays open on Close).
	Conn *nats.Conn
}

// Open returns an initialised remote store over the RPC.
func (c RPCClient) Open(ctx context.Context, handshake string) (*remote.Store, error) {
	var t transport.Transport
	var err error
	switch c.Transport {
	case "", TransportNATS:
		cfg := transport.Config{NATSConn: c.Conn, Subject: c.Subject, Token: c.Token}
		if c.Conn == nil {
			cfg.NATSURL = c.NATS.url()
			if cfg.NATSOptions, err = c.NATS.options("securelog-rpc-client"); err != nil {
				return nil, err
			}
		}
		t, err = transport.NewNATS(cfg)
	case TransportHTTP:
		if c.URL == "" {
			return nil, &SettingError{Flag: "--rpc-url", Env: "SECURELOG_RPC_URL", Msg: "no store RPC URL for --transport http"}
		}
		t, err = transport.NewHTTP(transport.Config{URL: c.URL, Token: c.Token, CAFile: c.CAFile})
	default:
		return nil, &SettingError{Flag: "--transport", Env: "SECURELOG_TRANSPORT", Value: c.Transport, Msg: "want nats or http"}
	}
	if err != nil {
		return nil, err
	}
	st := remote.New(t)
	if handshake == "" {
		handshake = "securelog"
	}
	if err := st.Init(ctx, handshake); err != nil {
		st.Close()
		return nil, fmt.Errorf("store RPC: %w", err)
	}
	return st, nil
}

// StoreConfig names a store: "BACKEND:CONFIG" (pebble, sqlite, file,
// memory, or remote:HANDSHAKE over RPC).
type StoreConfig struct {
	// Spec is BACKEND:CONFIG.
	Spec string
	// Create allows a local store that does not exist yet (its parent
	// directory is created); otherwise opening a missing one is an error.
	Create bool
	// RPC reaches the server of a remote: store.
	RPC RPCClient
	// Pebble sizes a pebble store's memory (zero fields take the
	// DefaultPebble* values); other backends ignore it.
	Pebble PebbleTuning
}

// Memory of a pebble store opened by OpenStore (the ingester's store in
// `securelog up` and `securelog ingester`), sized for a server that
// ingests continuously: larger memtables mean fewer flushes and far less
// compaction work per event (pebble starts with a 256 KiB memtable and
// doubles it up to this size, so a small or idle store stays small).
// Pebble's memory is about cache + memtable size × memtables.
const (
	// DefaultPebbleCacheSize is the block cache size in bytes.
	DefaultPebbleCacheSize = 64 << 20
	// DefaultPebbleMemTableSize is the size of one memtable in bytes.
	DefaultPebbleMemTableSize = 64 << 20
	// DefaultPebbleMemTables is how many memtables (one mutable, the
	// rest waiting for their flush) may exist before writes stall.
	DefaultPebbleMemTables = 4
)

// PebbleTuning sizes a pebble store's block cache and memtables
// (pebblestore.WithCacheSize, pebblestore.WithMemTables).
type PebbleTuning struct {
	// CacheSize is the block cache in bytes (0 = DefaultPebbleCacheSize).
	CacheSize int64
	// MemTableSize is one memtable in bytes (0 = DefaultPebbleMemTableSize).
	MemTableSize int64
	// MemTables is the memtable count at which writes stall
	// (0 = DefaultPebbleMemTables).
	MemTables int
}

// options returns the pebblestore options of t, defaults filled in.
func (t PebbleTuning) options() ([]pebblestore.Option, error) {
	bad := func(flag string, v int64, msg string) error {
		return &SettingError{Flag: "--" + flag, Env: "SECURELOG_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_")), Value: fmt.Sprint(v), Msg: msg}
	}
	switch {
	case t.CacheSize < 0:
		return nil, bad("pebble-cache-mib", t.CacheSize>>20, "must not be negative")
	case t.MemTableSize < 0 || t.MemTableSize >= 4<<30:
		return nil, bad("pebble-memtable-mib", t.MemTableSize>>20, "want a size below 4096 MiB (0 = default)")
	case t.MemTables < 0 || t.MemTables == 1:
		return nil, bad("pebble-memtables", int64(t.MemTables), "want at least 2 (0 = default)")
	}
	if t.CacheSize == 0 {
		t.CacheSize = DefaultPebbleCacheSize
	}
	if t.MemTableSize == 0 {
		t.MemTableSize = DefaultPebbleMemTableSize
	}
	if t.MemTables == 0 {
		t.MemTables = DefaultPebbleMemTables
	}
	return []pebblestore.Option{pebblestore.WithCacheSize(t.CacheSize), pebblestore.WithMemTables(t.MemTableSize, t.MemTables)}, nil
}

// LocalPath returns the filesystem path of a local store spec, or "".
func LocalPath(spec string) (backend, path string) {
	b, cfg, err := store.ParseSpec(spec)
	if err != nil {
		return "", ""
	}
	switch b {
	case "pebble", "sqlite", "file":
		if cfg == ":memory:" {
			return b, ""
		}
		return b, cfg
	}
	return b, ""
}

// HeadFileFor returns the default head file of a store spec: beside a
// local store, "" otherwise.
func HeadFileFor(spec string) string {
	if _, path := LocalPath(spec); path != "" {
		return witness.PathForStore(path)
	}
	return ""
}

// OpenStore opens the store cfg names, exactly once per call: the one
// store opener of every command.
func OpenStore(ctx context.Context, cfg StoreConfig) (store.Store, error) {
	if cfg.Spec == "" {
		return nil, &SettingError{Flag: "--store", Env: "SECURELOG_STORE", Msg: "no store (e.g. pebble:./data/log)"}
	}
	backend, config, err := store.ParseSpec(cfg.Spec)
	if err != nil {
		return nil, &SettingError{Flag: "--store", Env: "SECURELOG_STORE", Value: cfg.Spec, Msg: err.Error()}
	}
	if backend == "remote" {
		return cfg.RPC.Open(ctx, config)
	}
	if !slices.Contains(store.Backends(), backend) {
		return nil, &SettingError{Flag: "--store", Env: "SECURELOG_STORE", Value: cfg.Spec,
			Msg: fmt.Sprintf("unknown backend %q (known backends: %s)", backend, strings.Join(store.Backends(), ", "))}
	}
	if _, path := LocalPath(cfg.Spec); path != "" {
		if !cfg.Create {
			if _, err := os.Stat(path); err != nil {
				return nil, fmt.Errorf("store %q: %w (nothing has been written there yet?)", cfg.Spec, err)
			}
		} else if err := os.MkdirAll(filepath.Dir(filepath.Clean(path)), 0o700); err != nil {
			return nil, fmt.Errorf("create store directory: %w", err)
		}
	}
	if backend == "pebble" {
		opts, err := cfg.Pebble.options()
		if err != nil {
			return nil, err
		}
		st := pebblestore.New(opts...)
		if err := st.Init(ctx, config); err != nil {
			_ = st.Close()
			return nil, CheckStoreInUse(cfg.Spec, fmt.Errorf("open store %q: %w", cfg.Spec, err))
		}
		return st, nil
	}
	st, err := store.Open(ctx, cfg.Spec) // its errors name the spec
	if err != nil {
		return nil, CheckStoreInUse(cfg.Spec, err)
	}
	return st, nil
}

// StoreInUseError reports a local store that another process holds open
// (e.g. 'securelog up' or an ingester running on it).
type StoreInUseError struct {
	Spec string
	Err  error
}

func (e *StoreInUseError) Error() string {
	return fmt.Sprintf("store %s is in use by another process (is 'securelog up' or a worker running on it?); "+
		"reach the store through that process instead: --store remote:x --transport http --rpc-url http://ADDR/ "+
		"(its --listen address) or --store remote:x --transport nats --nats URL", e.Spec)
}

func (e *StoreInUseError) Unwrap() error { return e.Err }

// CheckStoreInUse turns the lock error of opening the local store spec
// that another process holds (Pebble's LOCK file: EAGAIN from flock, or
// "lock held by current process"; SQLite's "database is locked") into a
// *StoreInUseError; other errors are returned unchanged.
func CheckStoreInUse(spec string, err error) error {
	if err == nil {
		return nil
	}
	var inUse *StoreInUseError
	if errors.As(err, &inUse) {
		return err
	}
	msg := err.Error()
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) ||
		strings.Contains(msg, "resource temporarily unavailable") || strings.Contains(msg, "lock held by current process") ||
		strings.Contains(msg, "database is locked") {
		return &StoreInUseError{Spec: spec, Err: err}
	}
	return err
}
