package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSoftHSMSetupFailsWithoutToken: .ci/softhsm-setup.sh run by a non-root
// user on a machine without softhsm2 and without sudo cannot provide a token,
// so it must exit non-zero and print nothing to eval (it used to be possible
// to carry on with no token configured).
func TestSoftHSMSetupFailsWithoutToken(t *testing.T) {
	root := repoRoot(t)
	bin := t.TempDir()
	// A PATH with the tools the script needs, an `id` that says "not root",
	// and no softhsm2-util, sudo or apt-get.
	for _, tool := range []string{"bash", "mktemp", "mkdir", "rm", "cat", "chmod", "grep"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "id"), []byte("#!"+filepath.Join(bin, "bash")+"\necho 1000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "bash"), filepath.Join(root, ".ci", "softhsm-setup.sh"), t.TempDir())
	cmd.Env = []string{"PATH=" + bin, "HOME=" + t.TempDir()}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		t.Fatalf("exit 0 without a token; stdout %q, stderr %q", out, stderr.String())
	}
	if len(out) != 0 {
		t.Errorf("printed %q on stdout; a failing setup must print nothing to eval", out)
	}
	if !strings.Contains(stderr.String(), "cannot install") {
		t.Errorf("stderr does not say why: %q", stderr.String())
	}
}
