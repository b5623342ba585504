package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/httpserver"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/secretfile"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
	"github.com/securelog/securelog/pkg/witnessd"
)

// UpConfig configures Up: every part in one process over an embedded
// nats-server, the default a new user starts with.
type UpConfig struct {
	// DataDir holds everything: nats/ (JetStream), store/ (pebble), keys/,
	// trust.json, store.heads.json (the head file of store/), kek.hex and witness/. Created if missing.
	DataDir string
	// NATSListen is the client listen address ("" = in-process only).
	NATSListen string
	// HTTPListen serves the store RPC, /healthz and /metrics ("" = none).
	HTTPListen string
	// HTTP sets the HTTP listener's limits (zero fields: httpserver's
	// defaults).
	HTTP httpserver.Config
	// Partition names the node's partition ("" = default); up registers
	// it in its broker's partition map.
	Partition string
	// SyncAlways sets JetStream's sync_interval to always.
	SyncAlways bool
	// StoreSpec overrides the store (default "pebble:<DataDir>/store").
	StoreSpec string
	// Pebble sizes the store's memory when it is a pebble store (zero
	// fields: the DefaultPebble* values).
	Pebble PebbleTuning
	// Identity is the signing key identity (pipeline.DefaultIdentity).
	Identity string
	// Keystore holds the signing key (default: software keys in
	// DataDir/keys, created on first start; a PKCS#11 key must exist).
	Keystore KeystoreConfig
	// TokensFile holds bearer tokens of the store RPC's HTTP listener
	// ("" = the generated DATA/auth/{reader,writer}.token; open with
	// Insecure). With Insecure the in-process workers use its first writer
	// token.
	TokensFile string
	// Insecure keeps today's open mode for experiments: no NATS users, no
	// store RPC tokens (unless TokensFile). By default up generates
	// credentials in DATA/auth (see EnsureCredentials) and every listener
	// requires them.
	Insecure bool
	// AllowReadableSecrets uses credential files other users can read,
	// with a warning, instead of refusing them.
	AllowReadableSecrets bool
	// LocalWitness runs a witness in the process (DataDir/witness) that
	// the signer submits every checkpoint to.
	LocalWitness bool
	// Witnesses are more witnesses the signer submits to:
	// http(s)://HOST[:PORT] or nats:SUBJECT (SignerConfig.Witnesses).
	Witnesses []string
	// Anchor re-establishes a missing head file (headanchor.go); its
	// WitnessURL may be LocalWitness: the local witness's heads.
	Anchor HeadAnchor
	// Ingester, Sealer and Signer tune the workers (their Conn, Log and
	// Store fields are filled in by Up).
	Ingester pipeline.IngesterConfig
	Sealer   pipeline.SealerConfig
	Signer   pipeline.SignerConfig
	// Tlog configures the transparency tree, its C2SP checkpoints (signed
	// with Identity's ed25519 key) and the tiles on the HTTP listener.
	Tlog TlogConfig
	// Extra, if set, runs after the ingester is ready (for example a test
	// witness); the witnesses it returns are added to the signer's.
	Extra  func(ctx context.Context, info Info) ([]pipeline.Witness, error)
	Logger *slog.Logger
}

// Info tells where a running node lives.
type Info struct {
	DataDir string
	// Partition is the node's partition (wire.DefaultPartition by default).
	Partition string
	NATSURL   string // "" when in-process only
	HTTPAddr  string // "" when no HTTP listener
	StoreSpec string
	Keystore  string // software or pkcs11
	KeysDir   string
	TrustFile string
	HeadFile  string
	KEKFile   string
	Identity  string
	// WitnessAddr is the local witness's HTTP address ("" = none);
	// WitnessSubject its NATS submission subject.
	WitnessAddr, WitnessSubject string
	// WitnessTrustFile holds the local witness's public key.
	WitnessTrustFile string
	// WitnessVKey is the local witness's C2SP cosignature/v1 verifier key
	// ("" = it is no tlog-witness: the tree is off or the key is not
	// ed25519).
	WitnessVKey string
	// Server is the embedded nats-server (for in-process connections).
	Server  *server.Server
	Metrics *pipeline.Metrics
	// AuthDir holds the generated credentials (DATA/auth); "" when the
	// node runs with Insecure.
	AuthDir string
}

