package cli

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
)

func testCosignerVKey(t *testing.T, name string) string {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(nil)
	v, err := tlogwitness.NewCosignatureVerifier(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	return v.String()
}

func TestParseTlogWitness(t *testing.T) {
	vkey := testCosignerVKey(t, "w.example/a")
	for _, url := range []string{"https://w.example/a", "http://127.0.0.1:7380", "https://w.example/x?k=v"} {
		wc, err := parseTlogWitness(url + "=" + vkey)
		if err != nil || wc.URL != url || wc.VKey != vkey {
			t.Errorf("%s=VKEY: %+v %v", url, wc, err)
		}
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	logKey, _ := tlog.VerifierKey("log.example", pub)
	for _, bad := range []string{"https://w.example", vkey, "w.example=" + vkey, "https://w.example=" + logKey, "https://w.example=x+1+2"} {
		if _, err := parseTlogWitness(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A bad tlog-witness is a usage error naming where it came from: flag,
// environment or config file.
func TestTlogWitnessesSetting(t *testing.T) {
	clearEnv(t, "SECURELOG_TLOG_WITNESSES", "SECURELOG_TLOG_QUORUM", "SECURELOG_CONFIG")
	dir := t.TempDir()
	if code, _, errs := runCLI(t, "signer", "--head-file", filepath.Join(dir, "h"), "--tlog-witnesses", "https://w.example"); code != 2 || !strings.Contains(errs, "--tlog-witnesses") {
		t.Errorf("flag: exit %d %s", code, errs)
	}
	t.Setenv("SECURELOG_TLOG_WITNESSES", "nope")
	if code, _, errs := runCLI(t, "signer", "--head-file", filepath.Join(dir, "h")); code != 2 || !strings.Contains(errs, "SECURELOG_TLOG_WITNESSES") || !strings.Contains(errs, "nope") {
		t.Errorf("env: exit %d %s", code, errs)
	}
	clearEnv(t, "SECURELOG_TLOG_WITNESSES")
	cfg := filepath.Join(dir, "c.toml")
	vkey := testCosignerVKey(t, "w.example/a")
	if err := os.WriteFile(cfg, []byte("[tlog]\nwitnesses = \"https://w.example/a="+vkey+"\"\nquorum = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, "signer", "--config", cfg, "--head-file", filepath.Join(dir, "h")); code != 2 || !strings.Contains(errs, "--tlog-quorum") {
		t.Errorf("config quorum 2 of 1: exit %d %s", code, errs)
	}
}
