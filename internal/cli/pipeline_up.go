package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/witnessd"
)

func init() { extraCommands = append(extraCommands, (*app).upCmd) }

func (a *app) upCmd() *cobra.Command {
	var p pipelineFlags
	c := &cobra.Command{
		Use:   "up [--data DIR] [--listen-nats 127.0.0.1:4222] [--http 127.0.0.1:8080]",
		Short: "Run the whole pipeline in one process: embedded NATS JetStream, ingester, sealer, signer, witness",
		Long: `Run an embedded nats-server (JetStream, sync_interval always by default) and every
worker in one process, with everything stored under --data:

  DATA/store       the log (pebble)         DATA/keys        signing keys (0600)
  DATA/nats        JetStream                DATA/trust.json  public keys for verifiers
  DATA/heads.json  anti-rollback head file  DATA/witness     the local witness

Keys and the trust file are generated on first start. Publish with
'securelog publish STREAM ...' or any NATS client on securelog.in.<stream>.
The listeners are on loopback by default and unauthenticated: do not expose
them. Ctrl-C shuts down gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.load(cmd, a); err != nil {
				return err
			}
			sync := p.cfg.JetStream.Sync
			if sync != "always" && sync != "default" {
				return usageErr("--sync %q: want always or default", sync)
			}
			cfg := pipeline.LocalConfig{
				DataDir: p.cfg.Up.Data, NATSListen: p.cfg.Up.ListenNATS, HTTPListen: p.cfg.Up.HTTP, SyncAlways: sync == "always",
				StoreSpec: p.cfg.Store.Spec, Identity: p.cfg.Signer.Identity, Ingester: p.ingesterConfig(), Sealer: p.sealerConfig(),
				Signer: pipeline.SignerConfig{ScanInterval: p.cfg.Signer.ScanInterval}, Logger: a.infoLogger(),
			}
			if !p.cfg.Up.NoWitness {
				cfg.Extra = a.localWitness
			}
			return pipeline.RunLocal(cmd.Context(), cfg, func(info pipeline.LocalInfo) { a.printUp(info, sync) })
		},
	}
	p.add(c, "up", "ingester", "sealer", "signer")
	return c
}

// localWitness runs the witness service of `securelog up` over NATS and
// returns its client for the signer.
func (a *app) localWitness(ctx context.Context, info pipeline.LocalInfo) ([]pipeline.Witness, error) {
	dir := filepath.Join(info.DataDir, "witness")
	ks, err := keystore.OpenSoftware(filepath.Join(dir, "keys"))
	if err != nil {
		return nil, err
	}
	key, err := ks.GetKeyOrCreate(ctx, witnessd.DefaultIdentity, keystore.Ed25519)
	if err != nil {
		return nil, err
	}
	trust, err := checkpoint.LoadTrustFile(info.TrustFile)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, "pebble:"+filepath.Join(dir, "store"))
	if err != nil {
		return nil, err
	}
	nc, err := info.Connect("securelog-witness")
	if err != nil {
		st.Close()
		return nil, err
	}
	logStore, err := (&pipelineFlags{cfg: defaultPipelineConfig()}).remoteStore(ctx, nc)
	if err != nil {
		nc.Close()
		st.Close()
		return nil, err
	}
	srv, err := witnessd.New(witnessd.Config{Store: st, Trust: trust, Key: key, LogStore: logStore, NATS: nc, Logger: a.infoLogger()})
	if err != nil {
		nc.Close()
		st.Close()
		return nil, err
	}
	data, err := checkpoint.MarshalTrust([]checkpoint.TrustEntry{{Identity: witnessd.DefaultIdentity, Algorithm: key.Algorithm(), PublicKey: key.PublicKey()}})
	if err == nil {
		err = os.WriteFile(filepath.Join(info.DataDir, "witness-trust.json"), data, 0o644)
	}
	if err != nil {
		nc.Close()
		st.Close()
		return nil, err
	}
	// Run reports the HTTP listener once its NATS subscription is live.
	listening := make(chan string, 1)
	stopped := make(chan error, 1)
	go func() {
		stopped <- srv.Run(ctx, witnessd.RunConfig{Listen: "127.0.0.1:0", OnListen: func(addr string) { listening <- addr }})
		logStore.Close()
		nc.Close()
		st.Close()
	}()
	select {
	case addr := <-listening:
		a.infoLogger().Info("local witness running", "nats_subject", witnessd.DefaultSubject, "http", addr, "identity", srv.Identity())
	case err := <-stopped:
		return nil, fmt.Errorf("witness: %w", err)
	}
	return []pipeline.Witness{witnessd.NewNATSClient(nc, "")}, nil
}

func (a *app) printUp(info pipeline.LocalInfo, sync string) {
	url := info.NATSURL
	if url == "" {
		url = "(in-process only)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "securelog is up (JetStream sync: %s)\n", sync)
	fmt.Fprintf(&b, "  NATS          %s\n", url)
	if info.HTTPAddr != "" {
		fmt.Fprintf(&b, "  store RPC     http://%s/   (/healthz, /metrics)\n", info.HTTPAddr)
	}
	fmt.Fprintf(&b, "  data          %s\n", info.DataDir)
	fmt.Fprintf(&b, "  store         %s\n", info.StoreSpec)
	fmt.Fprintf(&b, "  signing keys  %s (identity %q)\n", info.KeysDir, info.Identity)
	fmt.Fprintf(&b, "  trust file    %s\n", info.TrustFile)
	fmt.Fprintf(&b, "  head file     %s\n", info.HeadFile)
	fmt.Fprintf(&b, "publish:\n")
	fmt.Fprintf(&b, "  securelog publish default --type user.login --severity info --producer me --payload 'hello'\n")
	if info.NATSURL != "" {
		fmt.Fprintf(&b, "  nats -s %s pub securelog.in.default '{\"type\":\"user.login\",\"severity\":\"info\",\"producer\":\"me\",\"payload\":\"hello\"}'\n", info.NATSURL)
	}
	switch {
	case info.HTTPAddr != "":
		fmt.Fprintf(&b, "verify:\n  securelog --store remote:x --transport http --rpc-url http://%s/ --trust %s verify default\n", info.HTTPAddr, info.TrustFile)
	case info.NATSURL != "":
		fmt.Fprintf(&b, "verify:\n  securelog --store remote:x --transport nats --nats %s --trust %s verify default\n", info.NATSURL, info.TrustFile)
	}
	fmt.Fprint(a.stdout, b.String())
}
