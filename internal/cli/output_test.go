package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// envHoldStore makes the test binary a helper process that opens the store
// it names, prints "held" and keeps it open until its stdin closes.
const envHoldStore = "CLI_TEST_HOLD_STORE"

func holdStore(spec string) {
	st, err := store.Open(context.Background(), spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("held")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until stdin closes
	st.Close()
	os.Exit(0)
}

// TestLockedStoreMessage: a store another process holds open (e.g. `up`
// running) is reported as in use, with the remote alternative, instead of
// `open store "…": open store "…": … resource temporarily unavailable`.
func TestLockedStoreMessage(t *testing.T) {
	spec := "pebble:" + filepath.Join(t.TempDir(), "log")
	mustCLI(t, "--store", spec, "append", "default", "--type", "t", "--producer", "p", "--payload", "x")
	holder := exec.Command(os.Args[0])
	holder.Env = append(os.Environ(), envHoldStore+"="+spec)
	holder.Stderr = os.Stderr
	in, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); _ = holder.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("holder process: %q, %v", line, err)
	}

	code, _, errs := runCLI(t, "--store", spec, "head", "default")
	if code != ExitFailed {
		t.Errorf("exit %d, want %d", code, ExitFailed)
	}
	for _, want := range []string{"in use by another process", "--store remote:x"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr %q lacks %q", errs, want)
		}
	}
	if strings.Contains(errs, "resource temporarily unavailable") {
		t.Errorf("stderr shows the raw lock error: %q", errs)
	}
	code, _, errs = runCLI(t, "--json", "--store", spec, "head", "default")
	if code != ExitFailed || !strings.Contains(errs, `"code":"store_in_use"`) {
		t.Errorf("--json: exit %d, stderr %q; want 1 and code store_in_use", code, errs)
	}
	// serve-rpc opens its store itself (issue 10 quoted its message).
	code, _, errs = runCLI(t, "serve-rpc", "--store", spec, "--listen", "127.0.0.1:0")
	if code != ExitFailed || !strings.Contains(errs, "in use by another process") || strings.Count(errs, "open store") > 0 {
		t.Errorf("serve-rpc: exit %d, stderr %q", code, errs)
	}
}

// TestExitCodes: every usage error exits 2, a failed verification or
// operation exits 1 (issue 10: usage errors exited 1 or 2 at random).
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	spec := "file:" + filepath.Join(dir, "log.jsonl")
	mustCLI(t, "--store", spec, "append", "default", "--type", "t", "--producer", "alice", "--payload", "x")
	mustCLI(t, "--store", spec, "append", "default", "--type", "t", "--producer", "bob", "--payload", "y")
	tampered := "file:" + filepath.Join(dir, "tampered.jsonl")
	b, err := os.ReadFile(filepath.Join(dir, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tampered.jsonl"), []byte(strings.Replace(string(b), `"producer":"alice"`, `"producer":"eve"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	badConfig := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(badConfig, []byte("[sealer]\nmax_entriez = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
		code string
	}{
		{"ok", []string{"--store", spec, "head", "default"}, ExitOK, ""},
		{"unknown command", []string{"nosuch"}, ExitUsage, CodeUsage},
		{"unknown subcommand", []string{"keys", "nosuch"}, ExitUsage, CodeUsage},
		{"unknown flag", []string{"--store", spec, "head", "default", "--nosuch"}, ExitUsage, CodeUsage},
		{"bad flag value", []string{"--store", spec, "verify-chain", "default", "--from", "x"}, ExitUsage, CodeUsage},
		{"missing argument", []string{"--store", spec, "read"}, ExitUsage, CodeUsage},
		{"extra argument", []string{"--store", spec, "head", "default", "other"}, ExitUsage, CodeUsage},
		{"bad seqno", []string{"--store", spec, "read", "abc"}, ExitUsage, CodeUsage},
		{"bad log format", []string{"--log-format", "xml", "--store", spec, "head", "default"}, ExitUsage, CodeUsage},
		{"no store", []string{"head", "default"}, ExitUsage, CodeUsage},
		{"unknown backend", []string{"--store", "nosuch:x", "head", "default"}, ExitUsage, CodeUsage},
		{"no trust", []string{"--store", spec, "verify", "default"}, ExitUsage, CodeUsage},
		{"payload twice", []string{"--store", spec, "append", "default", "--type", "t", "--producer", "p", "--payload", "x", "--payload-file", "-"}, ExitUsage, CodeUsage},
		{"bad wait level", []string{"publish", "default", "--type", "t", "--producer", "p", "--wait", "soon"}, ExitUsage, CodeUsage},
		{"bad config key", []string{"sealer", "--config", badConfig}, ExitUsage, CodeUsage},
		{"bad keystore", []string{"--keystore", "vault", "--keys", dir, "keys", "generate", "k"}, ExitUsage, CodeUsage},
		{"unknown key", []string{"--store", spec, "--keys", dir, "sign-segment", "nokey", "1"}, ExitFailed, ""},
		{"not found", []string{"--store", spec, "read", "99"}, ExitFailed, CodeNotFound},
		{"chain broken", []string{"--store", tampered, "verify-chain", "default"}, ExitFailed, CodeVerificationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t, "SECURELOG_STORE", "SECURE_LOG_STORE_CONFIG")
			code, _, errs := runCLI(t, tc.args...)
			if code != tc.want {
				t.Errorf("securelog %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.want, errs)
			}
			if tc.want == ExitOK {
				return
			}
			if tc.want == ExitUsage && !strings.Contains(errs, "--help' for usage") {
				t.Errorf("usage error without the help hint: %q", errs)
			}
			code, out, errs := runCLI(t, append([]string{"--json"}, tc.args...)...)
			if code != tc.want {
				t.Errorf("--json: exit %d, want %d", code, tc.want)
			}
			if out != "" {
				t.Errorf("--json error: stdout %q, want nothing", out)
			}
			// stderr: JSON log lines (if any), then the error.
			lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
			for _, l := range lines {
				if !json.Valid([]byte(l)) {
					t.Errorf("--json: stderr line is not JSON: %q", l)
				}
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil {
				t.Fatalf("--json stderr does not end in a JSON error: %q (%v)", errs, err)
			}
			if tc.code != "" && e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("--json error = %+v, want code %q and a message", e.Error, tc.code)
			}
		})
	}
}

