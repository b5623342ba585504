package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// deployPaths are the production directories of deployments/ and where the
// test puts them.
type deployPaths struct {
	etc, varlib, witness string
}

func (p deployPaths) template(s string) string {
	s = strings.ReplaceAll(s, "/var/lib/securelog-witness", p.witness)
	s = strings.ReplaceAll(s, "/var/lib/securelog", p.varlib)
	return strings.ReplaceAll(s, "/etc/securelog", p.etc)
}

// execStart returns the ExecStart command line of a shipped systemd unit.
func execStart(t *testing.T, root, unit string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "deployments", "systemd", unit))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			return v
		}
	}
	t.Fatalf("%s has no ExecStart", unit)
	return ""
}

// mustRun runs the securelog binary and returns its output.
func mustRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(securelogBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("securelog %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDeploymentEndToEnd starts deployments/ as shipped — the 3-node NATS
// cluster from nats/*.conf, and the ingester, sealer, signer and witness
// from the ExecStart lines of systemd/*.service with config/*.toml — with
// only ports and directories changed, the secrets made as the install
// section of deployments/README.md makes them. A producer publishes an
// event; an auditor sees its checkpoint (signed, and cosigned by the
// witness) and verifies the stream over the store RPC. No worker may log a
// password or token.
func TestDeploymentEndToEnd(t *testing.T) {
	root := repoRoot(t)
	dc := startDeployCluster(t)
	base := t.TempDir()
	p := deployPaths{etc: filepath.Join(base, "etc"), varlib: filepath.Join(base, "var", "lib", "securelog"),
		witness: filepath.Join(base, "var", "lib", "securelog-witness")}
	for _, d := range []string{p.etc, p.varlib, p.witness} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	httpPort, witnessPort := freePort(t), freePort(t)

	// Secrets, as in deployments/README.md.
	mustRun(t, nil, "--keys", filepath.Join(p.varlib, "keys"), "keys", "generate", "securelog", "--alg", "ed25519")
	mustRun(t, nil, "--keys", filepath.Join(p.varlib, "keys"), "keys", "export", "--out", filepath.Join(p.etc, "trust.json"))
	mustRun(t, nil, "kek", "generate", "--out", filepath.Join(p.etc, "kek.hex"))
	mustRun(t, nil, "witness", "keys", "--data", p.witness, "--out", filepath.Join(p.etc, "witnesses.json"))
	secrets := []string{}
	writeSecret := func(name, value string) {
		if err := os.WriteFile(filepath.Join(p.etc, name), []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, value)
	}
	for _, u := range []string{"ingester", "sealer", "signer", "witness"} {
		writeSecret("nats-"+u+".password", dc.passwords[u])
	}
	tokens := map[string]string{}
	for _, c := range []string{"sealer", "signer", "witness", "auditor"} {
		tokens[c] = randomSecret(t)
		writeSecret(c+".token", tokens[c])
	}
	tokensJSON := fmt.Sprintf(`[{"token":%q,"role":"reader"},{"token":%q,"role":"writer"},{"token":%q,"role":"reader"},{"token":%q,"role":"reader"}]`,
		tokens["sealer"], tokens["signer"], tokens["witness"], tokens["auditor"])
	if err := os.WriteFile(filepath.Join(p.etc, "tokens.json"), []byte(tokensJSON), 0o600); err != nil {
		t.Fatal(err)
	}

	// Configurations: only the NATS addresses, the HTTP port and the
	// directories change.
	shippedNATS := "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"
	for _, w := range []string{"ingester", "sealer", "signer"} {
		b, err := os.ReadFile(filepath.Join(root, "deployments", "config", w+".toml"))
		if err != nil {
			t.Fatal(err)
		}
		conf := replaceExactly(t, w+".toml", string(b), shippedNATS, dc.url(""), 1)
		if w == "ingester" {
			conf = replaceExactly(t, w+".toml", conf, "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", httpPort), 1)
		}
		if err := os.WriteFile(filepath.Join(p.etc, w+".toml"), []byte(p.template(conf)), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var workers []*deployWorker
	start := func(unit string) *deployWorker {
		line := execStart(t, root, unit)
		line = replaceExactly(t, unit, line, "/usr/local/bin/securelog ", "", 1)
		if strings.Contains(line, shippedNATS) {
			line = replaceExactly(t, unit, line, shippedNATS, dc.url(""), 1)
		}
		if strings.Contains(line, "127.0.0.1:8090") {
			line = replaceExactly(t, unit, line, "127.0.0.1:8090", fmt.Sprintf("127.0.0.1:%d", witnessPort), 1)
		}
		w := startDeployWorker(ctx, t, unit, strings.Fields(p.template(line)))
		workers = append(workers, w)
		return w
	}
	ingester := start("securelog-ingester.service")
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort), ingester)
	witness := start("securelog-witness.service")
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/v1/witness/head/default", witnessPort), witness)
	start("securelog-sealer.service")
	start("securelog-signer.service")

	// An auditor (NATS user "auditor") watches the checkpoints; a producer
	// (NATS user "producer", which cannot reach the store RPC) publishes and
	// waits until the event is committed; then its checkpoint arrives,
	// signed and cosigned by the witness.
	auditor := dc.connect(t, "auditor")
	checkpoints, err := auditor.SubscribeSync("securelog.checkpoint.default")
	if err != nil {
		t.Fatal(err)
	}
	if err := auditor.Flush(); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(base, "producer.password")
	if err := os.WriteFile(pwFile, []byte(dc.passwords["producer"]), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := exec.CommandContext(ctx, securelogBin, "publish", "default", "--type", "user.login", "--severity", "info",
		"--producer", "authd", "--payload", "alice", "--wait", "committed", "--nats", dc.url(""),
		"--nats-user", "producer", "--nats-password-file", pwFile)
	out, err := pub.CombinedOutput()
	if err != nil {
		t.Fatalf("publish: %v\n%s\n%s", err, out, logsOf(workers))
	}
	t.Logf("publish: %s", out)
	msg, err := checkpoints.NextMsg(90 * time.Second)
	if err != nil {
		t.Fatalf("no checkpoint of stream default within 90 s: %v\n%s", err, logsOf(workers))
	}
	var ck struct {
		SegmentID uint64 `json:"segment_id"`
		SeqEnd    uint64 `json:"seq_end"`
		Receipts  []struct {
			Accepted       bool   `json:"accepted"`
			CosignatureHex string `json:"cosignature_hex"`
		} `json:"receipts"`
	}
	if err := json.Unmarshal(msg.Data, &ck); err != nil {
		t.Fatalf("checkpoint event %s: %v", msg.Data, err)
	}
	if ck.SegmentID == 0 || ck.SeqEnd < 1 || len(ck.Receipts) != 1 || !ck.Receipts[0].Accepted || ck.Receipts[0].CosignatureHex == "" {
		t.Fatalf("checkpoint event without the witness's cosignature: %s\n%s", msg.Data, logsOf(workers))
	}
	t.Logf("checkpoint: %s", msg.Data)

	// An auditor verifies the stream through the ingester's store RPC with
	// only the public keys.
	verify := mustRun(t, []string{"SECURELOG_RPC_TOKEN=" + tokens["auditor"]}, "--store", "remote:x", "--transport", "http",
		"--rpc-url", fmt.Sprintf("http://127.0.0.1:%d/", httpPort), "--trust", filepath.Join(p.etc, "trust.json"), "verify", "default")
	t.Logf("verify: %s", verify)

	// The store RPC on NATS is authorised by the NATS user (issue 9 item
	// 4): the auditor, a reader, cannot publish on the writer subject (no
	// answer) and is refused mutating methods on the read-only one; no
	// token is needed or sent.
	forged := []byte(`{"method":"secure-log-segment-set-signature","params":["default",1,"00","attacker"]}`)
	if _, err := auditor.Request("securelog.rpc", forged, 3*time.Second); err == nil {
		t.Error("the auditor's mutating request on securelog.rpc was answered")
	}
	if r, err := auditor.Request("securelog.rpc.read", forged, 10*time.Second); err != nil || r.Header.Get("Securelog-Status") != "403" {
		t.Errorf("auditor's mutating request on securelog.rpc.read: %v, want 403", err)
	}
	if r, err := auditor.Request("securelog.rpc.read", []byte(`{"method":"secure-log-global-head","params":null}`), 10*time.Second); err != nil || r.Header.Get("Securelog-Status") != "200" {
		t.Errorf("auditor's read on securelog.rpc.read without a token: %v", err)
	}

	// The witness has witnessed the checkpoint.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/witness/head/default", witnessPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("witness head of default: %s\n%s", resp.Status, logsOf(workers))
	}

	cancel()
	for _, w := range workers {
		w.wait()
	}
	logs := logsOf(workers)
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a worker logged a secret (%s…):\n%s", s[:6], logs)
		}
	}
}

