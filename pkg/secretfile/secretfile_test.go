package secretfile_test

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/secretfile"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	if err := secretfile.WriteNew(p, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("created mode %v %v", fi.Mode(), err)
	}
	if err := secretfile.WriteNew(p, []byte("other")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite: %v", err)
	}
	if b, err := secretfile.Read("token file", p, secretfile.Policy{}); err != nil || string(b) != "s3cret" {
		t.Fatalf("read 0600: %q %v", b, err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o606, 0o610} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := secretfile.Read("token file", p, secretfile.Policy{Hint: "pass --allow-readable-secrets"})
		var me *secretfile.ModeError
		if !errors.As(err, &me) || me.Mode != mode || !secretfile.IsModeError(err) {
			t.Fatalf("mode %04o: %v", mode, err)
		}
		for _, want := range []string{"token file " + p, "chmod 600 " + p, "--allow-readable-secrets"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mode %04o: %q lacks %q", mode, err, want)
			}
		}
		var logged bytes.Buffer
		b, err := secretfile.Read("token file", p, secretfile.Policy{AllowReadable: true, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
		if err != nil || string(b) != "s3cret" || !strings.Contains(logged.String(), "accessible to other users") {
			t.Errorf("mode %04o allowed: %q %v, log %q", mode, b, err, logged.String())
		}
	}
	if _, err := secretfile.Read("key file", dir, secretfile.Policy{}); err == nil {
		t.Error("a directory was read as a secret file")
	}
	if _, err := secretfile.Read("key file", filepath.Join(dir, "missing"), secretfile.Policy{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
