package stackcheck

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/keystore/pkcs11"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// securelogBinary builds cmd/securelog once into a temporary directory.
func securelogBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stackcheck-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "securelog")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/securelog/securelog/cmd/securelog").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build securelog: %v", buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// tokenConfig returns the PKCS#11 token of the environment or a throwaway
// SoftHSM token made with .ci/softhsm-setup.sh; "" reason when available.
func tokenConfig(t *testing.T) (*pkcs11.Config, string) {
	t.Helper()
	if os.Getenv(pkcs11.EnvModule) == "" {
		if _, err := exec.LookPath("softhsm2-util"); err != nil {
			reason := "softhsm2 is not installed and " + pkcs11.EnvModule + " is unset"
			if os.Getenv("SECURELOG_REQUIRE_PKCS11") != "" {
				t.Fatalf("SECURELOG_REQUIRE_PKCS11 is set (CI) but %s", reason)
			}
			return nil, reason
		}
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "..", ".ci", "softhsm-setup.sh")
		out, err := exec.Command("bash", "-c", `eval "$("$0" "$1")" && env | grep -E '^(SOFTHSM2_CONF|SECURELOG_PKCS11_)'`, script, t.TempDir()).Output()
		if err != nil {
			t.Fatalf("softhsm setup: %v", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			k, v, _ := strings.Cut(line, "=")
			t.Setenv(k, v)
		}
		t.Setenv(pkcs11.EnvPIN, "")
		os.Unsetenv(pkcs11.EnvPIN)
	}
	cfg, err := pkcs11.ConfigFrom(os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return &cfg, ""
}

// TestAllStacks runs the whole matrix: 5 stacks × (software + PKCS#11) ×
// 3 algorithms; the HTTP stack launches the freshly built binary.
func TestAllStacks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the securelog binary and runs 30 scenarios")
	}
	cfg, reason := tokenConfig(t)
	opts := Options{Binary: securelogBinary(t), Dir: t.TempDir(), PKCS11: cfg, SkipPKCS11: cfg == nil}
	if cfg == nil {
		t.Logf("PKCS#11 cells left out: %s", reason)
	}
	runs := 0
	opts.OnRun = func(stack, ks string, cells []Cell) { runs++ }
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	keystores := len(keystore.Algorithms)
	if cfg != nil {
		keystores *= 2
	}
	if runs != len(Stacks)*keystores || len(res.Cells) != runs*len(Checks) || len(res.Keystores) != keystores {
		t.Fatalf("%d runs, %d cells, %d keystores", runs, len(res.Cells), len(res.Keystores))
	}
	if !res.OK() {
		t.Fatalf("not every cell passed:\n%s", res.Table())
	}
	table := res.Table()
	t.Logf("\n%s", table)
	if strings.Contains(table, "FAIL") || !strings.Contains(table, "remote-nats") {
		t.Fatalf("table:\n%s", table)
	}
}