// checkJSONOutput fails unless out is one JSON document (or, with lines,
// one or more JSON lines) whose hashes are hex strings: no arrays of
// numbers (a byte array) and no *_hex duplicate fields.
func checkJSONOutput(t *testing.T, what, out string, lines bool) []any {
	t.Helper()
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" || (!lines && len(rows) != 1) {
		t.Errorf("%s: want one JSON document on one line, got %d lines:\n%s", what, len(rows), out)
		return nil
	}
	var docs []any
	for _, row := range rows {
		var v any
		if err := json.Unmarshal([]byte(row), &v); err != nil {
			t.Errorf("%s: not JSON: %v\n%s", what, err, row)
			continue
		}
		docs = append(docs, v)
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, e := range v {
					if strings.HasSuffix(k, "_hex") {
						t.Errorf("%s: field %s%s: hex is the rule, no _hex fields", what, path, k)
					}
					walk(path+k+".", e)
				}
			case []any:
				nums := 0
				for _, e := range v {
					if _, ok := e.(float64); ok {
						nums++
					}
					walk(path+"[].", e)
				}
				if nums >= 4 && nums == len(v) {
					t.Errorf("%s: field %s is an array of numbers (bytes?), want a hex string", what, strings.TrimSuffix(path, "."))
				}
			}
		}
		walk("", v)
	}
	return docs
}

