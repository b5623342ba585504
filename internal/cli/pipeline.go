package cli

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/secretfile"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
)

// pipelineConfig is the one configuration file every pipeline command
// reads (--config FILE, TOML). Precedence: defaults < file < environment
// (SECURELOG_<FLAG>, e.g. SECURELOG_NATS, SECURELOG_MAX_BATCH; see env.go)
// < flags.
// deployments/*.toml are annotated examples.
type pipelineConfig struct {
	// Partition is the partition the worker serves ("" = default).
	Partition string           `toml:"partition"`
	NATS      natsSection      `toml:"nats"`
	JetStream jetstreamSection `toml:"jetstream"`
	Store     storeSection     `toml:"store"`
	RPC       rpcSection       `toml:"rpc"`
	Ingester  ingesterSection  `toml:"ingester"`
	Sealer    sealerSection    `toml:"sealer"`
	Signer    signerSection    `toml:"signer"`
	Up        upSection        `toml:"up"`
	Tlog      tlogSection      `toml:"tlog"`
}

// tlogSection configures the C2SP view: the tree, its checkpoints, the
// tlog-witness policy and who may read the tiles (node.TlogConfig).
type tlogSection struct {
	Off                bool          `toml:"off"`
	Origin             string        `toml:"origin"`
	CheckpointInterval time.Duration `toml:"checkpoint_interval"`
	// Witnesses are URL=VKEY pairs, comma separated.
	Witnesses string `toml:"witnesses"`
	Quorum    int    `toml:"quorum"`
	Public    bool   `toml:"public"`
	State     string `toml:"state"`
}

type natsSection struct {
	URL   string `toml:"url"`
	Creds string `toml:"creds"`
	// User and PasswordFile authenticate with a user of the server's
	// configuration (deployments/nats/auth.conf); the file holds only the
	// password.
	User         string `toml:"user"`
	PasswordFile string `toml:"password_file"`
}

type jetstreamSection struct {
	Replicas   int           `toml:"replicas"`
	Duplicates time.Duration `toml:"duplicates"`
	MaxAge     time.Duration `toml:"max_age"`
	Sync       string        `toml:"sync"`
}

type storeSection struct {
	Spec     string `toml:"spec"`
	HeadFile string `toml:"head_file"`
	KEKFile  string `toml:"kek_file"`
	// Pebble memory of the ingester's store (node.PebbleTuning), in MiB;
	// 0 takes node's defaults.
	PebbleCacheMiB    int `toml:"pebble_cache_mib"`
	PebbleMemTableMiB int `toml:"pebble_memtable_mib"`
	PebbleMemTables   int `toml:"pebble_memtables"`
	// ResetHeadFromWitness and AcceptMissingHead re-establish a missing
	// head file (--reset-head-from-witness, --accept-missing-head).
	ResetHeadFromWitness string `toml:"reset_head_from_witness"`
	AcceptMissingHead    bool   `toml:"accept_missing_head"`
}

// pebbleTuning is the ingester store's pebble sizing.
func (p *pipelineFlags) pebbleTuning() node.PebbleTuning {
	return node.PebbleTuning{CacheSize: int64(p.cfg.Store.PebbleCacheMiB) << 20,
		MemTableSize: int64(p.cfg.Store.PebbleMemTableMiB) << 20, MemTables: p.cfg.Store.PebbleMemTables}
}

type rpcSection struct {
	Listen string `toml:"listen"`
	// Advertise is the URL other partitions reach Listen at (partition
	// map; their query API forwards requests about this partition's
	// streams there).
	Advertise string `toml:"advertise"`
	// ForwardPlainHTTP lets the query API forward callers' credentials
	// to other partitions' plain-http, non-loopback advertised URLs.
	ForwardPlainHTTP bool   `toml:"forward_plain_http"`
	Subject          string `toml:"subject"`
	Tokens           string `toml:"tokens"`
	Transport        string `toml:"transport"`
	URL              string `toml:"url"`
	Token            string `toml:"token"`
	// TokenFile holds the bearer token (keeps it out of the config file
	// and the process list).
	TokenFile string `toml:"token_file"`
}

