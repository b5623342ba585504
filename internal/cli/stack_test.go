package cli

import (
	"encoding/json"
	"os"
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

func TestVerifyStackPKCS11Unconfigured(t *testing.T) {
	for _, v := range []string{pkcs11.EnvModule, pkcs11.EnvToken, pkcs11.EnvPIN, pkcs11.EnvPINFile} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	code, out, errs := runCLI(t, "verify-stack", "--alg", "ed25519", "--stack", "sqlite", "--dir", t.TempDir())
	if code != 1 || !strings.Contains(out, "FAIL 1/2") || !strings.Contains(out, "pkcs11/ed25519") ||
		!strings.Contains(out, "PKCS#11 is not configured") || !strings.Contains(errs, "cells FAILED") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}
