package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/witnessd"
)

func init() { extraCommands = append(extraCommands, (*app).witnessCmd) }

// witnessFlags are the flags of `securelog witness`.
type witnessFlags struct {
	data     string
	identity string
	listen   string
	subject  string
	logRPC   string
	logToken string
	// logTokenFile, natsUser and natsPasswordFile keep secrets out of
	// the process list.
	logTokenFile, natsUser, natsPasswordFile string
	storeSpec                                string
	interval                                 time.Duration
	// tlogLogs ([ORIGIN=]VKEY) and tlogName configure the C2SP
	// tlog-witness endpoint (witness_tlog.go).
	tlogLogs  []string
	tlogName  string
	tlogTrust bool
}

// DefaultWitnessListen is the default HTTP address of `securelog witness`.
const DefaultWitnessListen = "127.0.0.1:8081"

func (a *app) witnessCmd() *cobra.Command {
	w := &witnessFlags{}
	c := &cobra.Command{
		Use:   "witness --data DIR --trust trust.json [--listen ADDR] [--nats URL] [--log-rpc URL|nats[:SUBJECT]] [--check-interval 10s]",
		Short: "Run an independent witness that checks, records and cosigns the log's checkpoints",
		Long: `Run a witness (docs/format.md §11, docs/decisions.md item 12). Logs submit their newest signed checkpoint with
POST /v1/witness/submit (or NATS request/reply on securelog.witness.submit). The
witness recomputes the checkpoint hash from the submitted fields, verifies the
signature with --trust (the log's public keys), and accepts only a checkpoint that
equals or extends the last one it accepted for that stream (directly or through the
submitted intermediate checkpoints). A second, different checkpoint for a witnessed
segment is refused as equivocation and raises an alert; so does any other validly
signed checkpoint that conflicts with the witnessed head (a fork at a new segment
id, or one the witness cannot link), and the submission is kept in DIR/evidence.
The first checkpoint of a stream is accepted on trust (trust on first use).

Accepted checkpoints are recorded in the witness's own store (--data DIR: a pebble
store in DIR/log and the witness's Ed25519 key in DIR/keys) and cosigned: the
receipt carries the witness's signature over the 32-byte checkpoint hash. Publish
the witness's public key with 'securelog witness keys --out witnesses.json'.

With --log-rpc the witness also reads the log's store through its RPC (a server
started with 'securelog serve-rpc') every --check-interval and alerts when the
log no longer holds what was witnessed (divergence, rollback). Alerts are logged,
counted in /metrics and, with --nats, published on securelog.alert.<stream>.

With --tlog (the log keys of --trust that carry a vkey) and/or --tlog-log
[ORIGIN=]VKEY (repeatable) the witness is also a C2SP tlog-witness
(c2sp.org/tlog-witness) for those logs: POST /add-checkpoint takes an old size,
a consistency proof and a signed checkpoint, and answers a cosignature/v1
signature line, or 404 (unknown origin), 403 (no valid signature by the log's
key), 400 (malformed, old size larger than the checkpoint's), 409 with the
latest cosigned size (text/x.tlog.size), 422 (proof fails, or another root for
a cosigned size, which also raises a tlog-equivocation alert). Its state is
DIR/tlog-witness.db; the cosigner is named --tlog-name (default --identity) and
its vkey is printed by 'securelog witness keys' and at startup. Any C2SP client
can submit (litewitness's peers, Sigsum, Tessera); so can securelog's own log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runWitness(cmd.Context(), w) },
	}
	pf := c.PersistentFlags()
	pf.StringVar(&w.data, "data", "", "witness data directory: witness log in DIR/log, key in DIR/keys (env SECURELOG_WITNESS_DATA)")
	pf.StringVar(&w.identity, "identity", witnessd.DefaultIdentity, "identity of the witness's key in receipts and its trust file")
	f := c.Flags()
	f.StringVar(&w.listen, "listen", DefaultWitnessListen, `HTTP listen address ("" = no HTTP)`)
	f.StringVar(&w.subject, "subject", witnessd.DefaultSubject, "NATS subject of submissions (with --nats)")
	f.StringVar(&w.logRPC, "log-rpc", "", "the log's store RPC for cross-checks: http(s)://HOST:PORT, or nats[:SUBJECT] over --nats")
	f.StringVar(&w.logToken, "log-rpc-token", "", "bearer token (reader role) for --log-rpc (env SECURELOG_LOG_RPC_TOKEN)")
	f.StringVar(&w.logTokenFile, "log-rpc-token-file", "", "file holding the bearer token for --log-rpc")
	f.StringVar(&w.natsUser, "nats-user", "", "NATS user (with --nats-password-file)")
	f.StringVar(&w.natsPasswordFile, "nats-password-file", "", "file holding the password of --nats-user")
	f.StringVar(&w.storeSpec, "witness-store", "", "witness log as BACKEND:CONFIG (default pebble:DIR/log)")
	f.DurationVar(&w.interval, "check-interval", witnessd.DefaultCheckInterval, "period of the cross-check against --log-rpc")
	addTlogWitnessFlags(c, w)
	c.AddCommand(a.witnessKeysCmd(w))
	return c
}

func (a *app) witnessKeysCmd(w *witnessFlags) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "keys --data DIR [--identity witness] [--out witnesses.json]",
		Short: "Print the witness's public key (creating its Ed25519 key if needed) and write its trust file",
		Long: `Print the witness's identity, algorithm and public key. With --out, write a trust file
(the same format as 'securelog keys export') holding the witness's key, so auditors
can check receipts' cosignatures.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := witnessKey(cmd.Context(), w)
			if err != nil {
				return err
			}
			entry := checkpoint.TrustEntry{Identity: w.identity, Algorithm: key.Algorithm(), PublicKey: key.PublicKey()}
			if out != "" {
				data, err := checkpoint.MarshalTrust([]checkpoint.TrustEntry{entry})
				if err != nil {
					return err
				}
				if err := os.WriteFile(out, data, 0o644); err != nil {
					return fmt.Errorf("write witness trust file: %w", err)
				}
			}
			if a.jsonOut {
				return a.printJSON(entry)
			}
			a.printf("%s\t%s\t%x\n", entry.Identity, entry.Algorithm, entry.PublicKey)
			if vkey, err := tlogCosignerVKey(w, key); err == nil {
				a.printf("tlog-witness cosigner vkey\t%s\n", vkey)
			}
			if out != "" {
				a.printf("wrote witness trust file %s\n", out)
			}
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "write the witness trust file here")
	return c
}