type ingesterSection struct {
	Durable    string        `toml:"durable"`
	Filter     string        `toml:"filter"`
	MaxBatch   int           `toml:"max_batch"`
	BatchWait  time.Duration `toml:"batch_wait"`
	MaxPayload int           `toml:"max_payload"`
	// AckWait is deprecated (accepted with a warning, no effect): the
	// ingester's consumer acknowledges nothing.
	AckWait time.Duration `toml:"ack_wait"`
}

type sealerSection struct {
	MaxEntries   int           `toml:"max_entries"`
	MaxAge       time.Duration `toml:"max_age"`
	ScanInterval time.Duration `toml:"scan_interval"`
}

type signerSection struct {
	Identity     string        `toml:"identity"`
	Keys         string        `toml:"keys"`
	Trust        string        `toml:"trust"`
	HeadFile     string        `toml:"head_file"`
	ScanInterval time.Duration `toml:"scan_interval"`
	Witnesses    string        `toml:"witnesses"`
}

type upSection struct {
	Data       string `toml:"data"`
	ListenNATS string `toml:"listen_nats"`
	// Listen is the HTTP address (store RPC, query API, /healthz,
	// /metrics); HTTP is its deprecated name "http".
	Listen    string `toml:"listen"`
	HTTP      string `toml:"http"`
	NoWitness bool   `toml:"no_witness"`
	// Insecure runs without authentication (experiments only).
	Insecure bool `toml:"insecure"`
}

func defaultPipelineConfig() pipelineConfig {
	return pipelineConfig{
		NATS:      natsSection{URL: nats.DefaultURL},
		JetStream: jetstreamSection{Replicas: 1, Duplicates: pipeline.DefaultDuplicates, MaxAge: pipeline.DefaultInMaxAge, Sync: "always"},
		RPC:       rpcSection{Transport: "nats"},
		Ingester: ingesterSection{Durable: pipeline.DefaultDurable, MaxBatch: pipeline.DefaultMaxBatch, BatchWait: pipeline.DefaultBatchWait,
			MaxPayload: pipeline.DefaultMaxPayload, AckWait: pipeline.DefaultAckWait},
		Sealer: sealerSection{MaxEntries: pipeline.DefaultMaxEntries, MaxAge: pipeline.DefaultMaxAge, ScanInterval: pipeline.DefaultSealerScan},
		Store: storeSection{PebbleCacheMiB: node.DefaultPebbleCacheSize >> 20, PebbleMemTableMiB: node.DefaultPebbleMemTableSize >> 20,
			PebbleMemTables: node.DefaultPebbleMemTables},
		Signer: signerSection{Identity: pipeline.DefaultIdentity, ScanInterval: pipeline.DefaultSignerScan},
		Up:     upSection{Data: "securelog-data", ListenNATS: "127.0.0.1:4222", Listen: "127.0.0.1:8080"},
		Tlog:   tlogSection{CheckpointInterval: tlog.DefaultCheckpointInterval},
	}
}

// pipelineFlags binds the configuration to a command's flags.
type pipelineFlags struct {
	cfg        pipelineConfig
	configFile string
	// natsPassword is read from cfg.NATS.PasswordFile by load.
	natsPassword string
	// credsRole, if set, is the role whose credentials of securelog up's
	// data directory the command uses when it is given none (creds.go);
	// nats is the client resolved by loadWithSecrets.
	credsRole string
	nats      *node.NATSClient
}