// deployWorker is one worker subprocess.
type deployWorker struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func startDeployWorker(ctx context.Context, t *testing.T, name string, args []string) *deployWorker {
	t.Helper()
	w := &deployWorker{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	w.cmd = exec.Command(securelogBin, args...)
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		_ = w.cmd.Wait()
		close(w.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-w.done:
			case <-time.After(15 * time.Second):
				_ = w.cmd.Process.Kill()
			}
		case <-w.done:
		}
	}()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		<-w.done
	})
	return w
}

func (w *deployWorker) wait() { <-w.done }

func logsOf(ws []*deployWorker) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "--- %s (%s) ---\n%s\n", w.name, strings.Join(w.cmd.Args[1:], " "), w.out.String())
	}
	return b.String()
}

// waitHTTP waits until url answers (any status) or the worker exits.
func waitHTTP(t *testing.T, url string, w *deployWorker) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Ready, not only listening: an ingester's listener answers 503
		// from the moment it is bound, while it waits for JetStream.
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				return
			}
		}
		select {
		case <-w.done:
			t.Fatalf("%s exited:\n%s", w.name, w.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is not ready (answers 503 or nothing) after 60 s:\n%s", w.name, url, w.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDeploymentUpUnit starts securelog-up.service's command with
// config/up.toml as shipped (only the data directory and the ports
// changed) and publishes an event through it.
func TestDeploymentUpUnit(t *testing.T) {
	root := repoRoot(t)
	base := t.TempDir()
	p := deployPaths{etc: filepath.Join(base, "etc"), varlib: filepath.Join(base, "var", "lib", "securelog")}
	if err := os.MkdirAll(p.etc, 0o700); err != nil {
		t.Fatal(err)
	}
	natsPort, httpPort := freePort(t), freePort(t)
	b, err := os.ReadFile(filepath.Join(root, "deployments", "config", "up.toml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := replaceExactly(t, "up.toml", string(b), "127.0.0.1:4222", fmt.Sprintf("127.0.0.1:%d", natsPort), 1)
	conf = replaceExactly(t, "up.toml", conf, "127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", httpPort), 1)
	if err := os.WriteFile(filepath.Join(p.etc, "up.toml"), []byte(p.template(conf)), 0o600); err != nil {
		t.Fatal(err)
	}
	line := replaceExactly(t, "securelog-up.service", execStart(t, root, "securelog-up.service"), "/usr/local/bin/securelog ", "", 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up := startDeployWorker(ctx, t, "securelog-up.service", strings.Fields(p.template(line)))
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", httpPort), up)
	// up is authenticated: an anonymous producer is refused; with the
	// credentials up generated in its data directory (--data-dir) the
	// event is committed.
	publish := []string{"publish", "default", "--type", "user.login", "--severity", "info",
		"--producer", "authd", "--payload", "alice", "--nats", fmt.Sprintf("nats://127.0.0.1:%d", natsPort)}
	anon := exec.CommandContext(ctx, securelogBin, append([]string{"--data-dir", t.TempDir()}, publish...)...)
	if out, err := anon.CombinedOutput(); err == nil || !strings.Contains(string(out), "Authorization Violation") {
		t.Fatalf("anonymous publish to the up unit: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, securelogBin, append([]string{"--data-dir", p.varlib}, publish...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "committed seqno 1") {
		t.Fatalf("publish: %v\n%s\n--- up ---\n%s", err, out, up.out.String())
	}
	for _, f := range []string{"auth", filepath.Join("auth", "producer.nk"), filepath.Join("auth", "writer.token")} {
		st, err := os.Stat(filepath.Join(p.varlib, f))
		if err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v, mode %v: credentials must be private to their owner", f, err, st.Mode())
		}
	}
	cancel()
	up.wait()
}
