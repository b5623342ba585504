package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// verify and export report progress on stderr with --progress (and on a
// terminal); otherwise stderr stays free of it.
func TestVerifyExportProgress(t *testing.T) {
	globals, dir, _ := cliLog(t)
	g := func(args ...string) []string { return append(append([]string(nil), globals...), args...) }
	trust := filepath.Join(dir, "trust.json")

	code, out, errs := runCLI(t, g("--trust", trust, "verify", "secrets", "--progress")...)
	if code != 0 || !strings.Contains(errs, "verify secrets: 7 entries") || !strings.Contains(out, "verify OK") {
		t.Errorf("verify --progress: exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
	code, _, errs = runCLI(t, g("--trust", trust, "verify", "secrets")...)
	if code != 0 || strings.Contains(errs, "entries") {
		t.Errorf("verify without a terminal: exit %d, stderr %q", code, errs)
	}

	bundle := filepath.Join(dir, "again.json")
	code, out, errs = runCLI(t, g("export", "secrets", "--out", bundle, "--progress")...)
	if code != 0 || !strings.Contains(errs, "export secrets: 7 entries") || !strings.Contains(out, "7 entries") {
		t.Errorf("export --progress: exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
	code, _, errs = runCLI(t, g("export", "secrets", "--out", bundle)...)
	if code != 0 || strings.Contains(errs, "entries") {
		t.Errorf("export without a terminal: exit %d, stderr %q", code, errs)
	}
}