func TestBrokenServerFailsCells(t *testing.T) {
	script := filepath.Join(t.TempDir(), "fake")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'no such command' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{Stacks: []string{StackRemoteHTTP}, Algorithms: []string{keystore.Ed25519},
		SkipPKCS11: true, Binary: script, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || len(res.Failures()) != len(Checks) {
		t.Fatalf("want every cell failed:\n%s", res.Table())
	}
	if d := res.Failures()[0].Detail; !strings.Contains(d, "serve-rpc exited") || !strings.Contains(d, "no such command") {
		t.Errorf("detail %q", d)
	}
}

// Without a token the PKCS#11 cells are skipped with the caller's reason and
// the result is OK; with RequirePKCS11 they fail with it.
func TestPKCS11Unavailable(t *testing.T) {
	const reason = "no token: install softhsm2"
	opts := Options{Stacks: []string{StackSQLite}, Algorithms: []string{keystore.ECDSAP256}, Dir: t.TempDir(), PKCS11Unavailable: reason}
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var sw, hw int
	for _, c := range res.Cells {
		switch {
		case c.Keystore == "software/ecdsa-p256" && c.Pass:
			sw++
		case c.Keystore == "pkcs11/ecdsa-p256" && !c.Pass && c.Skipped && c.Detail == reason:
			hw++
		}
	}
	if sw != len(Checks) || hw != len(Checks) || !res.OK() || len(res.Failures()) != 0 || !strings.Contains(res.Table(), "SKIP") {
		t.Fatalf("software passes %d, pkcs11 skipped %d (want %d each):\n%s", sw, hw, len(Checks), res.Table())
	}

	opts.RequirePKCS11 = true
	res, err = Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || len(res.Failures()) != len(Checks) || len(res.Skipped()) != 0 || res.Failures()[0].Detail != reason {
		t.Fatalf("required: want the PKCS#11 cells failed:\n%s", res.Table())
	}
}

func TestProvisionSoftHSMMissing(t *testing.T) {
	_, err := ProvisionSoftHSM(context.Background(), SoftHSM{Util: filepath.Join(t.TempDir(), "softhsm2-util"), Dir: t.TempDir()})
	if !errors.Is(err, ErrSoftHSMMissing) {
		t.Fatalf("err = %v, want ErrSoftHSMMissing", err)
	}
	if _, err := ProvisionSoftHSM(context.Background(), SoftHSM{Dir: t.TempDir()}); !errors.Is(err, ErrSoftHSMMissing) {
		t.Fatalf("no util: err = %v", err)
	}
}

// A provisioned token signs in every algorithm (the module reads
// SOFTHSM2_CONF at initialisation, so the test sets it).
func TestProvisionSoftHSM(t *testing.T) {
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		if os.Getenv("SECURELOG_REQUIRE_PKCS11") != "" {
			t.Fatal("SECURELOG_REQUIRE_PKCS11 is set but softhsm2-util is not installed")
		}
		t.Skip("softhsm2 is not installed")
	}
	tok, err := ProvisionSoftHSM(context.Background(), SoftHSM{Util: util, Dir: t.TempDir(), Label: "provision-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", tok.ConfPath)
	res, err := Run(context.Background(), Options{Stacks: []string{StackPebble}, Algorithms: []string{keystore.Ed25519}, Dir: t.TempDir(), PKCS11: &tok.Config})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Passed() != 2*len(Checks) {
		t.Fatalf("want every cell passed:\n%s", res.Table())
	}
}

func TestRunRejectsUnknownStackAndAlgorithm(t *testing.T) {
	if _, err := Run(context.Background(), Options{Stacks: []string{"mysql"}}); err == nil || !strings.Contains(err.Error(), `"mysql"`) {
		t.Errorf("unknown stack: %v", err)
	}
	if _, err := Run(context.Background(), Options{Algorithms: []string{"dsa"}}); err == nil {
		t.Error("unknown algorithm accepted")
	}
}

func TestFingerprintDiff(t *testing.T) {
	ref := fingerprint{Checkpoint: "aa", Heads: [2]uint64{2, 3}, Streams: []string{"default/public"}}
	if err := ref.diff(ref); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mod  func(*fingerprint)
		want string
	}{
		{"checkpoint", func(f *fingerprint) { f.Checkpoint = "ab" }, "checkpoint hash"},
		{"heads", func(f *fingerprint) { f.Heads[1] = 4 }, "heads"},
		{"streams", func(f *fingerprint) { f.Streams = nil }, "streams"},
		{"siglen", func(f *fingerprint) { f.SigLen = 1 }, "signature length"},
	}
	for _, tt := range tests {
		f := ref
		f.Streams = append([]string(nil), ref.Streams...)
		tt.mod(&f)
		if err := f.diff(ref); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestTable(t *testing.T) {
	r := Result{Stacks: []string{"a", "b"}, Keystores: []string{"k1", "k2"}, Checks: []string{"x", "y"}, Cells: []Cell{
		{"a", "k1", "x", true, "", false}, {"a", "k2", "x", true, "", false}, {"a", "k1", "y", true, "", false}, {"a", "k2", "y", false, "boom", false},
		{"b", "k1", "x", true, "", false}, {"b", "k1", "y", false, "no token", true},
	}}
	got := r.Table()
	for _, want := range []string{"x                  PASS         PASS", "y                  FAIL 1/2     SKIP", "a k2 y: boom", "1 cell(s) skipped: no token"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if r.OK() {
		t.Error("OK with a failed cell")
	}
}