// TestJSONOutputContract: with --json every command prints one JSON
// document with hashes as lowercase hex strings (issue 10: `prove --json`
// carried the entry as byte arrays, `checkpoint` printed JSON without
// --json and *_hex fields with it, `open-payload` printed payload and
// payload_hex, and file-writing commands printed text).
func TestJSONOutputContract(t *testing.T) {
	clearEnv(t, "SECURELOG_STORE", "SECURELOG_KEYS", "SECURELOG_KEK_FILE", "SECURELOG_TRUST", "SECURELOG_KEYSTORE", "SECURELOG_HEAD_FILE")
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	st := []string{"--store", "pebble:" + p("log"), "--keys", p("keys")}
	cmds := []struct {
		name string
		args []string
	}{
		{"keys generate", []string{"keys", "generate", "signer1"}},
		{"keys list", []string{"keys", "list"}},
		{"keys export", []string{"keys", "export", "--out", p("trust.json")}},
		{"keys export stdout", []string{"keys", "export"}},
		{"keys vkey", []string{"keys", "vkey", "signer1"}},
		{"kek generate", []string{"kek", "generate", "--out", p("kek")}},
		{"streams create", []string{"streams", "create", "app"}},
		{"append", []string{"append", "app", "--type", "t", "--producer", "p", "--payload", "one"}},
		{"append 2", []string{"append", "app", "--type", "t", "--producer", "p", "--payload", "two"}},
		{"streams list", []string{"streams", "list"}},
		{"read", []string{"read", "1"}},
		{"head", []string{"head", "app"}},
		{"verify-chain", []string{"verify-chain", "app"}},
		{"close-segment", []string{"close-segment", "app"}},
		{"segments", []string{"segments", "app"}},
		{"sign-segment", []string{"sign-segment", "signer1", "1"}},
		{"checkpoint", []string{"checkpoint", "1"}},
		{"prove", []string{"prove", "1"}},
		{"open-payload", []string{"open-payload", "1"}},
		{"verify", []string{"--trust", p("trust.json"), "verify", "app"}},
		{"export", []string{"--trust", p("trust.json"), "export", "app", "--out", p("bundle.json")}},
		{"audit", []string{"--trust", p("trust.json"), "audit", p("bundle.json")}},
		{"streams deprecate", []string{"streams", "deprecate", "app"}},
		{"version", []string{"version"}},
	}
	outs := map[string]string{}
	for _, c := range cmds {
		code, out, errs := runCLI(t, append(append([]string{"--json"}, st...), c.args...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", c.name, code, errs)
		}
		checkJSONOutput(t, c.name, out, false)
		outs[c.name] = out
	}

	// checkpoint prints text without --json.
	if out := mustCLI(t, append(st, "checkpoint", "1")...); strings.HasPrefix(out, "{") || !strings.Contains(out, "checkpoint_hash ") {
		t.Errorf("checkpoint without --json: %q", out)
	}
	// The proof `prove --json` prints verifies, and so does one in the
	// earlier shape (the entry as wire bytes).
	var seg []map[string]any
	if err := json.Unmarshal([]byte(outs["segments"]), &seg); err != nil || len(seg) != 1 {
		t.Fatalf("segments: %v %s", err, outs["segments"])
	}
	root := seg[0]["merkle_root"].(string)
	if err := os.WriteFile(p("proof.json"), []byte(outs["prove"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustCLI(t, "--json", "verify-proof", p("proof.json"), "--root", root); !strings.Contains(out, `"position_checked":true`) {
		t.Errorf("verify-proof: %s", out)
	}
	var pf proofFile
	if err := json.Unmarshal([]byte(outs["prove"]), &pf); err != nil || pf.Entry == nil {
		t.Fatalf("prove --json does not read back: %v", err)
	}
	old, err := json.Marshal(struct {
		securelog.InclusionProof
		Entry wire.EntryRow `json:"entry"`
	}{pf.InclusionProof, pf.Entry.EntryRow})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(old), `"entry_hash":[`) {
		t.Fatalf("the wire shape has no byte arrays: %s", old)
	}
	if err := os.WriteFile(p("old-proof.json"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "verify-proof", p("old-proof.json"), "--root", root)
	// A tampered entry in the new shape is still caught.
	if err := os.WriteFile(p("bad-proof.json"), []byte(strings.Replace(outs["prove"], `"producer":"p"`, `"producer":"q"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, "verify-proof", p("bad-proof.json"), "--root", root); code != ExitFailed {
		t.Errorf("tampered proof entry: exit %d, want 1", code)
	}
}

// TestPublishCheckpointedJSON: `publish --wait checkpointed --json` prints
// hashes as hex (issue 10: the segment's merkle_root was an array of
// numbers and the receipts had *_hex fields), and `up --json` prints its
// banner as one JSON document.
func TestPublishCheckpointedJSON(t *testing.T) {
	clearEnv(t, "SECURELOG_STORE", "SECURELOG_KEYS", "SECURELOG_KEK_FILE", "SECURELOG_TRUST", "SECURELOG_KEYSTORE", "SECURELOG_HEAD_FILE")
	data := t.TempDir()
	out, errs := startCLI(t, "--json", "up", "--data", data, "--listen-nats", "127.0.0.1:0", "--listen", "", "--max-age", "50ms")
	url := waitMatch(t, out, errs, `"nats_url":"(nats://[^"]+)"`)
	checkJSONOutput(t, "up", out.String(), false)
	for _, wait := range []string{"accepted", "committed", "checkpointed"} {
		got := mustCLI(t, "--json", "--nats", url, "--data-dir", data, "publish", "default", "--type", "t", "--producer", "p", "--payload", "x",
			"--wait", wait, "--timeout", "60s")
		docs := checkJSONOutput(t, "publish --wait "+wait, got, false)
		if len(docs) == 1 && docs[0].(map[string]any)["level"] != wait {
			t.Errorf("publish --wait %s: %s", wait, got)
		}
		if wait == "checkpointed" && (!strings.Contains(got, `"merkle_root":"`) || !strings.Contains(got, `"cosignature":"`)) {
			t.Errorf("publish --wait checkpointed: no hex merkle_root or witness cosignature: %s", got)
		}
	}
}

// TestFlagAliases: server addresses are --listen everywhere and the store
// RPC subject is --rpc-subject everywhere; the old names (--http of up and
// ingester, --subject of serve-rpc) and their variables still work, hidden
// from help, with a warning on stderr, and never override the new name
// (issue 10 item 8).
func TestFlagAliases(t *testing.T) {
	for _, tc := range []struct {
		cmd, old, new string
		env           map[string]string
		args          []string
		want          string
		warn          string
	}{
		{cmd: "up", old: "http", new: "listen", args: []string{"--http", "127.0.0.1:1"}, want: "127.0.0.1:1", warn: "--http is deprecated, use --listen"},
		{cmd: "ingester", old: "http", new: "listen", args: []string{"--http", "127.0.0.1:2"}, want: "127.0.0.1:2", warn: "--http is deprecated, use --listen"},
		{cmd: "serve-rpc", old: "subject", new: "rpc-subject", args: []string{"--subject", "s.old"}, want: "s.old", warn: "--subject is deprecated, use --rpc-subject"},
		{cmd: "up", old: "http", new: "listen", env: map[string]string{"SECURELOG_HTTP": "127.0.0.1:3"}, want: "127.0.0.1:3", warn: "SECURELOG_HTTP is deprecated, use SECURELOG_LISTEN"},
		{cmd: "up", old: "http", new: "listen", env: map[string]string{"SECURELOG_LISTEN": "127.0.0.1:4"}, want: "127.0.0.1:4"},
		{cmd: "up", old: "http", new: "listen", env: map[string]string{"SECURELOG_LISTEN": "127.0.0.1:5", "SECURELOG_HTTP": "127.0.0.1:6"}, want: "127.0.0.1:5"},
		{cmd: "up", old: "http", new: "listen", env: map[string]string{"SECURELOG_HTTP": "127.0.0.1:7"}, args: []string{"--listen", "127.0.0.1:8"}, want: "127.0.0.1:8"},
		{cmd: "up", old: "http", new: "listen", env: map[string]string{"SECURELOG_LISTEN": "127.0.0.1:9"}, args: []string{"--http", "127.0.0.1:10"}, want: "127.0.0.1:10", warn: "--http is deprecated"},
		{cmd: "serve-rpc", old: "subject", new: "rpc-subject", env: map[string]string{"SECURELOG_SUBJECT": "s.env"}, want: "s.env", warn: "SECURELOG_SUBJECT is deprecated, use SECURELOG_RPC_SUBJECT"},
	} {
		var stderr strings.Builder
		a := &app{stderr: &stderr, lookupEnv: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }}
		root := a.rootCmd()
		cmd, _, err := root.Find([]string{tc.cmd})
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatalf("%s %v: %v", tc.cmd, tc.args, err)
		}
		a.warnDeprecated(cmd)
		if err := a.applyEnv(cmd); err != nil {
			t.Fatal(err)
		}
		if got := cmd.Flags().Lookup(tc.new).Value.String(); got != tc.want {
			t.Errorf("%s %v env %v: --%s = %q, want %q", tc.cmd, tc.args, tc.env, tc.new, got, tc.want)
		}
		if (tc.warn == "") != (stderr.Len() == 0) || !strings.Contains(stderr.String(), tc.warn) {
			t.Errorf("%s %v env %v: stderr %q, want warning %q", tc.cmd, tc.args, tc.env, stderr.String(), tc.warn)
		}
		if f := cmd.Flags().Lookup(tc.old); f == nil || !f.Hidden {
			t.Errorf("%s: --%s is not a hidden alias", tc.cmd, tc.old)
		}
	}
	// The old name works end to end and warns on stderr, not stdout.
	code, out, errs := runCLI(t, "serve-rpc", "--subject", "x")
	if code != ExitUsage || out != "" || !strings.Contains(errs, "--subject is deprecated") {
		t.Errorf("serve-rpc --subject: exit %d stdout %q stderr %q", code, out, errs)
	}
}

// TestPublishPayloadFile: publish takes the payload from --payload-file
// FILE or stdin (--payload-file -), like append.
func TestPublishPayloadFile(t *testing.T) {
	clearEnv(t, "SECURELOG_STORE", "SECURELOG_KEYS", "SECURELOG_KEK_FILE", "SECURELOG_TRUST", "SECURELOG_KEYSTORE", "SECURELOG_HEAD_FILE")
	data := t.TempDir()
	out, errs := startCLI(t, "--json", "up", "--data", data, "--listen-nats", "127.0.0.1:0", "--listen", "", "--no-witness")
	url := waitMatch(t, out, errs, `"nats_url":"(nats://[^"]+)"`)
	file := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(file, []byte("from a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	publish := func(stdin string, args ...string) uint64 {
		t.Helper()
		var o, e strings.Builder
		all := append([]string{"--json", "--nats", url, "--data-dir", data, "publish", "default", "--type", "t", "--producer", "p"}, args...)
		if code := Main(context.Background(), all, strings.NewReader(stdin), &o, &e); code != 0 {
			t.Fatalf("publish %v: exit %d %s", args, code, e.String())
		}
		var res struct{ Seqno uint64 }
		if err := json.Unmarshal([]byte(o.String()), &res); err != nil {
			t.Fatal(err)
		}
		return res.Seqno
	}
	fromFile := publish("", "--payload-file", file)
	fromStdin := publish("from stdin", "--payload-file", "-")
	if code, _, errs := runCLI(t, "--nats", url, "--data-dir", data, "publish", "default", "--type", "t", "--producer", "p", "--payload", "x", "--payload-file", file); code != ExitUsage {
		t.Errorf("--payload with --payload-file: exit %d %s", code, errs)
	}
	// Read the payloads back through the store RPC.
	for seqno, want := range map[uint64]string{fromFile: "from a file", fromStdin: "from stdin"} {
		got := mustCLI(t, "--json", "--store", "remote:x", "--transport", "nats", "--nats", url, "--data-dir", data, "--no-head-file", "read", fmt.Sprint(seqno))
		if !strings.Contains(got, fmt.Sprintf(`"payload":"%x"`, want)) {
			t.Errorf("seqno %d: %s, want payload %q", seqno, got, want)
		}
	}
}

// TestUpConfigHTTPKey: the config key [up] http still sets the listen
// address, with a warning; with [up] listen too it is a usage error.
func TestUpConfigHTTPKey(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		toml, want, warn string
		code             int
	}{
		{"[up]\nlisten = \"127.0.0.1:11\"\n", "127.0.0.1:11", "", 0},
		{"[up]\nhttp = \"127.0.0.1:12\"\n", "127.0.0.1:12", "[up] http is deprecated", 0},
		{"[up]\nhttp = \"127.0.0.1:13\"\nlisten = \"127.0.0.1:14\"\n", "", "", ExitUsage},
	} {
		cfg := filepath.Join(dir, "up.toml")
		if err := os.WriteFile(cfg, []byte(tc.toml), 0o600); err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		a := &app{stderr: &stderr}
		var p pipelineFlags
		c := &cobra.Command{Use: "up"}
		p.add(c, "up")
		if err := c.ParseFlags([]string{"--config", cfg}); err != nil {
			t.Fatal(err)
		}
		err := p.load(c, a)
		if code, _ := classifyError(err); err != nil && code != tc.code || err == nil && tc.code != 0 {
			t.Errorf("%q: error %v, want exit %d", tc.toml, err, tc.code)
			continue
		}
		if err == nil && p.cfg.Up.Listen != tc.want {
			t.Errorf("%q: listen %q, want %q", tc.toml, p.cfg.Up.Listen, tc.want)
		}
		if !strings.Contains(stderr.String(), tc.warn) || (tc.warn == "") != (stderr.Len() == 0) {
			t.Errorf("%q: stderr %q, want %q", tc.toml, stderr.String(), tc.warn)
		}
	}
}
