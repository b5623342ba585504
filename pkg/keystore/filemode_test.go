package keystore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadableKeyFileRefused reproduces issue 9 item 7: a key file that
// other users can read used to be loaded (with a log line at most). It is
// refused with an error naming the file and the fix, unless readable
// secrets are explicitly allowed.
func TestReadableKeyFileRefused(t *testing.T) {
	dir := t.TempDir()
	ks, err := OpenSoftware(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Generate("k", Ed25519); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "k.pem")
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key mode %v %v, want 0600", fi.Mode(), err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		fresh, err := OpenSoftware(dir) // no cached key
		if err != nil {
			t.Fatal(err)
		}
		_, err = fresh.GetKey(context.Background(), "k")
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: GetKey error = %v, want a refusal naming %s and chmod 600", mode, err, p)
		}
		allowed, err := OpenSoftwareWith(dir, SoftwareOptions{AllowReadableKeys: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := allowed.GetKey(context.Background(), "k"); err != nil {
			t.Errorf("mode %04o with AllowReadableKeys: %v", mode, err)
		}
	}
}
