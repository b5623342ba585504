package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/console"
	"github.com/securelog/securelog/pkg/httpserver"
	"github.com/securelog/securelog/pkg/jswait"
	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/queryapi"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witnessd"
)

// builder accumulates the services of one process and the resources they
// hold; close releases the resources once every service has returned.
type builder struct {
	ctx      context.Context
	log      *slog.Logger
	metrics  *pipeline.Metrics
	cl       closers
	services []Service
	health   healthChecks // the logs' integrity halts, for /healthz
	// waits are the JetStream requests the parts wait for (no meta
	// leader, no answer), for the logs and /healthz.
	waits jswait.Status
}

func newBuilder(ctx context.Context, log *slog.Logger) *builder {
	if log == nil {
		log = slog.Default()
	}
	return &builder{ctx: ctx, log: log, metrics: pipeline.NewMetrics()}
}

// connect dials NATS; the connection closes with the builder.
func (b *builder) connect(c NATSClient, name string) (*nats.Conn, error) {
	nc, err := c.Connect(name)
	if err != nil {
		return nil, err
	}
	b.cl.add(nc.Close)
	return nc, nil
}

// openStore opens a store; it closes with the builder.
func (b *builder) openStore(cfg StoreConfig) (store.Store, error) {
	st, err := OpenStore(b.ctx, cfg)
	if err != nil {
		return nil, err
	}
	b.cl.add(func() { _ = st.Close() })
	return st, nil
}

