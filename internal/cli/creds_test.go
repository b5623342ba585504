package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestUpAuthenticatedClientsFindCredentials: `up` is authenticated by
// default (issue 9 item 3) — an anonymous NATS client is refused, a
// client without the credentials cannot publish — while `publish` and the
// client commands run in up's working directory find the credentials in
// the default data directory; --data-dir and --creds name them elsewhere;
// a reader's nkey cannot publish events.
func TestUpAuthenticatedClientsFindCredentials(t *testing.T) {
	clearEnv(t, "SECURELOG_STORE", "SECURELOG_KEYS", "SECURELOG_TRUST", "SECURELOG_DATA_DIR", "SECURELOG_CREDS", "SECURELOG_TOKEN_FILE", "SECURELOG_RPC_TOKEN")
	dir := t.TempDir()
	t.Chdir(dir)
	out, errs := startCLI(t, "up", "--listen-nats", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--no-witness", "--max-age", "50ms")
	url := waitMatch(t, out, errs, `NATS\s+(nats://\S+)`)
	addr := waitMatch(t, out, errs, `store RPC\s+http://(\S+)/`)
	waitMatch(t, out, errs, `credentials\s+securelog-data/auth`)
	if strings.Contains(out.String(), "INSECURE") {
		t.Fatalf("banner of an authenticated up says INSECURE:\n%s", out.String())
	}
	if nc, err := nats.Connect(url, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("anonymous NATS connection accepted")
	}
	publish := []string{"--nats", url, "publish", "default", "--type", "t", "--producer", "p", "--payload", "x", "--timeout", "20s"}
	if code, _, e := runCLI(t, append([]string{"--data-dir", filepath.Join(dir, "elsewhere")}, publish...)...); code == 0 || !strings.Contains(e, "Authorization Violation") {
		t.Fatalf("publish without credentials: exit %d %s", code, e)
	}
	if o := mustCLI(t, append(publish, "--wait", "checkpointed")...); !strings.Contains(o, "checkpointed in segment") {
		t.Fatalf("publish with the data directory's credentials: %s", o)
	}
	reader := filepath.Join("securelog-data", "auth", "reader.nk")
	if code, o, e := runCLI(t, append([]string{"--creds", reader}, append(publish[:len(publish)-1], "2s", "--wait", "accepted")...)...); code == 0 {
		t.Fatalf("a reader's nkey published an event: %s %s", o, e)
	}
	verify := []string{"--store", "remote:x", "--transport", "http", "--rpc-url", "http://" + addr + "/", "--trust", "securelog-data/trust.json", "verify", "default"}
	if o := mustCLI(t, verify...); !strings.Contains(o, "verify OK") {
		t.Fatalf("verify over HTTP with the data directory's token: %s", o)
	}
	// Elsewhere: --data-dir names the directory.
	t.Chdir(t.TempDir())
	if code, _, e := runCLI(t, verify...); code == 0 || !strings.Contains(e, "401") {
		t.Fatalf("verify without a token: exit %d %s", code, e)
	}
	verify[len(verify)-3] = filepath.Join(dir, "securelog-data", "trust.json")
	if o := mustCLI(t, append([]string{"--data-dir", filepath.Join(dir, "securelog-data")}, verify...)...); !strings.Contains(o, "verify OK") {
		t.Fatalf("verify with --data-dir: %s", o)
	}
	// A readable token file is refused unless the user insists (item 7).
	tok, err := os.ReadFile(filepath.Join(dir, "securelog-data", "auth", "reader.token"))
	if err != nil {
		t.Fatal(err)
	}
	readable := filepath.Join(t.TempDir(), "reader.token")
	if err := os.WriteFile(readable, tok, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(readable, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, e := runCLI(t, append([]string{"--token-file", readable}, verify...)...); code == 0 || !strings.Contains(e, "chmod 600") || !strings.Contains(e, "--allow-readable-secrets") {
		t.Fatalf("readable token file: exit %d %s", code, e)
	}
	code, o, e := runCLI(t, append([]string{"--token-file", readable, "--allow-readable-secrets"}, verify...)...)
	if code != 0 || !strings.Contains(o, "verify OK") || !strings.Contains(e, "accessible to other users") {
		t.Fatalf("readable token file with --allow-readable-secrets: exit %d %s %s", code, o, e)
	}
}

// TestUpInsecureWarns: --insecure keeps the open mode with a loud banner
// and a warning in the log.
func TestUpInsecureWarns(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	out, errs := startCLI(t, "up", "--insecure", "--data", data, "--listen-nats", "127.0.0.1:0", "--listen", "", "--no-witness")
	url := waitMatch(t, out, errs, `NATS\s+(nats://\S+)`)
	if !strings.Contains(out.String(), "INSECURE") || !strings.Contains(errs.String(), "INSECURE") {
		t.Fatalf("--insecure without a warning:\n%s\n%s", out.String(), errs.String())
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("--insecure refuses an anonymous client: %v", err)
	}
	nc.Close()
	if _, err := os.Stat(filepath.Join(data, "auth")); err == nil {
		t.Error("--insecure generated credentials")
	}
}

// TestSecretOnCommandLineWarns: a token given as a flag value is visible
// in the process list; the CLI says so and names the alternatives (item 7).
func TestSecretOnCommandLineWarns(t *testing.T) {
	clearEnv(t, "SECURELOG_RPC_TOKEN")
	_, _, e := runCLI(t, "sealer", "--rpc-token", "s3cret", "--nats", "nats://127.0.0.1:1")
	if !strings.Contains(e, "visible to every user") || !strings.Contains(e, "--rpc-token-file") {
		t.Fatalf("--rpc-token on the command line: no warning: %s", e)
	}
	t.Setenv("SECURELOG_RPC_TOKEN", "s3cret")
	if _, _, e := runCLI(t, "sealer", "--nats", "nats://127.0.0.1:1"); strings.Contains(e, "visible to every user") {
		t.Fatalf("a token from the environment is warned about: %s", e)
	}
}
