package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/keystore/pkcs11"
)

// softToken points SECURELOG_PKCS11_* at a throwaway SoftHSM token made
// with .ci/softhsm-setup.sh (skips when SoftHSM is not installed).
func softToken(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		if os.Getenv("SECURELOG_REQUIRE_PKCS11") != "" {
			t.Fatal("SECURELOG_REQUIRE_PKCS11 is set (CI) but softhsm2 is not installed")
		}
		t.Skip("softhsm2 is not installed (run .ci/softhsm-setup.sh)")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", ".ci", "softhsm-setup.sh")
	out, err := exec.Command("bash", "-c", `eval "$("$0" "$1")" && env | grep -E '^(SOFTHSM2_CONF|SECURELOG_PKCS11_)'`, script, t.TempDir()).Output()
	if err != nil {
		t.Fatalf("softhsm setup: %v", err)
	}
	t.Setenv(pkcs11.EnvPIN, "")
	os.Unsetenv(pkcs11.EnvPIN)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		t.Setenv(k, v)
	}
}

func TestPKCS11Commands(t *testing.T) {
	softToken(t)
	for _, v := range []string{"SECURELOG_STORE", "SECURELOG_KEYS", "SECURELOG_KEK_FILE", "SECURELOG_TRUST", "SECURELOG_KEYSTORE_ALG", "SECURE_LOG_KEYSTORE_ALG"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	dir := t.TempDir()
	ids := map[string]string{keystore.Ed25519: "hsm-ed", keystore.ECDSAP256: "hsm-ec", keystore.RSAPSSSHA256: "hsm-rsa"}
	for alg, id := range ids {
		var e checkpoint.TrustEntry
		if err := json.Unmarshal([]byte(mustCLI(t, "--json", "pkcs11", "generate", id, "--alg", alg)), &e); err != nil {
			t.Fatal(err)
		}
		if e.Identity != id || e.Algorithm != alg || len(e.PublicKey) == 0 {
			t.Errorf("generate %s: %+v", alg, e)
		}
	}
	if code, _, errs := runCLI(t, "pkcs11", "generate", "hsm-ed"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("regenerate: exit %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, "pkcs11", "generate", "x", "--alg", "dsa"); code != 2 || !strings.Contains(errs, "dsa") {
		t.Errorf("bad alg: exit %d %q", code, errs)
	}

	trustPath := filepath.Join(dir, "trust.json")
	mustCLI(t, "pkcs11", "export", "--identity", "hsm-ed,hsm-ec", "--identity", "hsm-rsa", "--out", trustPath)
	trust, err := checkpoint.LoadTrustFile(trustPath)
	if err != nil || trust.Len() != 3 {
		t.Fatalf("trust file: %v (%d entries)", err, trust.Len())
	}
	if code, _, errs := runCLI(t, "pkcs11", "export", "--identity", "nope"); code != 1 || !strings.Contains(errs, "nope") {
		t.Errorf("export unknown key: exit %d %q", code, errs)
	}

	// Three segments, each signed in the token with another algorithm; the
	// stream then verifies against the exported public keys.
	g := []string{"--store", "pebble:" + filepath.Join(dir, "log")}
	for i, id := range []string{"hsm-ed", "hsm-ec", "hsm-rsa"} {
		mustCLI(t, append(g, "append", "default", "--type", "t", "--severity", "info", "--producer", "p", "--payload", id)...)
		mustCLI(t, append(g, "close-segment", "default")...)
		out := mustCLI(t, append(g, "--json", "pkcs11", "sign-segment", id, []string{"1", "2", "3"}[i])...)
		if !strings.Contains(out, `"keystore":"pkcs11"`) {
			t.Errorf("sign-segment output %s", out)
		}
	}
	if out := mustCLI(t, append(g, "--trust", trustPath, "verify", "default")...); !strings.Contains(out, "3 signatures") {
		t.Errorf("verify: %s", out)
	}
	mustCLI(t, append(g, "export", "default", "--out", filepath.Join(dir, "b.json"))...)
	if out := mustCLI(t, "audit", filepath.Join(dir, "b.json"), "--trust", trustPath); !strings.Contains(out, "3 signatures verified") {
		t.Errorf("audit: %s", out)
	}
	// --keystore pkcs11 makes the ordinary sign-segment sign in the token.
	mustCLI(t, append(g, "append", "default", "--type", "t", "--producer", "p", "--payload", "x")...)
	mustCLI(t, append(g, "close-segment", "default")...)
	if out := mustCLI(t, append(g, "--keystore", "pkcs11", "sign-segment", "hsm-ed", "4")...); !strings.Contains(out, "segment 4 signed by hsm-ed") {
		t.Errorf("sign-segment --keystore pkcs11: %s", out)
	}
	if out := mustCLI(t, append(g, "--trust", trustPath, "verify", "default")...); !strings.Contains(out, "4 signatures") {
		t.Errorf("verify: %s", out)
	}
	// The signer hook picks the token with --keystore pkcs11.
	s, closeFn, err := (&app{keystoreFlag: "pkcs11", lookupEnv: os.LookupEnv}).signer()
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if _, err := s.GetKey(context.Background(), "hsm-rsa"); err != nil {
		t.Errorf("signer hook: %v", err)
	}
}

func TestPKCS11Unconfigured(t *testing.T) {
	for _, v := range []string{pkcs11.EnvModule, pkcs11.EnvToken, pkcs11.EnvPIN, pkcs11.EnvPINFile} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	code, _, errs := runCLI(t, "pkcs11", "generate", "k")
	if code != 2 || !strings.Contains(errs, pkcs11.EnvModule) {
		t.Errorf("exit %d %q", code, errs)
	}
	if _, _, err := (&app{keystoreFlag: "tpm"}).signer(); err == nil || !strings.Contains(err.Error(), "tpm") {
		t.Errorf("bad SECURELOG_KEYSTORE: %v", err)
	}
	a := &app{keysDir: t.TempDir(), keystoreFlag: "software"}
	if s, _, err := a.signer(); err != nil {
		t.Error(err)
	} else if _, ok := s.(*keystore.Software); !ok {
		t.Errorf("software keystore expected, got %T", s)
	}
}