// add registers the named groups of flags ("nats", "store", ...).
func (p *pipelineFlags) add(c *cobra.Command, groups ...string) {
	p.cfg = defaultPipelineConfig()
	f := c.Flags()
	f.StringVar(&p.configFile, "config", "", "TOML configuration file (env SECURELOG_CONFIG)")
	for _, g := range groups {
		switch g {
		case "nats":
			// --nats URL is the global flag (env SECURELOG_NATS).
			f.StringVar(&p.cfg.NATS.Creds, "nats-creds", "", "NATS credentials file")
			f.StringVar(&p.cfg.NATS.User, "nats-user", "", "NATS user (with --nats-password-file)")
			f.StringVar(&p.cfg.NATS.PasswordFile, "nats-password-file", "", "file holding the password of --nats-user")
		case "jetstream":
			f.IntVar(&p.cfg.JetStream.Replicas, "replicas", p.cfg.JetStream.Replicas, "replicas of SECURELOG_IN when the ingester creates it")
			f.DurationVar(&p.cfg.JetStream.Duplicates, "duplicates", p.cfg.JetStream.Duplicates, "de-duplication window of SECURELOG_IN")
			f.DurationVar(&p.cfg.JetStream.MaxAge, "in-max-age", p.cfg.JetStream.MaxAge, "how long SECURELOG_IN keeps messages")
		case "rpc-server":
			f.StringVar(&p.cfg.RPC.Listen, "listen", "", "also serve the store RPC, the query API (/v1/), /healthz and /metrics on this HTTP address")
			aliasFlag(f, "http", "listen")
			f.StringVar(&p.cfg.RPC.Advertise, "advertise", "", "URL other partitions reach --listen at (recorded in the partition map for the query API's routing; default http://<listen address>)")
			f.BoolVar(&p.cfg.RPC.ForwardPlainHTTP, "forward-plain-http", false, "let the query API forward callers' credentials to other partitions' listeners advertised at plain http:// URLs off this machine (trusted networks only; default: refused unless https:// or loopback)")
			f.StringVar(&p.cfg.RPC.Subject, "rpc-subject", "", "NATS subject of the store RPC (default securelog.rpc)")
			f.StringVar(&p.cfg.RPC.Tokens, "tokens", "", "bearer tokens file for the store RPC")
		case "rpc-client":
			// --transport nats|http and --rpc-url are the global flags.
			f.StringVar(&p.cfg.RPC.Subject, "rpc-subject", "", "NATS subject of the store RPC (default securelog.rpc)")
			f.StringVar(&p.cfg.RPC.Token, "rpc-token", "", "bearer token for the store RPC")
			f.StringVar(&p.cfg.RPC.TokenFile, "rpc-token-file", "", "file holding the bearer token for the store RPC")
		case "ingester":
			f.StringVar(&p.cfg.Ingester.Durable, "durable", p.cfg.Ingester.Durable, "durable consumer name (one ingester per name)")
			f.StringVar(&p.cfg.Ingester.Filter, "filter", "", "subject filter of this ingester's partition (default securelog.in.>)")
			f.IntVar(&p.cfg.Ingester.MaxBatch, "max-batch", p.cfg.Ingester.MaxBatch, "most events per store batch")
			f.DurationVar(&p.cfg.Ingester.BatchWait, "batch-wait", p.cfg.Ingester.BatchWait, "wait to fill a batch after its first event")
			f.IntVar(&p.cfg.Ingester.MaxPayload, "max-payload", p.cfg.Ingester.MaxPayload, "largest accepted payload in bytes")
			f.IntVar(&p.cfg.Store.PebbleCacheMiB, "pebble-cache-mib", p.cfg.Store.PebbleCacheMiB, "pebble store: block cache in MiB")
			f.IntVar(&p.cfg.Store.PebbleMemTableMiB, "pebble-memtable-mib", p.cfg.Store.PebbleMemTableMiB, "pebble store: size of one memtable in MiB (fewer flushes and compactions when larger)")
			f.IntVar(&p.cfg.Store.PebbleMemTables, "pebble-memtables", p.cfg.Store.PebbleMemTables, "pebble store: memtables (one being written, the others flushing) at which writes stall")
		case "sealer":
			f.IntVar(&p.cfg.Sealer.MaxEntries, "max-entries", p.cfg.Sealer.MaxEntries, "close a segment at this many entries")
			f.DurationVar(&p.cfg.Sealer.MaxAge, "max-age", p.cfg.Sealer.MaxAge, "close a segment whose first entry is this old")
			f.DurationVar(&p.cfg.Sealer.ScanInterval, "seal-scan", p.cfg.Sealer.ScanInterval, "period of the store scan for open entries")
		case "signer":
			f.StringVar(&p.cfg.Signer.Identity, "identity", p.cfg.Signer.Identity, "signing key identity")
			f.DurationVar(&p.cfg.Signer.ScanInterval, "sign-scan", p.cfg.Signer.ScanInterval, "period of the scan for unsigned segments")
			f.StringVar(&p.cfg.Signer.Witnesses, "witnesses", "", "witness endpoints, comma separated: http(s)://host/ or nats:SUBJECT")
		case "tlog-read":
			f.BoolVar(&p.cfg.Tlog.Public, "tlog-public", false, "serve /checkpoint and /tile/ without a token (default: they need a reader token when --tokens is set)")
		case "tlog-sign":
			f.BoolVar(&p.cfg.Tlog.Off, "no-tlog", false, "no C2SP checkpoints (up: do not keep the RFC 6962 tree over the entries either, no /tile/)")
			f.StringVar(&p.cfg.Tlog.Origin, "tlog-origin", "", "C2SP checkpoint origin and note key name (default "+tlog.DefaultOriginPrefix+"IDENTITY)")
			f.DurationVar(&p.cfg.Tlog.CheckpointInterval, "checkpoint-interval", p.cfg.Tlog.CheckpointInterval, "shortest time between two C2SP checkpoints")
			f.StringVar(&p.cfg.Tlog.Witnesses, "tlog-witnesses", "", "C2SP tlog-witnesses every checkpoint is submitted to, comma separated: URL=VKEY (the witness's submission prefix and cosignature/v1 vkey)")
			f.IntVar(&p.cfg.Tlog.Quorum, "tlog-quorum", 0, "witness policy: a checkpoint is witnessed once this many tlog-witnesses cosigned it (0 = all); only witnessed checkpoints are served and reach the checkpointed level")
		case "tlog-state":
			f.StringVar(&p.cfg.Tlog.State, "tlog-state", "", "file keeping the latest signed C2SP checkpoint (default tlog-checkpoint.note beside the head file)")
		case "up":
			f.StringVar(&p.cfg.Up.Data, "data", p.cfg.Up.Data, "data directory (store, JetStream, keys, trust file)")
			f.StringVar(&p.cfg.Up.ListenNATS, "listen-nats", p.cfg.Up.ListenNATS, "NATS client listen address (\"\" = in-process only)")
			f.StringVar(&p.cfg.Up.Listen, "listen", p.cfg.Up.Listen, "HTTP address for the store RPC, the query API (/v1/), /healthz and /metrics (\"\" = none)")
			aliasFlag(f, "http", "listen")
			f.StringVar(&p.cfg.JetStream.Sync, "sync", p.cfg.JetStream.Sync, "JetStream fsync policy: always (every write) or default (every 2 min)")
			f.BoolVar(&p.cfg.Up.NoWitness, "no-witness", false, "do not run the local witness service")
			f.BoolVar(&p.cfg.Up.Insecure, "insecure", false, "INSECURE, for experiments: no NATS users and no store RPC tokens; anyone who reaches the listeners can publish and rewrite the store")
		}
	}
}

