// Package cli implements the securelog command line: the cobra commands,
// the one configuration layer (flag > SECURELOG_* environment > TOML
// config file > default, env.go), the output contract (--json, exit codes,
// output.go), and the client commands that work on a store directly. The
// long-running commands (up, the workers, the witness) turn their
// configuration into internal/node values and let node build and run the
// parts; every program in cmd/ is cli.Run.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"

	// Store backends selectable with --store BACKEND:CONFIG.
	_ "github.com/securelog/securelog/pkg/store/filestore"
	_ "github.com/securelog/securelog/pkg/store/memory"
	_ "github.com/securelog/securelog/pkg/store/pebblestore"
	_ "github.com/securelog/securelog/pkg/store/remote"
	_ "github.com/securelog/securelog/pkg/store/sqlitestore"
)

// app holds the global flags and I/O of one invocation.
type app struct {
	storeSpec  string
	keysDir    string
	kekFile    string
	trustFile  string
	headFile   string
	noHeadFile bool
	// resetHead (--reset-head-from-witness) and acceptMissingHead
	// (--accept-missing-head) re-establish a missing head file
	// (node.HeadAnchor).
	resetHead         string
	acceptMissingHead bool
	jsonOut           bool
	verbose           bool
	logFormat         string
	tokenFile         string
	transport         string
	rpcURL            string
	natsURL           string
	keystoreFlag      string
	// credsFile (--creds), dataDirFlag (--data-dir) and allowReadable
	// (--allow-readable-secrets): see creds.go.
	credsFile     string
	dataDirFlag   string
	allowReadable bool
	partition     string

	// lookupEnv reads the environment (os.LookupEnv; nil = none);
	// fromEnv and envVar record the flags it set and from which variable.
	lookupEnv func(string) (string, bool)
	fromEnv   map[string]string
	envVar    map[string]string

	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	logger *slog.Logger
}

// Main runs the CLI with args (without the program name) and returns the
// process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: os.LookupEnv}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	var started bool
	trackStart(root, &started)
	cmd, err := root.ExecuteContextC(ctx)
	return a.reportError(err, cmd, started, args)
}