// witnessKey returns the witness's Ed25519 key from DIR/keys, creating it.
func witnessKey(ctx context.Context, w *witnessFlags) (keystore.Key, error) {
	if w.data == "" {
		return nil, usageErr("no witness data directory: pass --data DIR")
	}
	return node.WitnessKey(ctx, w.data, w.identity)
}

func (a *app) runWitness(ctx context.Context, w *witnessFlags) error {
	if a.trustFile == "" {
		return usageErr("no trust file: pass --trust trust.json (the log's public keys, from 'securelog keys export')")
	}
	if w.listen == "" && a.natsURL == "" {
		return usageErr("nothing to serve: pass --listen ADDR and/or --nats URL")
	}
	if w.data == "" {
		return usageErr("no witness data directory: pass --data DIR")
	}
	trust, err := checkpoint.LoadTrustFile(a.trustFile)
	if err != nil {
		return err
	}
	if w.logTokenFile != "" {
		if w.logToken, err = readSecretFileWith(w.logTokenFile, a.secretPolicy()); err != nil {
			return fmt.Errorf("--log-rpc-token-file: %w", err)
		}
	}
	natsPassword := ""
	if w.natsPasswordFile != "" {
		if natsPassword, err = readSecretFileWith(w.natsPasswordFile, a.secretPolicy()); err != nil {
			return fmt.Errorf("--nats-password-file: %w", err)
		}
	}
	cfg := node.WitnessConfig{DataDir: w.data, Identity: w.identity, Store: w.storeSpec, Trust: trust,
		Subject: w.subject, CheckInterval: w.interval, Listen: w.listen, Logger: a.logger}
	if a.natsURL != "" {
		if cfg.NATS, err = a.withCreds(node.NATSClient{URL: a.natsURL, User: w.natsUser, Password: natsPassword}, ""); err != nil {
			return err
		}
	}
	if cfg.LogRPC, err = witnessLogRPC(w, a.natsURL != ""); err != nil {
		return err
	}
	if cfg.Tlog, err = tlogWitnessConfig(ctx, w, trust); err != nil {
		return err
	}
	printf := func(doc map[string]any, format string, args ...any) {
		if a.jsonOut {
			_ = a.printJSON(doc) // JSON lines: one document per listener
			return
		}
		fmt.Fprintf(a.stdout, format, args...)
	}
	cfg.OnListen = func(addr string) {
		printf(map[string]any{"event": "listening", "witness": w.identity, "url": "http://" + addr + "/"},
			"witness %q listening on http://%s\n", w.identity, addr)
	}
	return node.RunWitness(ctx, cfg, func(s node.WitnessStarted) {
		if cfg.Tlog != nil {
			printf(map[string]any{"event": "serving", "witness": w.identity, "tlog_witness_path": witnessd.TlogAddCheckpointPath,
				"logs": len(cfg.Tlog.Logs), "vkey": s.TlogVKey},
				"witness %q serves C2SP tlog-witness POST %s for %d log(s); cosigner vkey %s\n",
				w.identity, witnessd.TlogAddCheckpointPath, len(cfg.Tlog.Logs), s.TlogVKey)
		}
		if s.NATS {
			printf(map[string]any{"event": "serving", "witness": w.identity, "nats_subject": w.subject},
				"witness %q serving NATS subject %s\n", w.identity, w.subject)
		}
	})
}

// witnessLogRPC says how to reach the log's store RPC (--log-rpc).
func witnessLogRPC(w *witnessFlags, haveNATS bool) (node.RPCClient, error) {
	switch {
	case w.logRPC == "":
		return node.RPCClient{}, nil
	case w.logRPC == "nats" || strings.HasPrefix(w.logRPC, "nats:"):
		if !haveNATS {
			return node.RPCClient{}, usageErr("--log-rpc %s needs --nats URL", w.logRPC)
		}
		subject := strings.TrimPrefix(strings.TrimPrefix(w.logRPC, "nats"), ":")
		return node.RPCClient{Transport: node.TransportNATS, Subject: subject, Token: w.logToken}, nil
	}
	if _, err := transport.ParseURL(w.logRPC); err != nil {
		return node.RPCClient{}, usageErr("--log-rpc %q: want an http(s):// URL or nats[:SUBJECT]: %v", w.logRPC, err)
	}
	return node.RPCClient{Transport: node.TransportHTTP, URL: w.logRPC, Token: w.logToken}, nil
}
