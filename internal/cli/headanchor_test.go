package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/witnessd"
)

// Issue 9 item 9 through the CLI: an older copy of a local store with its
// head file deleted. Local appends and sign-segment are refused with an
// error naming the two real ways out; --reset-head-from-witness finds
// that the store is behind the witness's head; --accept-missing-head (or
// SECURELOG_ACCEPT_MISSING_HEAD) goes on, with a warning.
func TestCLIMissingHeadFile(t *testing.T) {
	for _, v := range []string{"SECURELOG_STORE", "SECURELOG_KEYS", "SECURELOG_KEK_FILE", "SECURELOG_TRUST", "SECURELOG_HEAD_FILE",
		"SECURELOG_RESET_HEAD_FROM_WITNESS", "SECURELOG_ACCEPT_MISSING_HEAD"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "log")
	headFile := storeDir + ".heads.json"
	trustPath := filepath.Join(dir, "trust.json")
	g := func(args ...string) []string {
		return append([]string{"--store", "pebble:" + storeDir, "--keys", filepath.Join(dir, "keys"), "--trust", trustPath}, args...)
	}
	mustCLI(t, "--keys", filepath.Join(dir, "keys"), "keys", "generate", "k1", "--alg", "ed25519")
	mustCLI(t, "--keys", filepath.Join(dir, "keys"), "keys", "export", "--out", trustPath)
	segment := func(payload string) string {
		mustCLI(t, g("append", "app", "--type", "t", "--severity", "info", "--producer", "p", "--payload", payload)...)
		out := mustCLI(t, g("close-segment", "app")...)
		id := strings.Fields(out)[1] // "segment N ..."
		mustCLI(t, g("sign-segment", "k1", id)...)
		return id
	}
	s1 := segment("one")
	backup := filepath.Join(dir, "backup")
	if err := os.CopyFS(backup, os.DirFS(storeDir)); err != nil {
		t.Fatal(err)
	}
	segment("two")

	// A witness that saw segment 2.
	wurl := startHeadWitness(t, storeDir, trustPath)

	// The attack: the older copy back in place, the head file deleted.
	restore := func() {
		t.Helper()
		if err := os.RemoveAll(storeDir); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(storeDir, os.DirFS(backup)); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(headFile); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	restore()
	appendArgs := g("append", "app", "--type", "t", "--severity", "info", "--producer", "p", "--payload", "fork")
	code, _, errs := runCLI(t, appendArgs...)
	if code == 0 || !strings.Contains(errs, "missing-head") {
		t.Fatalf("append on an unanchored older copy: exit %d\n%s", code, errs)
	}
	for _, flag := range []string{"--reset-head-from-witness", "--accept-missing-head"} {
		if !strings.Contains(errs, flag) {
			t.Fatalf("the error does not name %s:\n%s", flag, errs)
		}
	}
	if code, _, errs := runCLI(t, g("sign-segment", "k1", s1)...); code == 0 {
		t.Fatalf("sign-segment on an unanchored store: exit 0\n%s", errs)
	}
	if _, err := os.Stat(headFile); err == nil {
		t.Fatal("a head file was written for an unanchored store")
	}

	// The witness saw segment 2; the store ends at segment 1: a rollback.
	code, _, errs = runCLI(t, append([]string{"--reset-head-from-witness", wurl}, appendArgs...)...)
	if code == 0 || !strings.Contains(errs, "rollback") {
		t.Fatalf("append with --reset-head-from-witness on the older copy: exit %d\n%s", code, errs)
	}
	if code, _, errs := runCLI(t, append([]string{"--reset-head-from-witness", "ftp://x"}, appendArgs...)...); code != ExitUsage ||
		!strings.Contains(errs, "--reset-head-from-witness") {
		t.Fatalf("bad witness URL: exit %d\n%s", code, errs)
	}

	// The operator accepts the store as it is (here by the environment).
	t.Setenv("SECURELOG_ACCEPT_MISSING_HEAD", "true")
	code, _, errs = runCLI(t, appendArgs...)
	if code != 0 || !strings.Contains(errs, "WARNING") || !strings.Contains(errs, "accept-missing-head") {
		t.Fatalf("append with SECURELOG_ACCEPT_MISSING_HEAD: exit %d\n%s", code, errs)
	}
	if _, err := os.Stat(headFile); err != nil {
		t.Fatalf("head file not re-established: %v", err)
	}
}

// startHeadWitness runs a witness (HTTP, memory store) that accepted the
// newest signed checkpoint of stream "app" in the pebble store at dir,
// and returns its URL.
func startHeadWitness(t *testing.T, dir, trustPath string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := store.Open(ctx, "pebble:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := checkpoint.LoadTrustFile(trustPath)
	if err != nil {
		t.Fatal(err)
	}
	l := securelog.New(st, securelog.Options{Trust: trust})
	if err := l.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	sub, err := l.BuildWitnessSubmission(ctx, "app", 0)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.OpenSoftware(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, err := ks.GetKeyOrCreate(ctx, witnessd.DefaultIdentity, keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	wst, err := store.Open(ctx, "memory:witness")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := witnessd.New(witnessd.Config{Store: wst, Trust: trust, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(ctx, witnessd.RunConfig{Listen: "127.0.0.1:0", OnListen: func(a string) { listening <- a }})
		wst.Close()
	}()
	t.Cleanup(func() { cancel(); <-done })
	url := "http://" + <-listening
	if rec, err := witnessd.NewHTTPClient(url).Submit(ctx, sub); err != nil || !rec.Accepted {
		t.Fatalf("submit: %+v %v", rec, err)
	}
	return url
}

// The pipeline commands read the two settings from [store] in the config
// file; the global flags (or their SECURELOG_* variables) override it.
func TestHeadAnchorSettings(t *testing.T) {
	for _, v := range []string{"SECURELOG_RESET_HEAD_FROM_WITNESS", "SECURELOG_ACCEPT_MISSING_HEAD"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	file := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(file, []byte("[store]\nreset_head_from_witness = \"http://w1:8081\"\naccept_missing_head = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadPipeline(t, []string{"--config", file}, "ingester")
	if err != nil {
		t.Fatal(err)
	}
	p := pipelineFlags{cfg: cfg}
	var stderr strings.Builder
	a := &app{stderr: &stderr}
	a.logger = a.newLogger(0)
	if h := p.headAnchor(a); h.WitnessURL != "http://w1:8081" || !h.Accept || !strings.Contains(stderr.String(), "accept-missing-head") {
		t.Fatalf("from the file: %+v, warning %q", h, stderr.String())
	}
	a.resetHead = "http://w2:8081"
	p.applyGlobals(a)
	if h := p.headAnchor(a); h.WitnessURL != "http://w2:8081" {
		t.Fatalf("the flag does not override the file: %+v", h)
	}
}
