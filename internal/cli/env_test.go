package cli

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/store"
)

// TestKeystoreAlgEnv: the README's SECURELOG_KEYSTORE_ALG and the
// reference's SECURE_LOG_KEYSTORE_ALG both choose the algorithm of new keys
// (issue 8: the README's name was silently ignored); a bad value is named
// with its variable.
func TestKeystoreAlgEnv(t *testing.T) {
	clearEnv(t, "SECURELOG_KEYSTORE_ALG", "SECURE_LOG_KEYSTORE_ALG", "SECURELOG_KEYS", "SECURELOG_KEYSTORE")
	dir := t.TempDir()
	gen := func(id string) (string, string) {
		code, out, errs := runCLI(t, "--json", "--keys", dir, "keys", "generate", id)
		if code != 0 {
			return "", errs
		}
		var e struct{ Algorithm string }
		if err := json.Unmarshal([]byte(out), &e); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		return e.Algorithm, ""
	}
	t.Setenv("SECURELOG_KEYSTORE_ALG", "ecdsa-p256")
	if alg, errs := gen("a"); alg != "ecdsa-p256" {
		t.Errorf("SECURELOG_KEYSTORE_ALG=ecdsa-p256: %q %s", alg, errs)
	}
	clearEnv(t, "SECURELOG_KEYSTORE_ALG")
	t.Setenv("SECURE_LOG_KEYSTORE_ALG", "rsa-pss-sha256")
	if alg, errs := gen("b"); alg != "rsa-pss-sha256" {
		t.Errorf("SECURE_LOG_KEYSTORE_ALG=rsa-pss-sha256: %q %s", alg, errs)
	}
	t.Setenv("SECURE_LOG_KEYSTORE_ALG", "ED25519")
	if alg, errs := gen("c"); alg != "" || !strings.Contains(errs, "SECURE_LOG_KEYSTORE_ALG") || !strings.Contains(errs, "ED25519") {
		t.Errorf("bad value: %q %s", alg, errs)
	}
	if code, out, errs := runCLI(t, "--json", "--keys", dir, "keys", "generate", "d", "--alg", "ed25519"); code != 0 || !strings.Contains(out, "ed25519") {
		t.Errorf("--alg beats the environment: exit %d %s %s", code, out, errs)
	}
}

// TestRPCURLEnv: SECURELOG_RPC_URL and the reference's SECURE_LOG_RPC_URL
// reach the remote store although no library reads the environment.
func TestRPCURLEnv(t *testing.T) {
	clearEnv(t, "SECURELOG_RPC_URL", "SECURE_LOG_RPC_URL", "SECURELOG_TRANSPORT", "SECURELOG_STORE")
	st, err := store.Open(t.Context(), "memory:x")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := rpcserver.NewHandler(st, rpcserver.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	defer hs.Close()
	for _, env := range []string{"SECURELOG_RPC_URL", "SECURE_LOG_RPC_URL"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, hs.URL)
			if code, out, errs := runCLI(t, "--store", "remote:x", "--transport", "http", "streams", "list"); code != 0 {
				t.Errorf("exit %d %s %s", code, out, errs)
			}
		})
	}
	// Without a URL the error names the flag and both variables' rule.
	code, _, errs := runCLI(t, "--store", "remote:x", "--transport", "http", "streams", "list")
	if code != 2 || !strings.Contains(errs, "--rpc-url") || !strings.Contains(errs, "SECURELOG_RPC_URL") {
		t.Errorf("no URL: exit %d %s", code, errs)
	}
}

// TestNoEnvironmentInLibraries: libraries under pkg/ take option structs;
// only the CLI reads the environment. Test-support packages (*test, whose
// multi-process tests pass their child's role in the environment) and
// _test.go files are exempt.
func TestNoEnvironmentInLibraries(t *testing.T) {
	root := filepath.Join("..", "..", "pkg")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasSuffix(d.Name(), "test") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range []string{"os.Getenv", "os.Setenv", "os.LookupEnv", "os.Unsetenv", "syscall.Getenv"} {
			if strings.Contains(string(data), f) {
				t.Errorf("%s uses %s: libraries take configuration as values", path, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
