package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
)

func init() { extraCommands = append(extraCommands, (*app).upCmd) }

func (a *app) upCmd() *cobra.Command {
	var p pipelineFlags
	c := &cobra.Command{
		Use:   "up [--data DIR] [--listen-nats 127.0.0.1:4222] [--listen 127.0.0.1:8080]",
		Short: "Run the whole pipeline in one process: embedded NATS JetStream, ingester, sealer, signer, witness",
		Long: `Run an embedded nats-server (JetStream, sync_interval always by default) and every
worker in one process, with everything stored under --data:

  DATA/store       the log (pebble)         DATA/keys        signing keys (0600)
  DATA/nats        JetStream                DATA/trust.json  public keys for verifiers
  DATA/witness     the local witness      DATA/store.heads.json  anti-rollback head file

Keys, the trust file and credentials are generated on first start. Publish with
'securelog publish STREAM ...' or any NATS client on securelog.in.<stream>.

Authentication is on by default: DATA/auth (0700) holds one NATS nkey seed per
role (producer, ingester, sealer, signer, witness, reader, admin: <role>.nk,
0600) whose subject permissions the embedded NATS server enforces, and the store
RPC's bearer tokens for HTTP (reader.token, writer.token). 'securelog publish'
and the client commands run in the same directory find them (elsewhere: --data-dir
DATA, or --creds FILE / --token-file FILE); other NATS clients use the nkey
(nats --nkey DATA/auth/producer.nk). --insecure turns authentication off for
experiments. The listeners are on loopback by default. Ctrl-C shuts down
gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := p.loadWithSecrets(cmd, a); err != nil {
				return err
			}
			tc, err := p.tlogConfig(cmd)
			if err != nil {
				return err
			}
			sync := p.cfg.JetStream.Sync
			if sync != "always" && sync != "default" {
				return usageErr("--sync %q: want always or default", sync)
			}
			if a.dataDirFlag != "" && p.cfg.Up.Data == defaultPipelineConfig().Up.Data {
				p.cfg.Up.Data = a.dataDirFlag // --data-dir names the same directory
			}
			cfg := node.UpConfig{
				DataDir: p.cfg.Up.Data, Partition: p.cfg.Partition, NATSListen: p.cfg.Up.ListenNATS, HTTPListen: p.cfg.Up.Listen, SyncAlways: sync == "always",
				StoreSpec: p.cfg.Store.Spec, Pebble: p.pebbleTuning(), Identity: p.cfg.Signer.Identity, Keystore: a.keystoreConfig(p.cfg.Signer.Keys),
				TokensFile: p.cfg.RPC.Tokens, LocalWitness: !p.cfg.Up.NoWitness,
				Ingester: p.ingesterConfig(), Sealer: p.sealerConfig(),
				Signer: pipeline.SignerConfig{ScanInterval: p.cfg.Signer.ScanInterval}, Logger: a.infoLogger(),
				Tlog: tc, Insecure: p.cfg.Up.Insecure, AllowReadableSecrets: a.allowReadable,
				Anchor: p.headAnchor(a), Witnesses: splitList(p.cfg.Signer.Witnesses),
			}
			return node.Up(cmd.Context(), cfg, func(info node.Info) { a.printUp(info, sync) })
		},
	}
	p.add(c, "up", "ingester", "sealer", "signer", "tlog-sign", "tlog-read")
	return c
}

func (a *app) printUp(info node.Info, sync string) {
	if a.jsonOut {
		_ = a.printJSON(upView{Event: "up", Sync: sync, NATSURL: info.NATSURL, HTTPAddr: info.HTTPAddr, WitnessAddr: info.WitnessAddr,
			WitnessSubject: info.WitnessSubject, WitnessTrustFile: info.WitnessTrustFile, DataDir: info.DataDir, StoreSpec: info.StoreSpec,
			Keystore: info.Keystore, KeysDir: info.KeysDir, Identity: info.Identity, TrustFile: info.TrustFile, HeadFile: info.HeadFile,
			AuthDir: info.AuthDir, Insecure: info.AuthDir == ""})
		return
	}
	url := info.NATSURL
	if url == "" {
		url = "(in-process only)"
	}
	var b strings.Builder
	if info.AuthDir == "" {
		fmt.Fprintf(&b, "%s\n", insecureBanner)
	}
	fmt.Fprintf(&b, "securelog is up (JetStream sync: %s)\n", sync)
	fmt.Fprintf(&b, "  NATS          %s\n", url)
	if info.HTTPAddr != "" {
		fmt.Fprintf(&b, "  store RPC     http://%s/   (/healthz, /metrics)\n", info.HTTPAddr)
	}
	if info.WitnessAddr != "" {
		fmt.Fprintf(&b, "  witness       http://%s/   (NATS %s; public key in %s)\n", info.WitnessAddr, info.WitnessSubject, info.WitnessTrustFile)
	}
	fmt.Fprintf(&b, "  data          %s\n", info.DataDir)
	fmt.Fprintf(&b, "  store         %s\n", info.StoreSpec)
	if info.KeysDir != "" {
		fmt.Fprintf(&b, "  signing keys  %s (identity %q)\n", info.KeysDir, info.Identity)
	} else {
		fmt.Fprintf(&b, "  signing key   %q in the %s keystore\n", info.Identity, info.Keystore)
	}
	fmt.Fprintf(&b, "  trust file    %s\n", info.TrustFile)
	fmt.Fprintf(&b, "  head file     %s\n", info.HeadFile)
	nkey, dataDir := "", ""
	if info.AuthDir != "" {
		dataDir = " --data-dir " + info.DataDir
		fmt.Fprintf(&b, "  credentials   %s (NATS nkeys per role, store RPC tokens; clients in this directory find them, elsewhere pass --data-dir %s)\n", info.AuthDir, info.DataDir)
		nkey = " --nkey " + node.NKeyFile(info.DataDir, node.RoleProducer)
	}
	fmt.Fprintf(&b, "publish:\n")
	fmt.Fprintf(&b, "  securelog publish default --type user.login --severity info --producer me --payload 'hello'\n")
	if info.NATSURL != "" {
		fmt.Fprintf(&b, "  nats -s %s%s pub securelog.in.default '{\"type\":\"user.login\",\"severity\":\"info\",\"producer\":\"me\",\"payload\":\"hello\"}'\n", info.NATSURL, nkey)
	}
	switch {
	case info.HTTPAddr != "":
		fmt.Fprintf(&b, "verify:\n  securelog%s --store remote:x --transport http --rpc-url http://%s/ --trust %s verify default\n", dataDir, info.HTTPAddr, info.TrustFile)
	case info.NATSURL != "":
		fmt.Fprintf(&b, "verify:\n  securelog%s --store remote:x --transport nats --nats %s --trust %s verify default\n", dataDir, info.NATSURL, info.TrustFile)
	}
	fmt.Fprint(a.stdout, b.String())
	if info.AuthDir == "" {
		fmt.Fprintf(a.stdout, "%s\n", insecureBanner)
	}
}

// insecureBanner frames up's banner when it runs with --insecure.
const insecureBanner = `!!! INSECURE: running with --insecure: NATS and the store RPC accept anyone who can reach them.
!!! Any local user can publish events, insert entries and overwrite signatures. For experiments only.`