// openRPC opens the remote store a split worker reads over rpc; it
// closes with the builder. Workers start in any order, and a fresh
// cluster carries a subscription to its other servers only once its
// routes are up: while the store RPC's server is not up (storeNotUpYet),
// openRPC waits for the ingester, logging it, until the builder's
// context ends. Other failures are returned at once.
func (b *builder) openRPC(rpc RPCClient, handshake string) (*remote.Store, error) {
	const logEvery = 30 * time.Second
	var since, logged time.Time
	backoff := 100 * time.Millisecond
	for {
		st, err := rpc.Open(b.ctx, handshake)
		if err == nil {
			if !since.IsZero() {
				b.log.Info("the store RPC answers", "worker", handshake, "waited", time.Since(since).Round(time.Millisecond))
			}
			b.cl.add(func() { _ = st.Close() })
			return st, nil
		}
		if !storeNotUpYet(err) || b.ctx.Err() != nil {
			return nil, err
		}
		now := time.Now()
		if since.IsZero() {
			since = now
		}
		if now.Sub(logged) >= logEvery {
			logged = now
			b.log.Warn("waiting for the store RPC: nothing answers it yet (is the partition's ingester running, and may this NATS user reach its subject?)",
				"worker", handshake, "subject", rpc.Subject, "waiting", now.Sub(since).Round(time.Second))
		}
		t := time.NewTimer(backoff)
		select {
		case <-b.ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (waiting for the store RPC: %w)", b.ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// storeNotUpYet reports whether err says that the store RPC's server is
// not up yet: no responders on its NATS subject, nothing listening on its
// HTTP port, or its listener answering 503 (an ingester's does until it
// has JetStream).
func storeNotUpYet(err error) bool {
	var se *transport.StatusError
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.As(err, &se) && se.Status == http.StatusServiceUnavailable
}

// alerts returns the OnAlert hook of a log, publishing on nc.
func (b *builder) alerts(nc *nats.Conn, source string) func(string, error) {
	a := pipeline.Alerter{Conn: nc, Logger: b.log, Metrics: b.metrics, Source: source}
	return a.LogAlert
}

// IngesterConfig configures the ingester part: the single writer of its
// store, which also serves the store RPC on NATS and, with HTTPListen, on
// HTTP with /healthz and /metrics.
type IngesterConfig struct {
	NATS NATSClient
	// Partition is the partition this ingester serves ("" = default); it
	// must be in the partition map (securelog partitions add).
	Partition string
	Store     StoreConfig
	// HeadFile is the anti-rollback head file ("" = beside a local store).
	HeadFile string
	// Anchor re-establishes a missing head file (headanchor.go).
	Anchor HeadAnchor
	// SharedHeadFile says that the signer advances this same head file
	// (securelog up). Otherwise (a split deployment: the signer keeps its
	// own) a missing head file does not halt the ingester unless Anchor
	// asks to re-establish it; its store is anchored by its mark
	// (pipeline.MarkBucket).
	SharedHeadFile bool
	// KEKFile is the payload sealing KEK ("" = none); Token unwraps a
	// token-wrapped one.
	KEKFile string
	Token   TokenConfig
	// TrustFile, if set, verifies checkpoint signatures on open.
	TrustFile string
	// RPCSubject is the NATS subject of the store RPC ("" = default).
	RPCSubject string
	// TokensFile holds the bearer tokens of the store RPC ("" = open).
	TokensFile string
	// Tokens are the bearer tokens when TokensFile is "" (securelog up's
	// generated ones).
	Tokens []rpcserver.TokenEntry
	// RPCByUser authorises the store RPC on NATS by the NATS user (the
	// subject it may publish on: wire.ReadSubject for readers) instead of
	// by bearer tokens, which every subscriber of the subject could read
	// (issue 9 item 4); tokens then apply to HTTP only. RunIngester sets it
	// when the ingester authenticates to NATS.
	RPCByUser bool
	// HTTPListen serves the RPC, /healthz and /metrics ("" = no HTTP).
	HTTPListen string
	// HTTP sets the listener's limits (zero fields: httpserver's defaults).
	HTTP httpserver.Config
	// HTTPAdvertise is the URL other partitions reach HTTPListen at,
	// recorded in the partition map so that their query API can forward
	// requests about this partition's streams (default http://<listen
	// address>, with the machine's host name for an unspecified address).
	HTTPAdvertise string
	// ForwardPlainHTTP lets the query API forward callers' credentials
	// (bearer token, cookies) to other partitions' listeners advertised
	// at plain http:// URLs that are not loopback addresses; without it
	// such a request is refused (403, code forward-refused): the token
	// would cross the network in clear text. For a trusted network only.
	ForwardPlainHTTP bool
	// Worker tunes the ingester (its Log, Conn, Logger and Metrics are
	// filled in here).
	Worker pipeline.IngesterConfig
	// Tlog configures the transparency tree committed with the entries.
	Tlog   TlogConfig
	Logger *slog.Logger

	// closed is shared with the signer of the same process and store
	// (securelog up; securelog.ClosedSegments).
	closed *securelog.ClosedSegments
}

// ingesterPart is a built ingester with its RPC server.
type ingesterPart struct {
	in       *pipeline.Ingester
	rpc      *rpcserver.Server
	httpAddr string
	tlog     *tlogPart // nil when the tree is off
}

// partition returns the partition called name ("" = default) and the
// partition map on nc's JetStream. A name the map does not know is an
// *wire.UnknownPartitionError naming the known ones, unless register is
// set (securelog up registers its own partition).
func (b *builder) partition(nc *nats.Conn, name string, register bool, replicas int) (wire.Partition, *partition.Map, error) {
	if name == "" {
		name = wire.DefaultPartition
	}
	p, err := wire.NewPartition(name)
	if err != nil {
		return p, nil, &SettingError{Flag: "--partition", Env: "SECURELOG_PARTITION", Value: name, Msg: err.Error()}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return p, nil, err
	}
	// Workers wait for the cluster (bounded requests, retried, logged):
	// a cluster without a meta leader does not answer.
	wait := jswait.Config{Logger: b.log, Status: &b.waits}
	m, err := partition.Open(b.ctx, js, partition.OpenConfig{Create: register, Replicas: replicas, WaitForCluster: true, Wait: wait})
	if err != nil {
		return p, nil, err
	}
	if register {
		if err := jswait.Do(b.ctx, wait, "add partition "+name+" to the partition map", func(ctx context.Context) error {
			_, err := m.Add(ctx, name)
			var bad *wire.InvalidError
			if errors.As(err, &bad) {
				return jswait.Permanent(err)
			}
			return err
		}); err != nil {
			return p, nil, err
		}
	}
	if err := jswait.Do(b.ctx, wait, "look partition "+name+" up in the partition map", func(ctx context.Context) error {
		err := m.Check(ctx, name)
		var unknown *wire.UnknownPartitionError
		var bad *wire.InvalidError
		if errors.As(err, &unknown) || errors.As(err, &bad) {
			return jswait.Permanent(err)
		}
		return err
	}); err != nil {
		return p, nil, err
	}
	return p, m, nil
}

// ingester builds the ingester over st and serves the store RPC on nc.
func (b *builder) ingester(cfg IngesterConfig, nc *nats.Conn, st store.Store) (*ingesterPart, error) {
	// The listener serves /healthz and /metrics at once: while the
	// ingester waits for JetStream (below, and in its Run) /healthz says
	// what it waits for. The full handler replaces this one once built.
	var early *earlyHTTP
	if cfg.HTTPListen != "" {
		starting := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		})
		var err error
		early, err = serveEarly(&b.cl, "http", cfg.HTTPListen, HTTPHandler(starting, func() error {
			if err := b.waits.Err(); err != nil {
				return err
			}
			return errStarting
		}, b.metrics.Registry()), b.log, cfg.HTTP)
		if err != nil {
			return nil, err
		}
	}
	part, pmap, err := b.partition(nc, cfg.Partition, false, cfg.Worker.Streams.Replicas)
	if err != nil {
		return nil, err
	}
	opts := securelog.Options{Logger: b.log, HeadFile: cfg.HeadFile, OnAlert: b.alerts(nc, "log"), Closed: cfg.closed}
	if opts.HeadFile == "" {
		opts.HeadFile = HeadFileFor(cfg.Store.Spec)
	}
	if err := cfg.Anchor.Apply(&opts); err != nil {
		return nil, err
	}
	opts.HeadFileAdvancedElsewhere = !cfg.SharedHeadFile && !cfg.Anchor.set()
	if opts.WitnessHead != nil && cfg.TrustFile == "" {
		return nil, &SettingError{Flag: "--trust", Env: "SECURELOG_TRUST",
			Msg: FlagResetHeadFromWitness + " needs the trust file to verify the witness's heads"}
	}
	if cfg.KEKFile != "" {
		kek, err := LoadKEK(cfg.KEKFile, cfg.Token)
		if err != nil {
			return nil, err
		}
		opts.KEK = kek
	}
	if cfg.TrustFile != "" {
		t, err := checkpoint.LoadTrustFile(cfg.TrustFile)
		if err != nil {
			return nil, err
		}
		opts.Trust = t
	}
	var tp *tlogPart
	if !cfg.Tlog.Off {
		tree, err := tlog.NewTree(st)
		if err != nil {
			return nil, err
		}
		opts.CommitHook, tp = tree, &tlogPart{tree: tree, nc: nc, part: part}
		if err := b.serveTree(nc, tree, part); err != nil {
			return nil, err
		}
	}
	l := securelog.New(st, opts)
	if err := l.OpenInitialized(b.ctx); err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	w := cfg.Worker
	w.Log, w.Conn, w.Logger, w.Metrics, w.Partition = l, nc, b.log, b.metrics, part
	if w.Streams.Wait.Status == nil {
		w.Streams.Wait.Status = &b.waits
	}
	if pmap.HasBucket() {
		w.Map = pmap // else the ingester creates the bucket
	}
	in, err := pipeline.NewIngester(w)
	if err != nil {
		return nil, err
	}
	rpc, err := rpcserver.New(st, rpcserver.Config{TokensFile: cfg.TokensFile, NATSByUser: cfg.RPCByUser}, b.log)
	if err != nil {
		return nil, err
	}
	if cfg.TokensFile == "" && len(cfg.Tokens) > 0 {
		rpc.SetTokens(cfg.Tokens)
	}
	if !cfg.RPCByUser && rpc.AuthEnabled() {
		b.log.Warn("store RPC on NATS is authorised by bearer tokens, which every subscriber of its subject can read: connect the ingester to NATS as a user so that the users' permissions decide")
	}
	rpcSubject := cfg.RPCSubject
	if rpcSubject == "" || rpcSubject == wire.DefaultNATSSubject {
		rpcSubject = part.RPCSubject() // the default's name means the default
	}
	sub, err := rpc.ServeNATS(context.WithoutCancel(b.ctx), nc, rpcSubject)
	if err != nil {
		return nil, fmt.Errorf("store RPC on NATS: %w", err)
	}
	// Stopped after every service has returned (the sealer and signer
	// call it until then), before the store closes.
	b.cl.add(func() {
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		_ = rpc.StopNATS(sctx, sub)
	})
	p := &ingesterPart{in: in, rpc: rpc, tlog: tp}
	b.services = append(b.services, NewService("ingester", in.Run))
	if early != nil {
		ready := func() error {
			if err := b.waits.Err(); err != nil {
				return err
			}
			if !in.Ready() || !b.health.ok() {
				return errStarting
			}
			return nil
		}
		// The query API (/v1/) shares the listener and the RPC's tokens.
		qh, err := queryapi.New(queryapi.Config{Store: st, Log: l.Reader, CanOpen: cfg.KEKFile != "",
			Authenticate: rpc.Authenticate, NATS: nc, Logger: b.log})
		if err != nil {
			return nil, err
		}
		b.cl.add(qh.Close)
		canRead := func(header string) bool { _, err := rpc.Authenticate(header); return err == nil }
		// The web console (/ui/, pkg/console) is served beside it.
		// Query API requests about another partition's streams are
		// forwarded to it; the stream list merges every partition's.
		qr := newQueryRouter(part, qh, nc, pmap, b.log, cfg.ForwardPlainHTTP)
		h := withTiles(HTTPHandler(console.Wrap(qr.Wrap(rpc.Handler())), ready, b.metrics.Registry(), rpc.Registry(), partitionInfo(part)), tp, cfg.Tlog.Public, canRead)
		h = withPartitionHeader(h, part)
		early.set(h)
		svc, addr := early.svc, early.addr
		// Follow streams end when the listener stops (Shutdown waits for
		// handlers in flight).
		serve := svc.run
		svc.run = func(ctx context.Context) error {
			stop := context.AfterFunc(ctx, qh.Close)
			defer stop()
			return serve(ctx)
		}
		p.httpAddr = addr
		b.services = append(b.services, svc)
		advertise, err := advertiseHTTP(cfg.HTTPAdvertise, addr)
		if err != nil {
			return nil, fmt.Errorf("HTTP address to advertise: %w", err)
		}
		b.services = append(b.services, NewService("http-register", func(ctx context.Context) error {
			registerHTTP(ctx, in, nc, part, advertise, b.log)
			return nil
		}))
	}
	return p, nil
}

// RunIngester runs `securelog ingester`: the ingester, its store RPC on
// NATS and, with HTTPListen, on HTTP.
func RunIngester(ctx context.Context, cfg IngesterConfig) error {
	b := newBuilder(ctx, cfg.Logger)
	defer b.cl.close()
	cfg.Store.Create = true
	if cfg.NATS.authenticates() {
		cfg.RPCByUser = true
	}
	st, err := b.openStore(cfg.Store)
	if err != nil {
		return err
	}
	nc, err := b.connect(cfg.NATS, "securelog-ingester")
	if err != nil {
		return err
	}
	p, err := b.ingester(cfg, nc, st)
	if err != nil {
		return err
	}
	b.log.Info("ingester starting", "store", cfg.Store.Spec, "nats", cfg.NATS.Redacted(), "http", p.httpAddr)
	return RunAll(ctx, b.services...)
}

// SealerConfig configures the sealer part, which reaches the store
// through its RPC.
type SealerConfig struct {
	NATS NATSClient
	// Partition is the partition whose segments it closes ("" = default).
	Partition string
	RPC       RPCClient
	Worker    pipeline.SealerConfig
	Logger    *slog.Logger
}

func (b *builder) sealer(cfg SealerConfig, nc *nats.Conn) error {
	part, _, err := b.partition(nc, cfg.Partition, false, 0)
	if err != nil {
		return err
	}
	rpc := cfg.RPC
	if rpc.Transport == "" || rpc.Transport == TransportNATS {
		rpc.Conn = nc
		if rpc.Subject == "" || rpc.Subject == wire.DefaultNATSSubject {
			rpc.Subject = part.RPCSubject()
		}
	}
	st, err := b.openRPC(rpc, "sealer")
	if err != nil {
		return err
	}
	w := cfg.Worker
	w.Conn, w.Store, w.Logger, w.Metrics, w.Partition = nc, st, b.log, b.metrics, part
	s, err := pipeline.NewSealer(w)
	if err != nil {
		return err
	}
	b.services = append(b.services, NewService("sealer", s.Run))
	return nil
}

// RunSealer runs `securelog sealer`.
func RunSealer(ctx context.Context, cfg SealerConfig) error {
	b := newBuilder(ctx, cfg.Logger)
	defer b.cl.close()
	nc, err := b.connect(cfg.NATS, "securelog-sealer")
	if err != nil {
		return err
	}
	if err := b.sealer(cfg, nc); err != nil {
		return err
	}
	return RunAll(ctx, b.services...)
}

// SignerConfig configures the signer part: it signs sealed segments with
// the keystore's key Identity (software or PKCS#11), advances the head
// file, submits checkpoints to witnesses and publishes them.
type SignerConfig struct {
	NATS NATSClient
	// Partition is the partition whose segments it signs ("" = default).
	Partition string
	RPC       RPCClient
	Keystore  KeystoreConfig
	// Identity is the signing key (pipeline.DefaultIdentity if empty).
	Identity string
	// CreateKey creates a missing software key (securelog up).
	CreateKey bool
	// TrustFile verifies existing signatures ("" = none).
	TrustFile string
	// HeadFile is required: signing refuses a rolled-back store with it.
	HeadFile string
	// Anchor re-establishes a missing head file (headanchor.go).
	Anchor HeadAnchor
	// KEKFile and Token: as IngesterConfig.
	KEKFile string
	Token   TokenConfig
	// Witnesses are endpoints: http(s)://HOST[:PORT] or nats:SUBJECT.
	Witnesses []string
	// Worker tunes the signer (ScanInterval; extra Witnesses are kept).
	Worker pipeline.SignerConfig
	// Tlog configures the C2SP checkpointer the signer runs over the
	// ingester's tree (read over NATS): origin, interval, tlog-witnesses
	// and policy, state file. Off: no C2SP checkpoints.
	Tlog   TlogConfig
	Logger *slog.Logger

	// closed is the in-process ingester's record of the segments it
	// closed (securelog up): the signer signs those without reading
	// their entries again (securelog.ClosedSegments).
	closed *securelog.ClosedSegments
}

func (b *builder) signer(cfg SignerConfig, nc *nats.Conn) error {
	if cfg.HeadFile == "" {
		return &SettingError{Flag: "--head-file", Env: "SECURELOG_HEAD_FILE", Msg: "no head file (the signer refuses rolled-back stores with it)"}
	}
	if cfg.Identity == "" {
		cfg.Identity = pipeline.DefaultIdentity
	}
	ws := cfg.Worker.Witnesses
	for _, w := range cfg.Witnesses {
		switch w = strings.TrimSpace(w); {
		case w == "":
		case strings.HasPrefix(w, "http://"), strings.HasPrefix(w, "https://"):
			ws = append(ws, witnessd.NewHTTPClient(w))
		case strings.HasPrefix(w, "nats:"):
			ws = append(ws, witnessd.NewNATSClient(nc, strings.TrimPrefix(w, "nats:")))
		default:
			return &SettingError{Flag: "--witnesses", Env: "SECURELOG_WITNESSES", Value: w, Msg: "want http(s)://HOST[:PORT] or nats:SUBJECT"}
		}
	}
	ks, err := OpenKeystore(cfg.Keystore)
	if err != nil {
		return err
	}
	b.cl.add(func() { _ = ks.Close() })
	if _, err := ks.Key(b.ctx, cfg.Identity, cfg.CreateKey); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	part, _, err := b.partition(nc, cfg.Partition, false, 0)
	if err != nil {
		return err
	}
	rpc := cfg.RPC
	if rpc.Transport == "" || rpc.Transport == TransportNATS {
		rpc.Conn = nc
		if rpc.Subject == "" || rpc.Subject == wire.DefaultNATSSubject {
			rpc.Subject = part.RPCSubject()
		}
	}
	st, err := b.openRPC(rpc, "signer")
	if err != nil {
		return err
	}
	opts := securelog.Options{Signer: ks, HeadFile: cfg.HeadFile, Logger: b.log, OnAlert: b.alerts(nc, "signer"), Closed: cfg.closed}
	if err := cfg.Anchor.Apply(&opts); err != nil {
		return err
	}
	if cfg.TrustFile != "" {
		t, err := checkpoint.LoadTrustFile(cfg.TrustFile)
		if err != nil {
			return err
		}
		opts.Trust = t
	}
	if cfg.KEKFile != "" {
		if opts.KEK, err = LoadKEK(cfg.KEKFile, cfg.Token); err != nil {
			return err
		}
	}
	l := securelog.New(st, opts)
	if err := l.OpenInitialized(b.ctx); err != nil {
		return fmt.Errorf("open signer log: %w", err)
	}
	b.health.add(l.Healthy) // a halted stream makes up's /healthz not ok
	w := cfg.Worker
	w.Conn, w.Log, w.Identity, w.Witnesses, w.Logger, w.Metrics, w.Partition = nc, l, cfg.Identity, ws, b.log, b.metrics, part
	s, err := pipeline.NewSigner(w)
	if err != nil {
		return err
	}
	b.log.Info("signer starting", "identity", cfg.Identity, "keystore", ks.Kind(), "witnesses", len(ws), "head_file", cfg.HeadFile)
	b.services = append(b.services, NewService("signer", s.Run))
	if !cfg.Tlog.Off {
		signed, witnessed := fileCheckpoints(cfg.Tlog, cfg.HeadFile)
		return b.checkpointer(checkpointerConfig{tree: natsTree{nc: nc, timeout: LatestTimeout, part: part}, signed: signed, witnessed: witnessed,
			keystore: cfg.Keystore, identity: cfg.Identity, tlog: cfg.Tlog.forPartition(cfg.Identity, part), part: part}, nc)
	}
	return nil
}

// RunSigner runs `securelog signer`.
func RunSigner(ctx context.Context, cfg SignerConfig) error {
	b := newBuilder(ctx, cfg.Logger)
	defer b.cl.close()
	nc, err := b.connect(cfg.NATS, "securelog-signer")
	if err != nil {
		return err
	}
	if err := b.signer(cfg, nc); err != nil {
		return err
	}
	return RunAll(ctx, b.services...)
}

// PartitionHeader names the partition of the process that answered an
// HTTP request (/healthz, /metrics, the store RPC).
const PartitionHeader = "Securelog-Partition"

// withPartitionHeader sets PartitionHeader on every response of h.
func withPartitionHeader(h http.Handler, p wire.Partition) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(PartitionHeader, p.Name())
		h.ServeHTTP(w, r)
	})
}

// partitionInfo is the registry of securelog_partition_info{partition}
// = 1: the partition every other metric of this process belongs to.
func partitionInfo(p wire.Partition) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "securelog_partition_info", Help: "The partition this process serves (label partition).",
		ConstLabels: prometheus.Labels{"partition": p.Name()}})
	g.Set(1)
	reg.MustRegister(g)
	return reg
}
