package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/witness"
	"github.com/securelog/securelog/pkg/witnessd"
)

func init() {
	extraCommands = append(extraCommands, (*app).ingesterCmd, (*app).sealerCmd, (*app).signerCmd)
}

// IngesterMain, SealerMain and SignerMain run one worker as a program
// (cmd/ingester, cmd/sealer, cmd/signer): the same command as
// `securelog ingester|sealer|signer ARGS`.
func IngesterMain(ctx context.Context, args []string) int { return workerMain(ctx, "ingester", args) }

// SealerMain runs `securelog sealer ARGS`.
func SealerMain(ctx context.Context, args []string) int { return workerMain(ctx, "sealer", args) }

// SignerMain runs `securelog signer ARGS`.
func SignerMain(ctx context.Context, args []string) int { return workerMain(ctx, "signer", args) }

func workerMain(ctx context.Context, name string, args []string) int {
	return Main(ctx, append([]string{name}, args...), os.Stdin, os.Stdout, os.Stderr)
}

func (a *app) ingesterCmd() *cobra.Command {
	var p pipelineFlags
	c := &cobra.Command{
		Use:   "ingester --store BACKEND:CONFIG [--nats URL] [--http ADDR]",
		Short: "Run the ingester: consume SECURELOG_IN into the store, serve appends, closes and the store RPC",
		Long: `The ingester is the single writer of its store. It consumes securelog.in.> from
JetStream, commits each batch together with the last applied stream sequence,
publishes commit receipts, answers securelog.append.<stream> and
securelog.close.<stream>, and serves the store RPC on NATS (securelog.rpc) and,
with --http, on HTTP with /healthz and /metrics. One ingester per store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.load(cmd, a); err != nil {
				return err
			}
			return a.runIngester(cmd.Context(), &p)
		},
	}
	p.add(c, "nats", "jetstream", "rpc-server", "ingester")
	return c
}

func (a *app) runIngester(ctx context.Context, p *pipelineFlags) error {
	log := a.infoLogger()
	spec := p.cfg.Store.Spec
	if spec == "" {
		return usageErr("no store: pass --store BACKEND:CONFIG or set [store] spec")
	}
	if b, path := localPath(spec); b == "pebble" && path != "" {
		if err := os.MkdirAll(filepath.Dir(filepath.Clean(path)), 0o755); err != nil {
			return err
		}
	}
	st, err := store.Open(ctx, spec)
	if err != nil {
		return err
	}
	defer st.Close()
	nc, err := p.connect("securelog-ingester")
	if err != nil {
		return err
	}
	defer nc.Close()
	metrics := pipeline.NewMetrics()
	alerter := pipeline.Alerter{Conn: nc, Logger: log, Metrics: metrics, Source: "log"}
	opts := securelog.Options{Logger: log, HeadFile: p.cfg.Store.HeadFile,
		OnAlert: func(s string, e error) { alerter.Alert(s, "log-alert", 0, e.Error()) }}
	if opts.HeadFile == "" {
		if _, path := localPath(spec); path != "" {
			opts.HeadFile = witness.PathForStore(path)
		}
	}
	if p.cfg.Store.KEKFile != "" {
		if opts.KEK, err = loadKEK(p.cfg.Store.KEKFile); err != nil {
			return err
		}
	}
	l := securelog.New(st, opts)
	if err := l.OpenInitialized(ctx); err != nil {
		return err
	}
	icfg := p.ingesterConfig()
	icfg.Log, icfg.Conn, icfg.Logger, icfg.Metrics = l, nc, log, metrics
	in, err := pipeline.NewIngester(icfg)
	if err != nil {
		return err
	}
	rpc, err := rpcserver.New(st, rpcserver.Config{TokensFile: p.cfg.RPC.Tokens}, log)
	if err != nil {
		return err
	}
	sub, err := rpc.ServeNATS(context.WithoutCancel(ctx), nc, p.cfg.RPC.Subject)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rpc.StopNATS(sctx, sub)
	}()
	if p.cfg.RPC.Listen != "" {
		stop, err := serveHTTP(p.cfg.RPC.Listen, pipeline.HTTPHandler(rpc.Handler(), in.Ready, metrics.Registry(), rpc.Registry()))
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info("ingester starting", "store", spec, "nats", p.cfg.NATS.URL, "http", p.cfg.RPC.Listen)
	return in.Run(ctx)
}

// serveHTTP serves h on addr until the returned stop function is called.
func serveHTTP(addr string, h http.Handler) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

func (a *app) sealerCmd() *cobra.Command {
	var p pipelineFlags
	c := &cobra.Command{
		Use:   "sealer [--nats URL] [--max-entries N] [--max-age D]",
		Short: "Run the sealer: close segments at max entries or max age",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.load(cmd, a); err != nil {
				return err
			}
			ctx := cmd.Context()
			nc, err := p.connect("securelog-sealer")
			if err != nil {
				return err
			}
			defer nc.Close()
			st, err := p.remoteStore(ctx, nc)
			if err != nil {
				return err
			}
			defer st.Close()
			scfg := p.sealerConfig()
			scfg.Conn, scfg.Store, scfg.Logger = nc, st, a.infoLogger()
			s, err := pipeline.NewSealer(scfg)
			if err != nil {
				return err
			}
			return s.Run(ctx)
		},
	}
	p.add(c, "nats", "rpc-client", "sealer")
	return c
}

func (a *app) signerCmd() *cobra.Command {
	var p pipelineFlags
	c := &cobra.Command{
		Use:   "signer --keys DIR --head-file FILE [--trust FILE] [--witnesses URL,...] [--nats URL]",
		Short: "Run the signer: sign sealed segments, submit them to witnesses, publish checkpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.load(cmd, a); err != nil {
				return err
			}
			return a.runSigner(cmd.Context(), &p)
		},
	}
	p.add(c, "nats", "rpc-client", "signer")
	return c
}

func (a *app) runSigner(ctx context.Context, p *pipelineFlags) error {
	log := a.infoLogger()
	if p.cfg.Signer.Keys == "" {
		return usageErr("no key directory: pass --keys DIR or set [signer] keys")
	}
	if p.cfg.Signer.HeadFile == "" {
		return usageErr("no head file: pass --head-file FILE or set [signer] head_file (the signer refuses rolled-back stores with it)")
	}
	ks, err := keystore.OpenSoftware(p.cfg.Signer.Keys)
	if err != nil {
		return err
	}
	nc, err := p.connect("securelog-signer")
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := p.remoteStore(ctx, nc)
	if err != nil {
		return err
	}
	defer st.Close()
	metrics := pipeline.NewMetrics()
	alerter := pipeline.Alerter{Conn: nc, Logger: log, Metrics: metrics, Source: "signer"}
	opts := securelog.Options{Signer: ks, HeadFile: p.cfg.Signer.HeadFile, Logger: log,
		OnAlert: func(s string, e error) { alerter.Alert(s, "log-alert", 0, e.Error()) }}
	if p.cfg.Signer.Trust != "" {
		t, err := checkpoint.LoadTrustFile(p.cfg.Signer.Trust)
		if err != nil {
			return err
		}
		opts.Trust = t
	}
	l := securelog.New(st, opts)
	if err := l.OpenInitialized(ctx); err != nil {
		return err
	}
	var ws []pipeline.Witness
	for _, w := range strings.Split(p.cfg.Signer.Witnesses, ",") {
		switch w = strings.TrimSpace(w); {
		case w == "":
		case strings.HasPrefix(w, "http://"), strings.HasPrefix(w, "https://"):
			ws = append(ws, witnessd.NewHTTPClient(w))
		case strings.HasPrefix(w, "nats:"):
			ws = append(ws, witnessd.NewNATSClient(nc, strings.TrimPrefix(w, "nats:")))
		default:
			return usageErr("witness %q: want http(s)://HOST[:PORT] or nats:SUBJECT", w)
		}
	}
	s, err := pipeline.NewSigner(pipeline.SignerConfig{Conn: nc, Log: l, Identity: p.cfg.Signer.Identity, Witnesses: ws,
		ScanInterval: p.cfg.Signer.ScanInterval, Logger: log, Metrics: metrics})
	if err != nil {
		return err
	}
	if _, err := ks.GetKey(ctx, p.cfg.Signer.Identity); err != nil {
		return errors.Join(usageErr("signing key %q not in %s (make it with 'securelog keys generate')", p.cfg.Signer.Identity, p.cfg.Signer.Keys), err)
	}
	log.Info("signer starting", "identity", p.cfg.Signer.Identity, "witnesses", len(ws), "head_file", p.cfg.Signer.HeadFile)
	return s.Run(ctx)
}
