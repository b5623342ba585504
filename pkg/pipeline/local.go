package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/remote"

	// Backends for LocalConfig.StoreSpec.
	_ "github.com/securelog/securelog/pkg/store/memory"
	_ "github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// LocalConfig configures RunLocal: every worker in one process over an
// embedded nats-server, the default a new user starts with.
type LocalConfig struct {
	// DataDir holds everything: nats/ (JetStream), store/ (pebble), keys/,
	// trust.json, heads.json and kek.hex. Created if missing.
	DataDir string
	// NATSListen is the client listen address ("" = in-process only).
	NATSListen string
	// HTTPListen serves the store RPC, /healthz and /metrics ("" = none).
	HTTPListen string
	// SyncAlways sets JetStream's sync_interval to always.
	SyncAlways bool
	// StoreSpec overrides the store (default "pebble:<DataDir>/store").
	StoreSpec string
	// Identity is the signing key identity (DefaultIdentity).
	Identity string
	// Ingester, Sealer and Signer tune the workers (their Conn, Log and
	// Store fields are filled in by RunLocal).
	Ingester IngesterConfig
	Sealer   SealerConfig
	Signer   SignerConfig
	// Extra, if set, is started after the pipeline with its NATS URL and
	// run until ctx ends (for example the witness service); it may add
	// witnesses for the signer by returning them.
	Extra  func(ctx context.Context, info LocalInfo) ([]Witness, error)
	Logger *slog.Logger
}

// LocalInfo tells where a running local pipeline lives.
type LocalInfo struct {
	DataDir   string
	NATSURL   string // "" when in-process only
	HTTPAddr  string // "" when no HTTP listener
	StoreSpec string
	KeysDir   string
	TrustFile string
	HeadFile  string
	KEKFile   string
	Identity  string
	// Server is the embedded nats-server (for in-process connections).
	Server  *server.Server
	Metrics *Metrics
}

// Connect opens a NATS connection to the local server.
func (i LocalInfo) Connect(name string) (*nats.Conn, error) {
	if i.NATSURL != "" {
		return nats.Connect(i.NATSURL, nats.Name(name), nats.MaxReconnects(-1))
	}
	return nats.Connect("", nats.Name(name), nats.InProcessServer(i.Server))
}

// PrepareData creates the data directory layout, the signing key and the
// trust file (first start only; later starts reuse them) and the KEK.
func PrepareData(dir, identity string) (LocalInfo, error) {
	info := LocalInfo{DataDir: dir, KeysDir: filepath.Join(dir, "keys"), TrustFile: filepath.Join(dir, "trust.json"),
		HeadFile: filepath.Join(dir, "heads.json"), KEKFile: filepath.Join(dir, "kek.hex"), Identity: identity,
		StoreSpec: "pebble:" + filepath.Join(dir, "store")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return info, fmt.Errorf("data directory: %w", err)
	}
	ks, err := keystore.OpenSoftware(info.KeysDir)
	if err != nil {
		return info, err
	}
	if _, err := ks.GetKeyOrCreate(context.Background(), identity, keystore.Ed25519); err != nil {
		return info, fmt.Errorf("signing key %q: %w", identity, err)
	}
	keys, err := ks.List()
	if err != nil {
		return info, err
	}
	var entries []checkpoint.TrustEntry
	for _, k := range keys {
		entries = append(entries, checkpoint.TrustEntry{Identity: k.Identity, Algorithm: k.Algorithm, PublicKey: k.PublicKey})
	}
	data, err := checkpoint.MarshalTrust(entries)
	if err != nil {
		return info, err
	}
	if err := os.WriteFile(info.TrustFile, data, 0o644); err != nil {
		return info, fmt.Errorf("trust file: %w", err)
	}
	if _, err := os.Stat(info.KEKFile); errors.Is(err, os.ErrNotExist) {
		if err := seal.GenerateKEKFile(info.KEKFile); err != nil {
			return info, err
		}
	}
	return info, nil
}

