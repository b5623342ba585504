package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKEKInToken: a KEK generated in the token is stored only wrapped, and
// --kek with that file seals and opens payloads (DECISIONS 6).
func TestKEKInToken(t *testing.T) {
	softToken(t)
	dir := t.TempDir()
	kf := filepath.Join(dir, "kek.wrapped")
	mustCLI(t, "kek", "token", "--out", kf)
	if code, _, errs := runCLI(t, "kek", "token", "--out", kf); code == 0 || !strings.Contains(errs, "exists") {
		t.Fatalf("overwrite: exit %d %q", code, errs)
	}
	data, err := os.ReadFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(kf); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if !strings.HasPrefix(string(data), wrappedKEKPrefix+" pkcs11 securelog-kek-wrap ") {
		t.Fatalf("file %q", data)
	}
	st := "pebble:" + filepath.Join(dir, "log")
	mustCLI(t, "--store", st, "streams", "create", "pay", "--tier", "protected")
	mustCLI(t, "--store", st, "--kek", kf, "append", "pay", "--type", "card", "--producer", "shop", "--payload", "4111")
	if out := mustCLI(t, "--store", st, "--kek", kf, "open-payload", "1"); out != "4111" {
		t.Fatalf("open-payload %q", out)
	}
	// A tampered wrapped key is refused by the token.
	bad := []byte(strings.TrimSpace(string(data)))
	bad[len(bad)-1] ^= 1
	if bad[len(bad)-1] > 'f' || (bad[len(bad)-1] > '9' && bad[len(bad)-1] < 'a') {
		bad[len(bad)-1] = '0'
	}
	badFile := filepath.Join(dir, "bad")
	os.WriteFile(badFile, bad, 0o600)
	if code, _, errs := runCLI(t, "--store", st, "--kek", badFile, "open-payload", "1"); code == 0 || !strings.Contains(errs, "unwrap") {
		t.Fatalf("tampered wrapped KEK: exit %d %q", code, errs)
	}
}
