package cli

import (
	"context"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"

	"github.com/securelog/securelog/pkg/console"
	"github.com/securelog/securelog/pkg/queryapi"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/store"
)

func init() { extraCommands = append(extraCommands, (*app).serveRPCCmd) }

func (a *app) serveRPCCmd() *cobra.Command {
	var cfg rpcserver.Config
	var spec string
	c := &cobra.Command{
		Use:   "serve-rpc --listen ADDR [--store BACKEND:CONFIG] [--nats URL] [--tokens FILE]",
		Short: "Serve a store over the JSON-RPC wire contract (HTTP and/or NATS)",
		Long: `Open one store and serve the JSON-RPC contract of docs/format.md §16 to
remote stores (securelog --store remote:x --transport http|nats ...). Without
--store the store is SECURE_LOG_STORE_CONFIG (a BACKEND:CONFIG value, or a bare
path meaning an SQLite file). There is no default store: one of the two must be
given.

Authentication: --tokens FILE holds [{"token":"...","role":"reader|writer"}];
mutating methods need a writer token (Authorization: Bearer ...). Without
tokens the server is open: keep it on loopback.

--nats URL serves the store RPC on that NATS server too and connects the
query API (/v1/) to it, for follow (committed receipts), alerts and the
DLQ; without it those answer 503. The connection authenticates with
--creds FILE (an nkey seed or .creds file; of the users 'securelog up'
generates, DATA/auth/ingester.nk may serve the store RPC), else the data
directory's ingester nkey when there is one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Listen == "" && cfg.NATSURL == "" {
				return usageErr("nothing to serve: pass --listen ADDR and/or --nats URL")
			}
			if spec == "" {
				// The reference falls back to "secure-log.db"; we never open a
				// store nobody named (DESIGN: no silent default).
				return usageErr("no store to serve: pass --store BACKEND:CONFIG or set SECURELOG_STORE or SECURE_LOG_STORE_CONFIG (e.g. sqlite:secure-log.db)")
			}
			if a.envVar["store"] == "SECURE_LOG_STORE_CONFIG" {
				// The reference's variable: a bare path is an SQLite file.
				if _, _, err := store.ParseSpec(spec); err != nil || !isBackend(spec) {
					spec = "sqlite:" + spec
				}
			}
			// --nats serves the store RPC there too and feeds the query
			// API's follow, alerts and DLQ; --creds (or the data
			// directory's ingester nkey: the role that serves the store
			// RPC) authenticates both connections.
			var qnc *nats.Conn
			if cfg.NATSURL != "" {
				client, err := a.withCreds(node.NATSClient{URL: cfg.NATSURL}, node.RoleIngester)
				if err != nil {
					return err
				}
				if cfg.NATSOptions, err = client.Options("securelog-rpc-server"); err != nil {
					return err
				}
				if qnc, err = client.Connect("securelog-serve-rpc-query"); err != nil {
					return err
				}
				defer qnc.Close()
			}
			st, err := store.Open(cmd.Context(), spec) // its errors name the spec
			if err != nil {
				return checkStoreInUse(spec, err)
			}
			defer st.Close()
			cfg.OnListen = func(addr string) {
				a.logger.Warn("serving store RPC", "addr", addr, "store", spec)
				if a.jsonOut {
					_ = a.printJSON(map[string]any{"event": "listening", "store": spec, "url": "http://" + addr + "/"})
					return
				}
				fmt.Fprintf(a.stdout, "serving %s on http://%s\n", spec, addr)
			}
			// The query API (/v1/, docs/query.md) shares the listener and
			// its tokens; without --nats, follow and the DLQ answer 503.
			cfg.Mount = func(s *rpcserver.Server, h http.Handler) http.Handler {
				qh, err := queryapi.New(queryapi.Config{Store: st, Authenticate: s.Authenticate, NATS: qnc, Logger: a.logger})
				if err != nil {
					a.logger.Error("query API disabled", "error", err)
					return h
				}
				context.AfterFunc(cmd.Context(), qh.Close)
				return console.Wrap(qh.Wrap(h)) // and the web console (/ui/)
			}
			return rpcserver.Run(cmd.Context(), st, cfg, a.logger)
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Listen, "listen", "", "HTTP listen address, e.g. 127.0.0.1:8700")
	f.StringVar(&spec, "store", "", "store to serve as BACKEND:CONFIG (env SECURELOG_STORE, or SECURE_LOG_STORE_CONFIG where a bare path means sqlite:PATH)")
	f.StringVar(&cfg.NATSURL, "nats", "", "also serve on this NATS server, and feed the query API's follow, alerts and DLQ from it (credentials: --creds)")
	f.StringVar(&cfg.Subject, "rpc-subject", "", "NATS subject of the store RPC (default securelog.rpc)")
	aliasFlag(f, "subject", "rpc-subject")
	f.StringVar(&cfg.TokensFile, "tokens", "", "bearer tokens file (JSON list of {token, role})")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate (PEM)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS key (PEM)")
	f.Int64Var(&cfg.MaxBody, "max-body", 0, "request body limit in bytes (default 8 MiB)")
	return c
}

func isBackend(spec string) bool {
	b, _, _ := store.ParseSpec(spec)
	for _, k := range store.Backends() {
		if k == b {
			return true
		}
	}
	return false
}