// load applies the file, the environment and the flags, in that order.
// The global flags (--nats, --transport, --rpc-url, --store, --keys,
// --trust, --kek, --head-file) override the file too.
func (p *pipelineFlags) load(c *cobra.Command, a *app) error {
	defer p.applyGlobals(a)
	changed := map[string]string{}
	c.Flags().Visit(func(f *pflag.Flag) { changed[f.Name] = f.Value.String() })
	cfgFile := p.configFile
	p.cfg = defaultPipelineConfig()
	if cfgFile != "" {
		md, err := toml.DecodeFile(cfgFile, &p.cfg)
		if err != nil {
			return usageErr("config %s: %v", cfgFile, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return usageErr("config %s: unknown keys %v", cfgFile, und)
		}
		if md.IsDefined("up", "http") {
			if md.IsDefined("up", "listen") {
				return usageErr("config %s: [up] http is the old name of [up] listen; keep only listen", cfgFile)
			}
			fmt.Fprintf(a.stderr, "securelog: warning: config %s: [up] http is deprecated, use [up] listen\n", cfgFile)
			p.cfg.Up.Listen = p.cfg.Up.HTTP
		}
		if md.IsDefined("ingester", "ack_wait") {
			fmt.Fprintf(a.stderr, "securelog: warning: config %s: [ingester] ack_wait is deprecated and has no effect (the ingester's consumer acknowledges nothing; its position is committed with the entries): remove it\n", cfgFile)
		}
	}
	var err error
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Name == "config" {
			return
		}
		if v, ok := changed[f.Name]; ok {
			err = f.Value.Set(v)
			return
		}
		if v, ok := a.fromEnv[f.Name]; ok {
			err = f.Value.Set(v)
		}
	})
	p.configFile = cfgFile
	return err
}

