package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/keystore/pkcs11"
	"github.com/securelog/securelog/pkg/stackcheck"
)

func TestVerifyStackCommand(t *testing.T) {
	dir := t.TempDir()
	out := mustCLI(t, "verify-stack", "--skip-pkcs11", "--alg", "ed25519", "--stack", "pebble,sqlite,file,remote-nats", "--dir", dir)
	for _, want := range []string{"check ", "remote-nats", "same-as-reference", "verify-stack OK: 68 cells passed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out = mustCLI(t, "verify-stack", "--skip-pkcs11", "--alg", "rsa-pss-sha256", "--stack", "file", "--json", "--dir", dir)
	var j struct {
		OK     bool              `json:"ok"`
		Result stackcheck.Result `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !j.OK || len(j.Result.Cells) != len(stackcheck.Checks) || j.Result.Keystores[0] != "software/rsa-pss-sha256" {
		t.Errorf("json: %+v", j)
	}

	if code, _, errs := runCLI(t, "verify-stack", "--stack", "mysql"); code != 2 || !strings.Contains(errs, `"mysql"`) {
		t.Errorf("unknown stack: exit %d, %q", code, errs)
	}
}

// unsetPKCS11Env clears the token configuration for one test; SOFTHSM2_CONF
// is restored afterwards (verify-stack may set it for a throwaway token).
func unsetPKCS11Env(t *testing.T) {
	t.Helper()
	for _, v := range []string{pkcs11.EnvModule, pkcs11.EnvToken, pkcs11.EnvPIN, pkcs11.EnvPINFile, EnvRequirePKCS11} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("SOFTHSM2_CONF", os.Getenv("SOFTHSM2_CONF"))
}

// Without a configured token and without softhsm2 the PKCS#11 cells are
// SKIP with one line saying how to enable them, and the run exits 0; with
// SECURELOG_REQUIRE_PKCS11 they fail.
func TestVerifyStackPKCS11Unavailable(t *testing.T) {
	unsetPKCS11Env(t)
	t.Setenv("PATH", t.TempDir()) // no softhsm2-util
	code, out, errs := runCLI(t, "verify-stack", "--alg", "ed25519", "--stack", "sqlite", "--dir", t.TempDir())
	if code != 0 || !strings.Contains(out, "SKIP") || !strings.Contains(out, "17 skipped") ||
		!strings.Contains(errs, "PKCS#11 cells SKIP") || !strings.Contains(errs, "install softhsm2") || strings.Contains(out, "FAIL") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}

	t.Setenv(EnvRequirePKCS11, "1")
	code, out, errs = runCLI(t, "verify-stack", "--alg", "ed25519", "--stack", "sqlite", "--dir", t.TempDir())
	if code != 1 || !strings.Contains(out, "FAIL 1/2") || !strings.Contains(out, "install softhsm2") || !strings.Contains(errs, "cells FAILED") {
		t.Errorf("required: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}

// With softhsm2 installed and no token configured, verify-stack makes a
// throwaway token and the PKCS#11 cells run and pass.
func TestVerifyStackThrowawaySoftHSM(t *testing.T) {
	required := os.Getenv(EnvRequirePKCS11) != ""
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		if required {
			t.Fatalf("%s is set but softhsm2-util is not installed", EnvRequirePKCS11)
		}
		t.Skip("softhsm2 is not installed")
	}
	unsetPKCS11Env(t)
	code, out, errs := runCLI(t, "verify-stack", "--alg", "ecdsa-p256", "--stack", "pebble", "--dir", t.TempDir())
	if code != 0 || !strings.Contains(errs, "throwaway SoftHSM token") || !strings.Contains(out, "pkcs11/ecdsa-p256") ||
		!strings.Contains(out, "34 cells passed, 0 skipped") || strings.Contains(out, "FAIL") || strings.Contains(out, "SKIP") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}
