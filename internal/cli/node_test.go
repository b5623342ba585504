package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/pipeline"
)

// startCLI runs a long-running command (up, ingester, ...) in the
// background; it is stopped (and must exit 0) at test cleanup.
func startCLI(t *testing.T, args ...string) (stdout, stderr *syncBuffer) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- Main(ctx, args, strings.NewReader(""), stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("securelog %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("securelog %s did not stop in 30s", strings.Join(args, " "))
		}
	})
	return stdout, stderr
}

// waitMatch waits (bounded poll) until re matches buf and returns the
// first submatch.
func waitMatch(t *testing.T, buf, errs *syncBuffer, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := rx.FindStringSubmatch(buf.String()); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output:\n%s\nstderr:\n%s", re, buf.String(), errs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func clearEnv(t *testing.T, names ...string) {
	t.Helper()
	for _, v := range names {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
}

// TestUpConfigTokensEnforced: `up --config` with [rpc] tokens serves the
// HTTP store RPC only to callers with a token (issue 8: up built its RPC
// server with an empty configuration and ignored the tokens).
func TestUpConfigTokensEnforced(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, []byte(`[{"token":"writer-secret","role":"writer"},{"token":"reader-secret","role":"reader"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "up.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[rpc]\ntokens = %q\n", tokens)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs := startCLI(t, "up", "--config", cfg, "--data", filepath.Join(dir, "data"), "--listen-nats", "", "--listen", "127.0.0.1:0", "--no-witness")
	addr := waitMatch(t, out, errs, `store RPC\s+http://(\S+)/`)
	call := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(`{"method":"secure-log-global-head","params":[]}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call(""); code != http.StatusUnauthorized {
		t.Errorf("no token: HTTP %d, want 401", code)
	}
	if code := call("wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: HTTP %d, want 401", code)
	}
	if code := call("reader-secret"); code != http.StatusOK {
		t.Errorf("reader token: HTTP %d, want 200", code)
	}
}

// publishN publishes n events to natsURL and waits until each is in a
// signed checkpoint.
func publishN(t *testing.T, natsURL string, n int, extra ...string) {
	t.Helper()
	for i := 0; i < n; i++ {
		args := append([]string{"--nats", natsURL}, extra...)
		args = append(args, "publish", "default", "--type", "t", "--producer", "p", "--payload", fmt.Sprint("event ", i),
			"--wait", "checkpointed", "--timeout", "60s")
		if out := mustCLI(t, args...); !strings.Contains(out, "checkpointed in segment") {
			t.Fatalf("publish: %s", out)
		}
	}
}

// tokenTrust generates key identity in the SoftHSM token and returns the
// path of a trust file holding only its public key.
func tokenTrust(t *testing.T, dir, identity string) string {
	t.Helper()
	mustCLI(t, "pkcs11", "generate", identity, "--alg", "ecdsa-p256")
	trust := filepath.Join(dir, identity+"-trust.json")
	mustCLI(t, "pkcs11", "export", "--identity", identity, "--out", trust)
	return trust
}

// TestUpPKCS11SignsInToken: `up --keystore pkcs11 --identity X` signs with
// the token's key X: the token's public key verifies every segment (issue
// 8: up created a software key named X and signed with it).
func TestUpPKCS11SignsInToken(t *testing.T) {
	softToken(t)
	clearEnv(t, "SECURELOG_STORE", "SECURELOG_KEYS", "SECURELOG_KEK_FILE", "SECURELOG_TRUST", "SECURELOG_KEYSTORE")
	dir := t.TempDir()
	trust := tokenTrust(t, dir, "hsm-up")
	data := filepath.Join(dir, "data")
	out, errs := startCLI(t, "up", "--data", data, "--keystore", "pkcs11", "--identity", "hsm-up",
		"--listen-nats", "127.0.0.1:0", "--listen", "", "--no-witness", "--max-age", "50ms")
	url := waitMatch(t, out, errs, `NATS\s+(nats://\S+)`)
	publishN(t, url, 3, "--data-dir", data)
	if _, err := os.Stat(filepath.Join(data, "keys", "hsm-up.key")); err == nil {
		t.Error("up created a software key for a PKCS#11 identity")
	}
	// The live store is locked by up: verify over its NATS RPC.
	v := mustCLI(t, "--data-dir", data, "--store", "remote:x", "--transport", "nats", "--nats", url, "--no-head-file", "--trust", trust, "verify", "default")
	if !strings.Contains(v, "verify OK") || strings.Contains(v, " 0 signatures") {
		t.Errorf("verify with the token's public key: %s", v)
	}
}

// TestSignerCommandPKCS11: the split pipeline with `securelog signer
// --keystore pkcs11` signs in the token (issue 8: the signer opened a
// software keystore whatever --keystore said).
func TestSignerCommandPKCS11(t *testing.T) {
	softToken(t)
	clearEnv(t, "SECURELOG_STORE", "SECURELOG_KEYS", "SECURELOG_KEK_FILE", "SECURELOG_TRUST", "SECURELOG_KEYSTORE")
	dir := t.TempDir()
	trust := tokenTrust(t, dir, "hsm-signer")
	ns, err := pipeline.StartServer(pipeline.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := ns.ClientURL()
	_, ierr := startCLI(t, "ingester", "--nats", url, "--store", "pebble:"+filepath.Join(dir, "store"))
	startCLI(t, "sealer", "--nats", url, "--max-age", "50ms")
	startCLI(t, "signer", "--nats", url, "--keystore", "pkcs11", "--identity", "hsm-signer", "--head-file", filepath.Join(dir, "heads.json"))
	waitMatch(t, ierr, ierr, `ingester consuming`)
	publishN(t, url, 3)
	v := mustCLI(t, "--store", "remote:x", "--transport", "nats", "--nats", url, "--no-head-file", "--trust", trust, "verify", "default")
	if !strings.Contains(v, "verify OK") || strings.Contains(v, " 0 signatures") {
		t.Errorf("verify with the token's public key: %s", v)
	}
}

// TestVersion: `version` and `--version` print the module version and the
// Go version (issue 10 item 3).
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out := mustCLI(t, args...)
		if !strings.HasPrefix(out, "securelog ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("%v: %q", args, out)
		}
	}
	if out := mustCLI(t, "--json", "version"); !strings.Contains(out, `"go":"`+runtime.Version()+`"`) || !strings.Contains(out, `"module":"github.com/securelog/securelog"`) {
		t.Errorf("version --json: %s", out)
	}
}

// TestUpTakenNATSPortAndJSONLogs: `up` on a taken NATS port fails at once
// naming the port and the server's error; --log-format json logs JSON; the
// banner lists every listener including the local witness, and /metrics
// carries the Go runtime and process collectors (issue 10 item 4).
func TestUpTakenNATSPortAndJSONLogs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	code, _, errs := runCLI(t, "up", "--data", t.TempDir(), "--listen-nats", ln.Addr().String(), "--listen", "")
	if code == 0 || !strings.Contains(errs, port) || !strings.Contains(errs, "address already in use") {
		t.Errorf("taken NATS port: exit %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "--log-format", "yaml", "version"); code != 2 || !strings.Contains(errs, "--log-format") {
		t.Errorf("bad --log-format: exit %d %s", code, errs)
	}

	data := t.TempDir()
	out, errb := startCLI(t, "--log-format", "json", "up", "--data", data, "--listen-nats", "127.0.0.1:0", "--listen", "127.0.0.1:0")
	addr := waitMatch(t, out, errb, `store RPC\s+http://(\S+)/`)
	waitMatch(t, out, errb, `witness\s+http://127\.0\.0\.1:\d+/`)
	for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if line != "" && !strings.HasPrefix(line, "{") {
			t.Errorf("--log-format json: non-JSON log line %q", line)
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"go_goroutines", "process_cpu_seconds_total", "securelog_"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics has no %s", m)
		}
	}
}