// Connect opens a NATS connection to the node's server as the operator
// (RoleAdmin; anonymous with Insecure).
func (i Info) Connect(name string) (*nats.Conn, error) {
	return i.ConnectAs(RoleAdmin, name)
}

// ConnectAs opens a NATS connection to the node's server as role (one of
// Roles; anonymous with Insecure).
func (i Info) ConnectAs(role, name string) (*nats.Conn, error) {
	return i.Client(role).Connect(name)
}

// Client returns how role connects to the node's server.
func (i Info) Client(role string) NATSClient {
	c := NATSClient{URL: i.NATSURL, Server: i.Server}
	if i.AuthDir != "" {
		c.NKeyFile = filepath.Join(i.AuthDir, role+".nk")
	}
	return c
}

// PrepareData creates the data directory layout with a software signing
// key, the trust file and the KEK (first start only; later starts reuse
// them).
func PrepareData(dir, identity string) (Info, error) {
	ks, err := OpenKeystore(KeystoreConfig{Dir: filepath.Join(dir, "keys")})
	if err != nil {
		return Info{}, err
	}
	return prepareData(context.Background(), dir, identity, ks, TlogConfig{})
}

func prepareData(ctx context.Context, dir, identity string, ks *Keystore, tc TlogConfig) (Info, error) {
	info := Info{DataDir: dir, TrustFile: filepath.Join(dir, "trust.json"), Keystore: ks.Kind(),
		HeadFile: HeadFileFor("pebble:" + filepath.Join(dir, "store")), KEKFile: filepath.Join(dir, "kek.hex"), Identity: identity,
		StoreSpec: "pebble:" + filepath.Join(dir, "store")}
	if ks.Software() != nil {
		info.KeysDir = ks.Software().Dir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return info, fmt.Errorf("data directory: %w", err)
	}
	if _, err := ks.Key(ctx, identity, true); err != nil {
		return info, fmt.Errorf("signing key %q: %w", identity, err)
	}
	entries, err := ks.TrustEntries(ctx, identity)
	if err != nil {
		return info, err
	}
	if err := AddVKeys(entries, tc); err != nil {
		return info, err
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

// Up runs the embedded nats-server, the ingester with the store RPC (NATS
// and HTTP), the local witness, the sealer and the signer until ctx ends
// or one fails, then stops them all and releases their resources (RPC,
// connections, store, broker). started, if set, is called once everything
// runs.
func Up(ctx context.Context, cfg UpConfig, started func(Info)) error {
	b := newBuilder(ctx, cfg.Logger)
	defer b.cl.close()
	if cfg.Identity == "" {
		cfg.Identity = pipeline.DefaultIdentity
	}
	if p, err := wire.NewPartition(cfg.Partition); err == nil {
		cfg.Tlog = cfg.Tlog.forPartition(cfg.Identity, p)
	}
	if cfg.Keystore.Kind == "" || cfg.Keystore.Kind == KeystoreSoftware {
		if cfg.Keystore.Dir == "" {
			cfg.Keystore.Dir = filepath.Join(cfg.DataDir, "keys")
		}
	}
	ks, err := OpenKeystore(cfg.Keystore)
	if err != nil {
		return err
	}
	info, err := prepareData(ctx, cfg.DataDir, cfg.Identity, ks, cfg.Tlog)
	ks.Close()
	if err != nil {
		return err
	}
	if cfg.StoreSpec != "" {
		info.StoreSpec = cfg.StoreSpec
		if h := HeadFileFor(info.StoreSpec); h != "" {
			info.HeadFile = h
		}
	}
	// One head-file rule for every command (<store>.heads.json, issue 9
	// item 10): a data directory from before keeps its anchor.
	if moved, err := witness.MigrateHeadFile(filepath.Join(cfg.DataDir, "heads.json"), info.HeadFile); err != nil {
		return err
	} else if moved {
		b.log.Warn("head file moved to the location every command uses", "from", filepath.Join(cfg.DataDir, "heads.json"), "to", info.HeadFile)
	}
	if cfg.Anchor.WitnessURL == LocalWitness {
		if cfg.Anchor.heads, err = localWitnessHeads(ctx, cfg.DataDir, info.HeadFile); err != nil {
			return err
		}
		if cfg.Anchor.heads == nil {
			cfg.Anchor.WitnessURL = "" // the head file exists
		}
	}
	info.Metrics = b.metrics
	var token string
	if cfg.TokensFile != "" && cfg.Insecure {
		if token, err = writerToken(cfg.TokensFile); err != nil {
			return err
		}
	}
	upPart, err := wire.NewPartition(cfg.Partition)
	if err != nil {
		return &SettingError{Flag: "--partition", Env: "SECURELOG_PARTITION", Value: cfg.Partition, Msg: err.Error()}
	}
	var creds *Credentials
	var users []*server.NkeyUser
	if cfg.Insecure {
		b.log.Warn("INSECURE: securelog up runs without authentication (--insecure): anyone who can reach its NATS and HTTP listeners can publish events, and read and rewrite the store")
	} else {
		var created []string
		creds, created, err = EnsureCredentials(cfg.DataDir, secretfile.Policy{AllowReadable: cfg.AllowReadableSecrets, Logger: b.log,
			Hint: "or pass --allow-readable-secrets"})
		if err != nil {
			return err
		}
		if len(created) > 0 {
			b.log.Info("generated credentials", "dir", creds.Dir, "files", len(created))
		}
		info.AuthDir, users = creds.Dir, creds.NkeyUsers(upPart)
	}

	ns, err := pipeline.StartServer(pipeline.ServerConfig{Listen: cfg.NATSListen, StoreDir: filepath.Join(cfg.DataDir, "nats"), SyncAlways: cfg.SyncAlways,
		Logger: b.log, NkeyUsers: users})
	if err != nil {
		return err
	}
	b.cl.add(func() { ns.Shutdown(); ns.WaitForShutdown() })
	info.Server = ns
	if cfg.NATSListen != "" {
		info.NATSURL = ns.ClientURL()
	}
	// natsc returns how role connects in-process.
	natsc := func(role string) NATSClient {
		if creds == nil {
			return NATSClient{Server: ns}
		}
		return creds.Client(role, ns)
	}
	ic := IngesterConfig{Partition: cfg.Partition, Store: StoreConfig{Spec: info.StoreSpec, Pebble: cfg.Pebble}, HeadFile: info.HeadFile, SharedHeadFile: true, Anchor: cfg.Anchor, KEKFile: info.KEKFile,
		TrustFile: info.TrustFile, TokensFile: cfg.TokensFile, HTTPListen: cfg.HTTPListen, HTTP: cfg.HTTP, Worker: cfg.Ingester, Tlog: cfg.Tlog,
		// The signer below signs the segments the ingester closed and
		// verified without reading their entries again.
		closed: securelog.NewClosedSegments(0)}
	if creds != nil {
		// NATS: the users' permissions decide (no tokens in headers); HTTP:
		// the generated tokens unless a tokens file is given.
		ic.RPCByUser = true
		if cfg.TokensFile == "" {
			ic.Tokens = creds.Tokens()
		}
	}

	st, err := b.openStore(StoreConfig{Spec: info.StoreSpec, Create: true, Pebble: cfg.Pebble})
	if err != nil {
		return err
	}
	ncIn, err := b.connect(natsc(RoleIngester), "securelog-ingester")
	if err != nil {
		return err
	}
	// up owns its broker: it registers its partition in the map.
	part, _, err := b.partition(ncIn, cfg.Partition, true, 1)
	if err != nil {
		return err
	}
	info.Partition = part.Name()
	ip, err := b.ingester(ic, ncIn, st)
	if err != nil {
		return err
	}
	info.HTTPAddr = ip.httpAddr

	// The ingester (and HTTP) run first; the rest starts once it consumes.
	g := newGroup(ctx)
	defer func() { g.stop(); _ = g.wait() }()
	// What the builder still does (opening the store RPC, which waits
	// while nothing answers it) ends with the group: an ingester that
	// fails now stops up instead of leaving the others waiting for it.
	b.ctx = g.ctx
	g.run(b.services...)
	b.services = nil
	select {
	case <-ip.in.Started():
	case <-g.ctx.Done():
		return g.wait()
	}
	rpc := RPCClient{Transport: TransportNATS, Token: token, Subject: part.RPCSubject()}
	ws := cfg.Signer.Witnesses
	var localTlog tlogwitness.WitnessConfig // up's local witness as a C2SP tlog-witness
	// The signer submits to the local witness on its own connection (only
	// the signer may publish witness submissions).
	signNC, err := b.connect(natsc(RoleSigner), "securelog-signer")
	if err != nil {
		g.stop()
		return errors.Join(err, g.wait())
	}
	if cfg.LocalWitness {
		w, err := b.localWitness(g.ctx, natsc(RoleWitness), rpc, &info, cfg.Tlog)
		if err != nil {
			g.stop()
			return errors.Join(err, g.wait())
		}
		g.run(w.svc)
		select {
		case addr := <-w.listening:
			info.WitnessAddr = addr
		case <-g.ctx.Done():
			return g.wait()
		}
		if w.tlogVKey != "" {
			localTlog = tlogwitness.WitnessConfig{URL: "http://" + info.WitnessAddr, VKey: w.tlogVKey}
			info.WitnessVKey = w.tlogVKey
		}
		ws = append(ws, witnessd.NewNATSClient(signNC, ""))
	}
	if cfg.Extra != nil {
		extra, err := cfg.Extra(g.ctx, info)
		if err != nil {
			g.stop()
			return errors.Join(err, g.wait())
		}
		ws = append(ws, extra...)
	}
	sealNC, err := b.connect(natsc(RoleSealer), "securelog-sealer")
	if err == nil {
		err = b.sealer(SealerConfig{Partition: cfg.Partition, RPC: rpc, Worker: cfg.Sealer}, sealNC)
	}
	if err == nil {
		sc := cfg.Signer
		sc.Witnesses = ws
		// up's checkpointer runs over the in-process tree (below).
		err = b.signer(SignerConfig{Partition: cfg.Partition, RPC: rpc, Keystore: cfg.Keystore, Identity: cfg.Identity, TrustFile: info.TrustFile,
			HeadFile: info.HeadFile, Anchor: cfg.Anchor, KEKFile: info.KEKFile, Witnesses: cfg.Witnesses, Worker: sc, Tlog: TlogConfig{Off: true}, closed: ic.closed}, signNC)
	}
	if err == nil && ip.tlog != nil {
		var signed, witnessed tlog.CheckpointStore
		if signed, witnessed, err = metaCheckpoints(st); err == nil {
			tc := cfg.Tlog
			if localTlog.URL != "" {
				tc.Witnesses = append(slices.Clip(tc.Witnesses), localTlog)
			}
			err = b.checkpointer(checkpointerConfig{tree: ip.tlog.tree, signed: signed, witnessed: witnessed,
				keystore: cfg.Keystore, identity: cfg.Identity, tlog: tc, cp: &ip.tlog.cp, part: part}, ncIn)
		}
	}
	if err != nil {
		g.stop()
		return errors.Join(err, g.wait())
	}
	g.run(b.services...)
	if started != nil {
		started(info)
	}
	return g.wait()
}

// LocalTlogWitnessName is the cosigner name of up's local witness in its
// C2SP cosignatures.
const LocalTlogWitnessName = "localhost/securelog-witness"

// writerToken returns the first writer token of a tokens file.
func writerToken(path string) (string, error) {
	entries, err := rpcserver.LoadTokens(path)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.Role == rpcserver.RoleWriter {
			return e.Token, nil
		}
	}
	return "", fmt.Errorf("tokens file %s has no writer token: the in-process sealer and signer need one", path)
}

// witnessPart is a built witness service.
type witnessPart struct {
	svc       Service
	listening <-chan string
	tlogVKey  string // its cosignature/v1 vkey ("" = no tlog-witness)
}

// localWitness builds the witness of `securelog up` in DataDir/witness
// (the builder `securelog witness` uses): its own store and Ed25519 key,
// submissions over NATS (and HTTP on a free loopback port), cross-checks
// against the log's store RPC, evidence in witness/evidence.
func (b *builder) localWitness(ctx context.Context, natsc NATSClient, rpc RPCClient, info *Info, tc TlogConfig) (*witnessPart, error) {
	dir := filepath.Join(info.DataDir, "witness")
	key, err := WitnessKey(ctx, dir, witnessd.DefaultIdentity)
	if err != nil {
		return nil, err
	}
	trust, err := checkpoint.LoadTrustFile(info.TrustFile)
	if err != nil {
		return nil, err
	}
	if rpc.Transport == "" {
		rpc.Transport = TransportNATS
	}
	listening := make(chan string, 1)
	wcfg := WitnessConfig{DataDir: dir, Store: "pebble:" + filepath.Join(dir, "store"), Trust: trust, NATS: natsc,
		LogRPC: rpc, Listen: "127.0.0.1:0", OnListen: func(addr string) { listening <- addr }}
	// It is also the C2SP tlog-witness of the log's checkpoints (every
	// trust-file key with a vkey), its state in witness/tlog-witness.db.
	var logs []witnessd.TlogLog
	for _, e := range trust.Entries() {
		if e.VKey != "" && !tc.Off {
			logs = append(logs, witnessd.TlogLog{Origin: tc.origin(e.Identity), VerifierKeys: []string{e.VKey}})
		}
	}
	if len(logs) > 0 {
		heads, err := witnessd.OpenTreeHeads(ctx, filepath.Join(dir, "tlog-witness.db"))
		if err != nil {
			return nil, fmt.Errorf("local witness: tlog-witness state: %w", err)
		}
		wcfg.Tlog = &witnessd.TlogConfig{Name: LocalTlogWitnessName, Logs: logs, State: heads}
	}
	srv, svc, _, err := b.witnessConn(wcfg)
	if err != nil {
		return nil, err
	}
	info.WitnessTrustFile = filepath.Join(info.DataDir, "witness-trust.json")
	data, err := checkpoint.MarshalTrust([]checkpoint.TrustEntry{{Identity: witnessd.DefaultIdentity, Algorithm: keystore.Ed25519, PublicKey: key.PublicKey(), VKey: srv.TlogVerifierKey()}})
	if err == nil {
		err = os.WriteFile(info.WitnessTrustFile, data, 0o644)
	}
	if err != nil {
		return nil, err
	}
	info.WitnessSubject = witnessd.DefaultSubject
	return &witnessPart{svc: svc, listening: listening, tlogVKey: srv.TlogVerifierKey()}, nil
}

// Token returns the generated store RPC bearer token of role (reader or
// writer) for the HTTP listener; "" when the node runs with Insecure.
func (i Info) Token(role rpcserver.Role) (string, error) {
	if i.AuthDir == "" {
		return "", nil
	}
	b, err := secretfile.Read("token file", filepath.Join(i.AuthDir, string(role)+".token"), secretfile.Policy{})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
