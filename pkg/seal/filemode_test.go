package seal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/secretfile"
)

// TestReadableKEKRefused reproduces issue 9 item 7 for KEK files: a KEK
// other users can read used to be loaded silently.
func TestReadableKEKRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kek")
	if err := GenerateKEKFile(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadKEK(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("LoadKEK of a 0644 file: %v, want a refusal naming the file and chmod 600", err)
	}
	if k, err := LoadKEKWith(p, secretfile.Policy{AllowReadable: true}); err != nil || len(k) != KEKSize {
		t.Fatalf("allowed: %x %v", k, err)
	}
}
