package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/store"
)

// envHoldStore makes the test binary a helper process that opens the store
// it names, prints "held" and keeps it open until its stdin closes.
const envHoldStore = "CLI_TEST_HOLD_STORE"

func holdStore(spec string) {
	st, err := store.Open(context.Background(), spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("held")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until stdin closes
	st.Close()
	os.Exit(0)
}

// TestLockedStoreMessage: a store another process holds open (e.g. `up`
// running) is reported as in use, with the remote alternative, instead of
// `open store "…": open store "…": … resource temporarily unavailable`.
func TestLockedStoreMessage(t *testing.T) {
	spec := "pebble:" + filepath.Join(t.TempDir(), "log")
	mustCLI(t, "--store", spec, "append", "default", "--type", "t", "--producer", "p", "--payload", "x")
	holder := exec.Command(os.Args[0])
	holder.Env = append(os.Environ(), envHoldStore+"="+spec)
	holder.Stderr = os.Stderr
	in, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); _ = holder.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("holder process: %q, %v", line, err)
	}

	code, _, errs := runCLI(t, "--store", spec, "head", "default")
	if code != ExitFailed {
		t.Errorf("exit %d, want %d", code, ExitFailed)
	}
	for _, want := range []string{"in use by another process", "--store remote:x"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr %q lacks %q", errs, want)
		}
	}
	if strings.Contains(errs, "resource temporarily unavailable") {
		t.Errorf("stderr shows the raw lock error: %q", errs)
	}
	code, _, errs = runCLI(t, "--json", "--store", spec, "head", "default")
	if code != ExitFailed || !strings.Contains(errs, `"code":"store_in_use"`) {
		t.Errorf("--json: exit %d, stderr %q; want 1 and code store_in_use", code, errs)
	}
}

// TestExitCodes: every usage error exits 2, a failed verification or
// operation exits 1 (issue 10: usage errors exited 1 or 2 at random).
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	spec := "file:" + filepath.Join(dir, "log.jsonl")
	mustCLI(t, "--store", spec, "append", "default", "--type", "t", "--producer", "alice", "--payload", "x")
	mustCLI(t, "--store", spec, "append", "default", "--type", "t", "--producer", "bob", "--payload", "y")
	tampered := "file:" + filepath.Join(dir, "tampered.jsonl")
	b, err := os.ReadFile(filepath.Join(dir, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tampered.jsonl"), []byte(strings.Replace(string(b), `"producer":"alice"`, `"producer":"eve"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
		code string
	}{
		{"ok", []string{"--store", spec, "head", "default"}, ExitOK, ""},
		{"unknown command", []string{"nosuch"}, ExitUsage, CodeUsage},
		{"unknown subcommand", []string{"keys", "nosuch"}, ExitUsage, CodeUsage},
		{"unknown flag", []string{"--store", spec, "head", "default", "--nosuch"}, ExitUsage, CodeUsage},
		{"bad flag value", []string{"--store", spec, "verify-chain", "default", "--from", "x"}, ExitUsage, CodeUsage},
		{"missing argument", []string{"--store", spec, "read"}, ExitUsage, CodeUsage},
		{"extra argument", []string{"--store", spec, "head", "default", "other"}, ExitUsage, CodeUsage},
		{"bad seqno", []string{"--store", spec, "read", "abc"}, ExitUsage, CodeUsage},
		{"bad log format", []string{"--log-format", "xml", "--store", spec, "head", "default"}, ExitUsage, CodeUsage},
		{"no store", []string{"head", "default"}, ExitUsage, CodeUsage},
		{"unknown backend", []string{"--store", "nosuch:x", "head", "default"}, ExitUsage, CodeUsage},
		{"no trust", []string{"--store", spec, "verify", "default"}, ExitUsage, CodeUsage},
		{"not found", []string{"--store", spec, "read", "99"}, ExitFailed, CodeNotFound},
		{"chain broken", []string{"--store", tampered, "verify-chain", "default"}, ExitFailed, CodeVerificationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t, "SECURELOG_STORE", "SECURE_LOG_STORE_CONFIG")
			code, _, errs := runCLI(t, tc.args...)
			if code != tc.want {
				t.Errorf("securelog %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.want, errs)
			}
			if tc.want == ExitOK {
				return
			}
			if tc.want == ExitUsage && !strings.Contains(errs, "--help' for usage") {
				t.Errorf("usage error without the help hint: %q", errs)
			}
			code, out, errs := runCLI(t, append([]string{"--json"}, tc.args...)...)
			if code != tc.want {
				t.Errorf("--json: exit %d, want %d", code, tc.want)
			}
			if out != "" {
				t.Errorf("--json error: stdout %q, want nothing", out)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(errs), &e); err != nil || strings.Count(errs, "\n") != 1 {
				t.Fatalf("--json stderr is not one JSON line: %q (%v)", errs, err)
			}
			if e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("--json error = %+v, want code %q and a message", e.Error, tc.code)
			}
		})
	}
}