// loadWithSecrets is load followed by readSecrets: what a command that
// connects does (load alone only parses, so configurations can be checked
// on a machine without their secret files).
func (p *pipelineFlags) loadWithSecrets(c *cobra.Command, a *app) error {
	if err := p.load(c, a); err != nil {
		return err
	}
	if err := p.readSecrets(a.secretPolicy()); err != nil {
		return err
	}
	nc, err := a.withCreds(p.natsClient(), p.credsRole)
	if err != nil {
		return err
	}
	p.nats = &nc
	return nil
}

// readSecrets reads the NATS password and the RPC token from their files
// (refusing files other users can read unless pol allows them).
func (p *pipelineFlags) readSecrets(pol secretfile.Policy) error {
	if f := p.cfg.NATS.PasswordFile; f != "" {
		if p.cfg.NATS.User == "" {
			return usageErr("[nats] password_file %s without [nats] user", f)
		}
		pw, err := readSecretFileWith(f, pol)
		if err != nil {
			return fmt.Errorf("[nats] password_file: %w", err)
		}
		p.natsPassword = pw
	}
	if f := p.cfg.RPC.TokenFile; f != "" {
		if p.cfg.RPC.Token != "" {
			return usageErr("[rpc] token and token_file are both set; keep one")
		}
		tok, err := readSecretFileWith(f, pol)
		if err != nil {
			return fmt.Errorf("[rpc] token_file: %w", err)
		}
		p.cfg.RPC.Token = tok
	}
	return nil
}

// readSecretFileWith returns a secret file's content without the trailing
// newline; an empty secret is an error, and so is a file other users can
// read unless pol allows it.
func readSecretFileWith(path string, pol secretfile.Policy) (string, error) {
	b, err := secretfile.Read("secret file", path, pol)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

func (p *pipelineFlags) applyGlobals(a *app) {
	set := func(dst *string, vals ...string) {
		for _, v := range vals {
			if v != "" {
				*dst = v
				return
			}
		}
	}
	set(&p.cfg.NATS.URL, a.natsURL)
	set(&p.cfg.Partition, a.partition)
	set(&p.cfg.RPC.Transport, a.transport)
	set(&p.cfg.RPC.URL, a.rpcURL)
	set(&p.cfg.Store.Spec, a.storeSpec)
	set(&p.cfg.Signer.Keys, a.keysDir)
	set(&p.cfg.Signer.Trust, a.trustFile)
	set(&p.cfg.Store.KEKFile, a.kekFile)
	set(&p.cfg.Signer.HeadFile, a.headFile)
	set(&p.cfg.Store.HeadFile, a.headFile)
	set(&p.cfg.Store.ResetHeadFromWitness, a.resetHead)
	if a.acceptMissingHead {
		p.cfg.Store.AcceptMissingHead = true
	}
	if p.cfg.RPC.Token == "" {
		set(&p.cfg.RPC.TokenFile, p.cfg.RPC.TokenFile, a.tokenFile) // the global --token-file
	}
}

// infoLogger logs at info level (debug with -v) to stderr.
func (a *app) infoLogger() *slog.Logger {
	level := slog.LevelInfo
	if a.verbose {
		level = slog.LevelDebug
	}
	return a.newLogger(level)
}

// newLogger logs to stderr at level in the --log-format (text or json).
func (a *app) newLogger(level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if a.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(a.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts))
}

// natsClient is how this command connects to NATS.
func (p *pipelineFlags) natsClient() node.NATSClient {
	if p.nats != nil {
		return *p.nats
	}
	return node.NATSClient{URL: p.cfg.NATS.URL, Creds: p.cfg.NATS.Creds, User: p.cfg.NATS.User, Password: p.natsPassword}
}

// connect dials NATS with the configured URL and credentials.
func (p *pipelineFlags) connect(name string) (*nats.Conn, error) {
	return p.natsClient().Connect(name)
}