// RunLocal runs the embedded nats-server, the store RPC (NATS and HTTP),
// the ingester, the sealer and the signer until ctx ends, then shuts them
// down in order (workers, RPC, broker, store). started, if set, is called
// once everything runs.
func RunLocal(ctx context.Context, cfg LocalConfig, started func(LocalInfo)) (err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Identity == "" {
		cfg.Identity = DefaultIdentity
	}
	info, err := PrepareData(cfg.DataDir, cfg.Identity)
	if err != nil {
		return err
	}
	if cfg.StoreSpec != "" {
		info.StoreSpec = cfg.StoreSpec
	}
	metrics := NewMetrics()
	info.Metrics = metrics
	var cleanup []func()
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()

	ns, err := StartServer(ServerConfig{Listen: cfg.NATSListen, StoreDir: filepath.Join(cfg.DataDir, "nats"), SyncAlways: cfg.SyncAlways})
	if err != nil {
		return err
	}
	cleanup = append(cleanup, func() { ns.Shutdown(); ns.WaitForShutdown() })
	info.Server = ns
	if cfg.NATSListen != "" {
		info.NATSURL = ns.ClientURL()
	}
	conn := func(name string) (*nats.Conn, error) {
		nc, err := info.Connect(name)
		if err == nil {
			cleanup = append(cleanup, nc.Close)
		}
		return nc, err
	}

	// The store and the ingester's log.
	if b, path, _ := storePath(info.StoreSpec); b == "pebble" && path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
	}
	st, err := store.Open(ctx, info.StoreSpec)
	if err != nil {
		return err
	}
	cleanup = append(cleanup, func() { _ = st.Close() })
	kek, err := seal.LoadKEK(info.KEKFile)
	if err != nil {
		return err
	}
	trust, err := checkpoint.LoadTrustFile(info.TrustFile)
	if err != nil {
		return err
	}
	ncIn, err := conn("securelog-ingester")
	if err != nil {
		return err
	}
	alerter := Alerter{Conn: ncIn, Logger: log, Metrics: metrics, Source: "log"}
	onAlert := func(stream string, e error) { alerter.Alert(stream, "log-alert", 0, e.Error()) }
	inLog := securelog.New(st, securelog.Options{HeadFile: info.HeadFile, KEK: kek, Trust: trust, Logger: log, OnAlert: onAlert})
	if err := inLog.OpenInitialized(ctx); err != nil {
		return fmt.Errorf("open log: %w", err)
	}

	// Store RPC on NATS and HTTP.
	rpc, err := rpcserver.New(st, rpcserver.Config{}, log)
	if err != nil {
		return err
	}
	ncRPC, err := conn("securelog-rpc")
	if err != nil {
		return err
	}
	rpcSub, err := rpc.ServeNATS(context.WithoutCancel(ctx), ncRPC, wire.DefaultNATSSubject)
	if err != nil {
		return err
	}
	cleanup = append(cleanup, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rpc.StopNATS(sctx, rpcSub)
	})
	// Workers.
	icfg := cfg.Ingester
	icfg.Log, icfg.Conn, icfg.Logger, icfg.Metrics = inLog, ncIn, log, metrics
	ingester, err := NewIngester(icfg)
	if err != nil {
		return err
	}
	if cfg.HTTPListen != "" {
		ln, err := net.Listen("tcp", cfg.HTTPListen)
		if err != nil {
			return fmt.Errorf("http listen %s: %w", cfg.HTTPListen, err)
		}
		info.HTTPAddr = ln.Addr().String()
		srv := &http.Server{Handler: HTTPHandler(rpc.Handler(), ingester.Ready,
			metrics.Registry(), rpc.Registry()), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		cleanup = append(cleanup, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		})
	}

	ncSeal, err := conn("securelog-sealer")
	if err != nil {
		return err
	}
	sealStore, err := remoteOver(ctx, ncSeal)
	if err != nil {
		return err
	}
	scfg := cfg.Sealer
	scfg.Conn, scfg.Store, scfg.Logger, scfg.Metrics = ncSeal, sealStore, log, metrics
	sealer, err := NewSealer(scfg)
	if err != nil {
		return err
	}
	ncSign, err := conn("securelog-signer")
	if err != nil {
		return err
	}
	signStore, err := remoteOver(ctx, ncSign)
	if err != nil {
		return err
	}
	ks, err := keystore.OpenSoftware(info.KeysDir)
	if err != nil {
		return err
	}
	signAlert := Alerter{Conn: ncSign, Logger: log, Metrics: metrics, Source: "signer"}
	signLog := securelog.New(signStore, securelog.Options{Signer: ks, Trust: trust, HeadFile: info.HeadFile, KEK: kek, Logger: log,
		OnAlert: func(stream string, e error) { signAlert.Alert(stream, "log-alert", 0, e.Error()) }})
	if err := signLog.OpenInitialized(ctx); err != nil {
		return fmt.Errorf("open signer log: %w", err)
	}

	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(wctx); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	run("ingester", ingester.Run)
	// Wait until the ingester's consumer exists before anyone publishes.
	for !ingester.Ready() {
		select {
		case err := <-errc: // the ingester failed before it was ready
			stopWorkers()
			wg.Wait()
			return err
		default:
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			stopWorkers()
			wg.Wait()
			return nil
		}
	}
	if cfg.Extra != nil {
		ws, err := cfg.Extra(wctx, info)
		if err != nil {
			stopWorkers()
			wg.Wait()
			return err
		}
		cfg.Signer.Witnesses = append(cfg.Signer.Witnesses, ws...)
	}
	gcfg := cfg.Signer
	gcfg.Conn, gcfg.Log, gcfg.Identity, gcfg.Logger, gcfg.Metrics = ncSign, signLog, cfg.Identity, log, metrics
	signer, err := NewSigner(gcfg)
	if err != nil {
		stopWorkers()
		wg.Wait()
		return err
	}
	run("sealer", sealer.Run)
	run("signer", signer.Run)
	if started != nil {
		started(info)
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	// Policy workers first, then the ingester (it finishes its batch).
	stopWorkers()
	wg.Wait()
	return err
}

// remoteOver returns a remote store over the NATS RPC on nc.
func remoteOver(ctx context.Context, nc *nats.Conn) (store.Store, error) {
	t, err := transport.NewNATS(transport.Config{NATSConn: nc, Subject: wire.DefaultNATSSubject})
	if err != nil {
		return nil, err
	}
	st := remote.New(t)
	if err := st.Init(ctx, "pipeline"); err != nil {
		return nil, fmt.Errorf("store RPC handshake: %w", err)
	}
	return st, nil
}

func storePath(spec string) (backend, path string, err error) {
	b, c, err := store.ParseSpec(spec)
	return b, c, err
}

// HTTPHandler serves GET /healthz (200 "ok" once ready, else 503),
// GET /metrics (the given registries) and the store RPC for every other
// request.
func HTTPHandler(rpc http.Handler, ready func() bool, regs ...*prometheus.Registry) http.Handler {
	var g prometheus.Gatherers
	for _, r := range regs {
		g = append(g, r)
	}
	metrics := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			switch r.URL.Path {
			case "/healthz":
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				if ready != nil && !ready() {
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = io.WriteString(w, "starting")
					return
				}
				_, _ = io.WriteString(w, "ok")
				return
			case "/metrics":
				metrics.ServeHTTP(w, r)
				return
			}
		}
		rpc.ServeHTTP(w, r)
	})
}
