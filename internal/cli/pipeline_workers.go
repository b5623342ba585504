package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
)

func init() {
	extraCommands = append(extraCommands, (*app).ingesterCmd, (*app).sealerCmd, (*app).signerCmd)
}

func (a *app) ingesterCmd() *cobra.Command {
	var p pipelineFlags
	c := &cobra.Command{
		Use:   "ingester --store BACKEND:CONFIG [--nats URL] [--listen ADDR]",
		Short: "Run the ingester: consume SECURELOG_IN into the store, serve appends, closes and the store RPC",
		Long: `The ingester is the single writer of its store. It consumes securelog.in.> from
JetStream, commits each batch together with the last applied stream sequence,
publishes commit receipts, answers securelog.append.<stream> and
securelog.close.<stream>, and serves the store RPC on NATS (securelog.rpc) and,
with --listen, on HTTP with /healthz and /metrics. One ingester per store.

With --partition NAME (see 'securelog partitions') it serves one partition:
SECURELOG_IN_NAME (securelog.p.NAME.in.>), securelog.p.NAME.append/close.<stream>
and the store RPC on securelog.p.NAME.rpc. The default partition keeps the
names above.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.loadWithSecrets(cmd, a); err != nil {
				return err
			}
			return a.runIngester(cmd.Context(), &p)
		},
	}
	p.add(c, "nats", "jetstream", "rpc-server", "ingester", "tlog-read")
	return c
}

func (a *app) runIngester(ctx context.Context, p *pipelineFlags) error {
	if p.cfg.Store.Spec == "" {
		return usageErr("no store: pass --store BACKEND:CONFIG, set SECURELOG_STORE or [store] spec")
	}
	return node.RunIngester(ctx, node.IngesterConfig{
		NATS: p.natsClient(), Partition: p.cfg.Partition, Store: node.StoreConfig{Spec: p.cfg.Store.Spec, Pebble: p.pebbleTuning()}, HeadFile: p.cfg.Store.HeadFile, Anchor: p.headAnchor(a),
		KEKFile: p.cfg.Store.KEKFile, Token: a.tokenConfig, RPCSubject: p.cfg.RPC.Subject, TokensFile: p.cfg.RPC.Tokens,
		HTTPListen: p.cfg.RPC.Listen, HTTPAdvertise: p.cfg.RPC.Advertise, ForwardPlainHTTP: p.cfg.RPC.ForwardPlainHTTP, Logger: a.infoLogger(),
		Worker: p.ingesterConfig(), Tlog: node.TlogConfig{Public: p.cfg.Tlog.Public},
	})
}

func (a *app) sealerCmd() *cobra.Command {
	var p pipelineFlags
	c := &cobra.Command{
		Use:   "sealer [--nats URL] [--max-entries N] [--max-age D]",
		Short: "Run the sealer: close segments at max entries or max age",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.loadWithSecrets(cmd, a); err != nil {
				return err
			}
			return node.RunSealer(cmd.Context(), node.SealerConfig{NATS: p.natsClient(), Partition: p.cfg.Partition, RPC: p.rpcClient(),
				Worker: p.sealerConfig(), Logger: a.infoLogger()})
		},
	}
	p.add(c, "nats", "rpc-client", "sealer")
	return c
}

func (a *app) signerCmd() *cobra.Command {
	var p pipelineFlags
	c := &cobra.Command{
		Use:   "signer [--keys DIR | --keystore pkcs11] --head-file FILE [--trust FILE] [--witnesses URL,...] [--nats URL]",
		Short: "Run the signer: sign sealed segments, submit them to witnesses, publish checkpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.loadWithSecrets(cmd, a); err != nil {
				return err
			}
			return a.runSigner(cmd, &p)
		},
	}
	p.add(c, "nats", "rpc-client", "signer", "tlog-sign", "tlog-state")
	return c
}

func (a *app) runSigner(cmd *cobra.Command, p *pipelineFlags) error {
	ctx := cmd.Context()
	ws := splitList(p.cfg.Signer.Witnesses)
	tc, err := p.tlogConfig(cmd)
	if err != nil {
		return err
	}
	return node.RunSigner(ctx, node.SignerConfig{Tlog: tc,
		NATS: p.natsClient(), Partition: p.cfg.Partition, RPC: p.rpcClient(), Keystore: a.keystoreConfig(p.cfg.Signer.Keys), Identity: p.cfg.Signer.Identity,
		TrustFile: p.cfg.Signer.Trust, HeadFile: p.cfg.Signer.HeadFile, Anchor: p.headAnchor(a), Witnesses: ws, Token: a.tokenConfig,
		Worker: pipeline.SignerConfig{ScanInterval: p.cfg.Signer.ScanInterval}, Logger: a.infoLogger(),
	})
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}