// rpcClient is how this command reaches the store RPC.
func (p *pipelineFlags) rpcClient() node.RPCClient {
	return node.RPCClient{Transport: p.cfg.RPC.Transport, URL: p.cfg.RPC.URL, Subject: p.cfg.RPC.Subject,
		Token: p.cfg.RPC.Token, NATS: p.natsClient()}
}

// headAnchor is how a missing head file is re-established ([store]
// reset_head_from_witness and accept_missing_head, the global flags
// --reset-head-from-witness and --accept-missing-head); it warns when the
// operator accepts the store as it is.
func (p *pipelineFlags) headAnchor(a *app) node.HeadAnchor {
	s := p.cfg.Store
	if s.AcceptMissingHead {
		a.logger.Warn("--accept-missing-head: a missing head file is re-established from the store as it is; an older copy of the store (a rollback) would not be noticed")
	}
	return node.HeadAnchor{WitnessURL: s.ResetHeadFromWitness, Accept: s.AcceptMissingHead}
}

func (p *pipelineFlags) streamConfig() pipeline.StreamConfig {
	return pipeline.StreamConfig{Replicas: p.cfg.JetStream.Replicas, Duplicates: p.cfg.JetStream.Duplicates, MaxAge: p.cfg.JetStream.MaxAge}
}

func (p *pipelineFlags) ingesterConfig() pipeline.IngesterConfig {
	i := p.cfg.Ingester
	return pipeline.IngesterConfig{Durable: i.Durable, FilterSubject: i.Filter, MaxBatch: i.MaxBatch, BatchWait: i.BatchWait,
		MaxPayload: i.MaxPayload, AckWait: i.AckWait, Streams: p.streamConfig()}
}

func (p *pipelineFlags) sealerConfig() pipeline.SealerConfig {
	s := p.cfg.Sealer
	return pipeline.SealerConfig{MaxEntries: s.MaxEntries, MaxAge: s.MaxAge, ScanInterval: s.ScanInterval}
}

// tlogConfig is the C2SP configuration: the [tlog] section, its flags and
// variables. A tlog-witness is URL=VKEY: the vkey is what follows the
// first '=' after which a valid cosignature/v1 vkey starts.
func (p *pipelineFlags) tlogConfig(cmd *cobra.Command) (node.TlogConfig, error) {
	t := p.cfg.Tlog
	tc := node.TlogConfig{Off: t.Off, Origin: t.Origin, Interval: t.CheckpointInterval, Quorum: t.Quorum, Public: t.Public, StateFile: t.State}
	for _, w := range strings.Split(t.Witnesses, ",") {
		if w = strings.TrimSpace(w); w == "" {
			continue
		}
		wc, err := parseTlogWitness(w)
		if err != nil {
			return tc, usageErr("%s %q: %v", settingName(cmd, "tlog-witnesses"), w, err)
		}
		tc.Witnesses = append(tc.Witnesses, wc)
	}
	if tc.Quorum < 0 || tc.Quorum > len(tc.Witnesses) && len(tc.Witnesses) > 0 {
		return tc, usageErr("%s %d: want 0..%d (the number of --tlog-witnesses)", settingName(cmd, "tlog-quorum"), tc.Quorum, len(tc.Witnesses))
	}
	return tc, nil
}

// parseTlogWitness splits URL=VKEY.
func parseTlogWitness(s string) (tlogwitness.WitnessConfig, error) {
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			continue
		}
		if v, err := tlogwitness.NewVerifier(s[i+1:]); err == nil {
			if _, ok := v.(*tlogwitness.CosignatureVerifier); !ok {
				return tlogwitness.WitnessConfig{}, fmt.Errorf("%q is a log key, want the witness's cosignature/v1 vkey", s[i+1:])
			}
			u := s[:i]
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				return tlogwitness.WitnessConfig{}, fmt.Errorf("URL %q is not http(s)", u)
			}
			return tlogwitness.WitnessConfig{URL: u, VKey: s[i+1:]}, nil
		}
	}
	return tlogwitness.WitnessConfig{}, fmt.Errorf("want URL=VKEY with the witness's cosignature/v1 vkey")
}
