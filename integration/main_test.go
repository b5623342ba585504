package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// securelogBin is the securelog binary built once by TestMain for the
// subprocess (crash) tests.
var securelogBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "securelog-it-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	securelogBin = filepath.Join(dir, "securelog")
	cmd := exec.Command("go", "build", "-o", securelogBin, "github.com/securelog/securelog/cmd/securelog")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build securelog:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
