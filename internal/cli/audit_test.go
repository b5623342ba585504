package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the CLI in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("securelog %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// cliLog builds, through the CLI, a log with three interleaved streams
// ("app", "secrets" protected, "ops"), three segments of "secrets" signed
// with ed25519, ecdsa-p256 and rsa-pss-sha256 keys, one entry after them,
// and exports "secrets". It returns the global flags and the bundle path.
func cliLog(t *testing.T) (globals []string, dir, bundlePath string) {
	t.Helper()
	for _, v := range []string{"SECURELOG_STORE", "SECURELOG_KEYS", "SECURELOG_KEK_FILE", "SECURELOG_TRUST"} {
		t.Setenv(v, "")
	}
	dir = t.TempDir()
	globals = []string{"--store", "pebble:" + filepath.Join(dir, "log"), "--keys", filepath.Join(dir, "keys"), "--kek", filepath.Join(dir, "kek")}
	g := func(args ...string) []string { return append(append([]string(nil), globals...), args...) }
	mustCLI(t, "kek", "generate", "--out", filepath.Join(dir, "kek"))
	algs := []string{"ed25519", "ecdsa-p256", "rsa-pss-sha256"}
	for _, alg := range algs {
		mustCLI(t, g("keys", "generate", "k-"+alg, "--alg", alg)...)
	}
	mustCLI(t, g("keys", "export", "--out", filepath.Join(dir, "trust.json"))...)
	mustCLI(t, g("streams", "create", "secrets", "--tier", "protected")...)
	for round, alg := range algs {
		for i := 0; i < 2; i++ {
			for _, s := range []string{"app", "secrets", "ops"} {
				mustCLI(t, g("append", s, "--type", "t", "--severity", "info", "--producer", "p", "--payload", fmt.Sprintf("%s-%d-%d", s, round, i))...)
			}
		}
		out := mustCLI(t, g("--json", "close-segment", "secrets")...)
		var seg struct {
			SegmentID uint64 `json:"segment_id"`
		}
		if err := json.Unmarshal([]byte(out), &seg); err != nil {
			t.Fatal(err)
		}
		mustCLI(t, g("sign-segment", "k-"+alg, fmt.Sprint(seg.SegmentID))...)
		mustCLI(t, g("close-segment", "app")...)
	}
	mustCLI(t, g("append", "secrets", "--type", "t", "--severity", "info", "--producer", "p", "--payload", "tail")...)
	bundlePath = filepath.Join(dir, "bundle.json")
	mustCLI(t, g("export", "secrets", "--out", bundlePath)...)
	return globals, dir, bundlePath
}

func TestAuditCommand(t *testing.T) {
	_, dir, bundlePath := cliLog(t)
	trust := filepath.Join(dir, "trust.json")
	kek := filepath.Join(dir, "kek")

	out := mustCLI(t, "audit", bundlePath)
	for _, want := range []string{"audit OK", "7 verified", "3 signatures verified", "BUNDLE'S OWN KEYS", "self-consistent", "7 payloads (pass --kek"} {
		if !strings.Contains(out, want) {
			t.Errorf("bundle-trust output lacks %q:\n%s", want, out)
		}
	}
	out = mustCLI(t, "audit", bundlePath, "--trust", trust, "--kek", kek)
	for _, want := range []string{"trust:       " + trust, "6 decrypted", "1 after the last segment not decryptable"} {
		if !strings.Contains(out, want) {
			t.Errorf("trust-file output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "OWN KEYS") {
		t.Errorf("trust file given but output speaks of the bundle's keys:\n%s", out)
	}

	var j auditJSON
	if err := json.Unmarshal([]byte(mustCLI(t, "audit", bundlePath, "--json")), &j); err != nil {
		t.Fatal(err)
	}
	if !j.OK || j.Report == nil || j.Report.TrustSource != "bundle" || j.TrustNote == "" || j.Report.Entries != 7 || j.Report.Signed != 3 {
		t.Errorf("json %+v", j)
	}

	code, _, errs := runCLI(t, "audit", bundlePath, "--progress")
	if code != 0 || !strings.Contains(errs, "100%") {
		t.Errorf("--progress: exit %d, stderr %q", code, errs)
	}

	// A tampered payload fails with exit 1, naming the entry; --json says why.
	data, _ := os.ReadFile(bundlePath)
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	e := doc["entries"].([]any)[3].(map[string]any)
	e["event_type"] = "forged"
	bad, _ := json.Marshal(doc)
	badPath := filepath.Join(dir, "bad.json")
	os.WriteFile(badPath, bad, 0o644)
	code, out, errs = runCLI(t, "audit", badPath, "--json")
	if code != 1 || !strings.Contains(errs, "audit FAILED") || !strings.Contains(errs, "entries[3]") {
		t.Fatalf("tampered bundle: exit %d stderr %q", code, errs)
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || j.OK || !strings.Contains(j.Error, "entries[3]") {
		t.Errorf("tampered --json: %s (%v)", out, err)
	}

	// A wrong KEK fails naming the first sealed seqno.
	wrong := filepath.Join(dir, "wrong.kek")
	mustCLI(t, "kek", "generate", "--out", wrong)
	code, _, errs = runCLI(t, "audit", bundlePath, "--kek", wrong)
	if code != 1 || !strings.Contains(errs, "seqno 2:") || !strings.Contains(errs, "decrypt") {
		t.Errorf("wrong kek: exit %d stderr %q", code, errs)
	}
	if code, _, _ := runCLI(t, "audit", filepath.Join(dir, "missing.json")); code != 1 {
		t.Errorf("missing bundle: exit %d", code)
	}
}