// Run is the whole main of every program in cmd/: it runs `securelog
// PREFIX ARGS` (ARGS: the process's arguments) with the process's standard
// streams, cancelled by SIGINT or SIGTERM, and exits with its status.
// cmd/securelog passes no prefix, cmd/ingester "ingester", and so on.
func Run(prefix ...string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, append(prefix, os.Args[1:]...), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "securelog",
		Short: "securelog: a tamper-evident audit log",
		Long: `securelog chains audit events per stream, seals them into Merkle segments and signs
checkpoints, so an auditor with only public keys can prove nothing was altered,
removed, reordered or forked.

Stores are chosen with --store BACKEND:CONFIG, for example pebble:./data/log
(the default backend), sqlite:./log.db, file:./log.jsonl, memory:x, or
remote:HANDSHAKE with --transport http --rpc-url URL / --transport nats --nats URL
(a server started with 'securelog serve-rpc').
Keys live in a key directory (--keys); verification reads a trust file (--trust)
of public keys that 'securelog keys export' writes.

Output (docs/cli.md): with --json a command prints one JSON document (JSON lines
for streams of results) with hashes as lowercase hex; errors go to stderr, with
--json as {"error":{"code":"...","message":"..."}}.
Exit status: 0 ok, 1 the operation or a verification failed, 2 usage error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       readVersion().String(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.warnDeprecated(cmd)
			if err := a.applyEnv(cmd); err != nil {
				return err
			}
			level := slog.LevelWarn
			if a.verbose {
				level = slog.LevelDebug
			}
			if a.jsonOut && !cmd.Flags().Changed("log-format") && a.envVar["log-format"] == "" {
				a.logFormat = "json" // with --json, stderr is machine-readable too
			}
			if a.logFormat != "text" && a.logFormat != "json" {
				return usageErr("%s %q: want text or json", settingName(cmd, "log-format"), a.logFormat)
			}
			a.logger = a.newLogger(level)
			slog.SetDefault(a.logger) // libraries that log through the default logger follow --verbose
			a.warnSecretFlags(cmd)
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.storeSpec, "store", "", "store as BACKEND:CONFIG, e.g. pebble:./data/log (env SECURELOG_STORE)")
	pf.StringVar(&a.keysDir, "keys", "", "software keystore directory (env SECURELOG_KEYS)")
	pf.StringVar(&a.kekFile, "kek", "", "file with the 32-byte payload sealing key, raw or 64 hex chars (env SECURELOG_KEK_FILE)")
	pf.StringVar(&a.trustFile, "trust", "", "trust file: JSON list of {identity, algorithm, public_key} (env SECURELOG_TRUST)")
	pf.StringVar(&a.headFile, "head-file", "", "anti-rollback head file (default: beside a local store, <store>.heads.json) (env SECURELOG_HEAD_FILE)")
	pf.BoolVar(&a.noHeadFile, "no-head-file", false, "do not use a head file")
	pf.StringVar(&a.resetHead, "reset-head-from-witness", "", "when the head file is missing but the store has signed segments, re-establish it from this witness's heads (http(s)://HOST[:PORT]; up: local = its local witness), after checking the store holds them (env SECURELOG_RESET_HEAD_FROM_WITNESS)")
	pf.BoolVar(&a.acceptMissingHead, "accept-missing-head", false, "when the head file is missing but the store has signed segments, accept the store as it is and re-establish the head file from it (an older copy of the store would go unnoticed) (env SECURELOG_ACCEPT_MISSING_HEAD)")
	pf.BoolVar(&a.jsonOut, "json", false, "print results as JSON")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log debug details to stderr")
	pf.StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text or json (env SECURELOG_LOG_FORMAT; json when --json is given)")
	pf.StringVar(&a.keystoreFlag, "keystore", "", "signing keystore: software (keys in --keys DIR) or pkcs11 (token from SECURELOG_PKCS11_MODULE/_TOKEN/_PIN_FILE) (env SECURELOG_KEYSTORE)")
	pf.StringVar(&a.transport, "transport", "", "transport of a remote store: http or nats (env SECURELOG_TRANSPORT)")
	pf.StringVar(&a.rpcURL, "rpc-url", "", "RPC server URL for --transport http (env SECURELOG_RPC_URL or SECURE_LOG_RPC_URL)")
	pf.StringVar(&a.tokenFile, "token-file", "", "file holding the bearer token for a remote store's RPC (env SECURELOG_TOKEN_FILE; or the token itself in SECURELOG_RPC_TOKEN)")
	pf.StringVar(&a.natsURL, "nats", "", "NATS server URL (env SECURELOG_NATS)")
	pf.StringVar(&a.credsFile, "creds", "", "NATS credentials: an nkey seed file (DATA/auth/<role>.nk of 'securelog up') or a NATS .creds file (env SECURELOG_CREDS; default: the data directory's)")
	pf.StringVar(&a.dataDirFlag, "data-dir", "", "data directory of 'securelog up' whose credentials (DATA/auth) client commands use (default "+DefaultDataDir+") (env SECURELOG_DATA_DIR)")
	pf.BoolVar(&a.allowReadable, "allow-readable-secrets", false, "use key, KEK, token, password and credential files other users can read (with a warning) instead of refusing them")
	pf.StringVar(&a.partition, "partition", "", "partition: the one a worker or up serves (default \"default\"); for client commands, overrides the partition map's routing (env SECURELOG_PARTITION)")

	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(a.appendCmd(), a.readCmd(), a.headCmd(), a.verifyChainCmd(), a.closeSegmentCmd(),
		a.segmentsCmd(), a.signSegmentCmd(), a.keysCmd(), a.proveCmd(), a.verifyProofCmd(), a.verifyCmd(),
		a.streamsCmd(), a.kekCmd(), a.openPayloadCmd(), a.exportCmd(), a.checkpointCmd())
	for _, c := range extraCommands {
		root.AddCommand(c(a))
	}
	groupCommands(root)
	return root
}

// extraCommands lets other files of this package (and build variants) add
// commands without editing rootCmd.
var extraCommands []func(*app) *cobra.Command

// localPath returns the filesystem path of a local store spec, or "".
func localPath(spec string) (backend, path string) { return node.LocalPath(spec) }

// settingErr turns a missing or bad setting into a usage error (exit 2).
func settingErr(err error) error {
	var se *node.SettingError
	if errors.As(err, &se) {
		return &ExitError{Code: ExitUsage, Kind: CodeUsage, Err: err}
	}
	return err
}

// storeConfig is the store of --store with the remote transport flags and
// the credentials (creds.go): a remote store is reached as the operator
// (securelog up's admin NATS user, its writer token over loopback HTTP).
func (a *app) storeConfig(create bool) (node.StoreConfig, error) {
	tok, err := a.rpcToken()
	if err != nil {
		return node.StoreConfig{}, err
	}
	nc, err := a.withCreds(node.NATSClient{URL: a.natsURL}, node.RoleAdmin)
	if err != nil {
		return node.StoreConfig{}, err
	}
	return node.StoreConfig{Spec: a.storeSpec, Create: create, RPC: node.RPCClient{Transport: a.transport, URL: a.rpcURL,
		Token: tok, NATS: nc}}, nil
}

// EnvRPCToken holds the store RPC bearer token of client commands when no
// --token-file is given (a secret: never a flag value).
const EnvRPCToken = "SECURELOG_RPC_TOKEN"

// rpcToken returns the bearer token for the store RPC: the content of
// --token-file, else SECURELOG_RPC_TOKEN, else the data directory's
// writer token for a loopback HTTP store RPC (creds.go), else "".
func (a *app) rpcToken() (string, error) {
	if a.tokenFile != "" {
		return a.readSecret(a.tokenFile, settingName(nil, "token-file"))
	}
	if t := a.env(EnvRPCToken); t != "" {
		return t, nil
	}
	return a.dataDirToken()
}

type openOpts struct {
	create  bool // the command may create a new store
	signer  bool // needs the keystore
	trust   bool // needs the trust file
	kek     bool // use the KEK if configured
	needKEK bool // KEK is required
	// auditOnly: the caller verifies signatures itself (pkg/audit); the log
	// gets no public keys, so the open-time head-file check compares
	// checkpoint hashes only and the audit reports signature problems with
	// their segment.
	auditOnly bool
	// stream routes a remote store over NATS to the partition that owns
	// it ("" = --partition or the default partition).
	stream string
	// part, if set, is the partition to talk to (a fan-out).
	part *wire.Partition
}

// openLog opens the store and a Log over it.
func (a *app) openLog(ctx context.Context, o openOpts) (*securelog.Log, func(), error) {
	_, path := localPath(a.storeSpec)
	opts := securelog.Options{Logger: a.logger}
	if !a.noHeadFile {
		opts.HeadFile = a.headFile
		if opts.HeadFile == "" && path != "" {
			opts.HeadFile = witness.PathForStore(path)
		}
	}
	if opts.HeadFile != "" {
		if err := a.headAnchor().Apply(&opts); err != nil {
			return nil, nil, settingErr(err)
		}
	}
	release := func() {}
	if o.signer {
		s, rel, err := a.signer()
		if err != nil {
			return nil, nil, err
		}
		opts.Signer, release = s, rel
	} else if o.trust && !o.auditOnly && a.trustFile == "" && a.keysDir != "" {
		ks, err := a.keystore()
		if err != nil {
			return nil, nil, err
		}
		opts.Signer = ks
	}
	if a.trustFile != "" && !o.auditOnly {
		t, err := checkpoint.LoadTrustFile(a.trustFile)
		if err != nil {
			return nil, nil, err
		}
		opts.Trust = t
	} else if o.trust && opts.Signer == nil && a.trustFile == "" {
		return nil, nil, usageErr("no trust file: pass --trust trust.json (made by 'securelog keys export')")
	}
	if o.kek || o.needKEK {
		if a.kekFile != "" {
			k, err := a.loadKEK(a.kekFile)
			if err != nil {
				return nil, nil, err
			}
			opts.KEK = k
		} else if o.needKEK {
			return nil, nil, usageErr("no KEK: pass --kek FILE (make one with 'securelog kek generate --out FILE')")
		}
	}
	sc, err := a.storeConfig(o.create)
	if err != nil {
		release()
		return nil, nil, err
	}
	if a.remoteOverNATS() {
		p, err := a.routeOf(ctx, o.stream)
		if o.part != nil {
			p, err = *o.part, nil
		}
		if err != nil {
			release()
			return nil, nil, err
		}
		sc.RPC.Subject = p.RPCSubject()
	}
	st, err := node.OpenStore(ctx, sc)
	if err != nil {
		release()
		return nil, nil, settingErr(checkStoreInUse(a.storeSpec, err))
	}
	l := securelog.New(st, opts)
	if err := l.OpenInitialized(ctx); err != nil {
		st.Close()
		release()
		return nil, nil, err
	}
	return l, func() { st.Close(); release() }, nil
}

// headAnchor is how a missing head file is re-established
// (--reset-head-from-witness, --accept-missing-head); it warns when the
// operator accepts the store as it is.
func (a *app) headAnchor() node.HeadAnchor {
	if a.acceptMissingHead {
		fmt.Fprintln(a.stderr, "securelog: WARNING: --accept-missing-head: a missing head file is re-established from the store as it is; an older copy of the store (a rollback) would not be noticed")
	}
	return node.HeadAnchor{WitnessURL: a.resetHead, Accept: a.acceptMissingHead}
}

func (a *app) keystore() (*keystore.Software, error) {
	if a.keysDir == "" {
		return nil, usageErr("no key directory: pass --keys DIR or set SECURELOG_KEYS")
	}
	return keystore.OpenSoftware(a.keysDir)
}
