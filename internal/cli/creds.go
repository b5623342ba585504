package cli

import (
	"errors"
	"io/fs"
	"net"
	neturl "net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/secretfile"
	"github.com/securelog/securelog/pkg/tlog"
)

// Credentials of client commands (issue 9 items 3 and 7). `securelog up`
// generates them in DATA/auth (see node.EnsureCredentials); a command
// finds them there — DATA is --data-dir, default securelog-data, the
// directory `up` uses when started in the same working directory — unless
// it is given its own: --creds FILE (an nkey seed such as DATA/auth/
// producer.nk, or a NATS .creds file), --token-file FILE (a store RPC
// bearer token), or the pipeline commands' --nats-user / --nats-creds.

// DefaultDataDir is the data directory of `securelog up` when none is
// configured, relative to the working directory.
const DefaultDataDir = "securelog-data"

// dataDir is the data directory whose credentials client commands use.
func (a *app) dataDir() string {
	if a.dataDirFlag != "" {
		return a.dataDirFlag
	}
	return DefaultDataDir
}

// secretPolicy is how commands treat secret files other users can read:
// refused unless --allow-readable-secrets (then a warning).
func (a *app) secretPolicy() secretfile.Policy {
	return secretfile.Policy{AllowReadable: a.allowReadable, Hint: "or pass --allow-readable-secrets to use it anyway", Logger: a.logger}
}

// withCreds adds the command's NATS credentials to c unless c already
// authenticates (a user, password or creds file of the configuration):
// --creds FILE, else, when role is set, the nkey of role in the data
// directory if `up` generated one.
func (a *app) withCreds(c node.NATSClient, role string) (node.NATSClient, error) {
	c.Secrets = a.secretPolicy()
	if c.Creds != "" || c.User != "" || c.NKeyFile != "" {
		return c, nil
	}
	if a.credsFile != "" {
		data, err := secretfile.Read("credentials file", a.credsFile, a.secretPolicy())
		if err != nil {
			return c, usageErr("%s: %v", settingName(nil, "creds"), err)
		}
		if node.IsNATSCredsFile(data) {
			c.Creds = a.credsFile
		} else {
			c.NKeyFile = a.credsFile
		}
		return c, nil
	}
	if role == "" {
		return c, nil
	}
	if f := node.NKeyFile(a.dataDir(), role); fileExists(f) {
		c.NKeyFile = f
	}
	return c, nil
}

// dataDirToken returns the store RPC token of the data directory for an
// HTTP store RPC on a loopback address (the token is never sent to another
// host): the writer token `up` generated, or "".
func (a *app) dataDirToken() (string, error) {
	if a.transport != "http" || !loopbackURL(a.rpcURL) {
		return "", nil
	}
	f := node.TokenFile(a.dataDir(), rpcserver.RoleWriter)
	if !fileExists(f) {
		return "", nil
	}
	return a.readSecret(f, settingName(nil, "data-dir"))
}

// readSecret reads a secret file (token, password) under the secret
// policy, without the trailing newline; an empty secret is an error.
// setting names where the path came from in errors.
func (a *app) readSecret(path, setting string) (string, error) {
	s, err := readSecretFileWith(path, a.secretPolicy())
	if err != nil {
		return "", usageErr("%s: %v", setting, err)
	}
	return s, nil
}

// loopbackURL reports whether an http(s) URL names a loopback host.
func loopbackURL(raw string) bool {
	u, err := neturl.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// secretFlags are flags whose value is a secret: given on the command
// line, it is visible to every user in the process list.
var secretFlags = map[string]string{
	"rpc-token":     "--rpc-token-file FILE or SECURELOG_RPC_TOKEN",
	"log-rpc-token": "--log-rpc-token-file FILE or SECURELOG_LOG_RPC_TOKEN",
}

// warnSecretFlags warns about secrets given on the command line.
func (a *app) warnSecretFlags(cmd *cobra.Command) {
	for name, instead := range secretFlags {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			a.logger.Warn("a secret on the command line is visible to every user of this machine (ps, /proc): use "+instead+" instead",
				"flag", "--"+name)
		}
	}
}

// tlogClient is the tiles API client of url: it sends the store RPC token
// the command has (--token-file, SECURELOG_RPC_TOKEN, else for a loopback
// URL the data directory's reader token), as the tiles need one when the
// listener has tokens.
func (a *app) tlogClient(url string) (*tlog.Client, error) {
	c := &tlog.Client{URL: url}
	tok := ""
	switch {
	case a.tokenFile != "":
		t, err := a.readSecret(a.tokenFile, settingName(nil, "token-file"))
		if err != nil {
			return nil, err
		}
		tok = t
	case a.env(EnvRPCToken) != "":
		tok = a.env(EnvRPCToken)
	case loopbackURL(url) && fileExists(node.TokenFile(a.dataDir(), rpcserver.RoleReader)):
		t, err := a.readSecret(node.TokenFile(a.dataDir(), rpcserver.RoleReader), settingName(nil, "data-dir"))
		if err != nil {
			return nil, err
		}
		tok = t
	}
	c.Token = tok
	return c, nil
}
