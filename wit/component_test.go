package wit

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/bundle/bundletest"
	"github.com/securelog/securelog/pkg/console"
	"github.com/securelog/securelog/pkg/verdict"
)

// nodeTools finds node and npm. Missing, the component test skips on a
// developer machine and fails under CI, which sets SECURELOG_REQUIRE_NODE=1
// (.ci/run installs node and npm when missing).
func nodeTools(t *testing.T) (node, npm string) {
	t.Helper()
	node, err1 := exec.LookPath("node")
	npm, err2 := exec.LookPath("npm")
	if err1 == nil && err2 == nil {
		return node, npm
	}
	if os.Getenv("SECURELOG_REQUIRE_NODE") != "" {
		t.Fatal("node and npm are needed (SECURELOG_REQUIRE_NODE is set)")
	}
	t.Skip("node and npm are not installed; CI installs them and sets SECURELOG_REQUIRE_NODE=1")
	return "", ""
}

func runIn(t *testing.T, dir string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// TestVerifyComponentUnderNode wraps the verifier module embedded in the
// console (the same artifact the browser and the wazero test run) as a
// WASI Preview 2 component exporting verify.wit's interface with jco (the
// preview1 reactor adapter), checks its WIT, transpiles it to JavaScript
// and calls verify under Node: a valid bundle passes and a tampered one
// fails naming the seqno, with the native verdicts byte for byte.
func TestVerifyComponentUnderNode(t *testing.T) {
	node, npm := nodeTools(t)
	work := t.TempDir()
	wasm, err := console.VerifierWasm()
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"component/embed.mjs": "embed.mjs", "component/run.mjs": "run.mjs", "verify.wit": "verify.wit"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, src), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(work, "verifier.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "package.json"), []byte(`{"name":"verify-component-test","private":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	runIn(t, work, npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
		"@bytecodealliance/jco@1.35.0", "@bytecodealliance/preview2-shim@0.26.1")
	jco := filepath.Join(work, "node_modules", ".bin", "jco")
	runIn(t, work, node, "embed.mjs", "verifier.wasm", "verify.wit", "embedded.wasm")
	runIn(t, work, jco, "new", "embedded.wasm", "--wasi-reactor", "-o", "component.wasm")
	wit := string(runIn(t, work, jco, "wit", "component.wasm"))
	if !strings.Contains(wit, "export securelog:log/verify@1.0.0;") {
		t.Fatalf("component WIT:\n%s", wit)
	}
	runIn(t, work, jco, "transpile", "component.wasm", "-o", "out", "--name", "verifier")
	dts, err := os.ReadFile(filepath.Join(work, "out", "interfaces", "securelog-log-verify.d.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dts), "export function verify(bundlePath: string, trustPath: string, witnessTrustPath: string, allowUnsignedTail: boolean): string;") {
		t.Fatalf("transpiled verify interface:\n%s", dts)
	}
	if err := os.WriteFile(filepath.Join(work, "out", "package.json"), []byte(`{"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	f := bundletest.NewFixture(t)
	dir := t.TempDir()
	trust := filepath.Join(dir, "trust.json")
	bundletest.WriteTrust(t, f.TrustEntries, trust)
	data, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	var m bundletest.Mutation
	for _, c := range bundletest.Mutations(bundletest.DecodeDoc(t, data)) {
		if c.Name == "entries[4].payload" {
			m = c
		}
	}
	tampered := filepath.Join(dir, "tampered.json")
	bundletest.WriteMutated(t, data, m, tampered)

	for _, c := range []struct {
		bundle string
		ok     bool
	}{{f.Path, true}, {tampered, false}} {
		cmd := exec.Command(node, "run.mjs", c.bundle, trust)
		cmd.Dir = work
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if (err == nil) != c.ok {
			t.Fatalf("%s: exit %v, want ok=%v\n%s\n%s", c.bundle, err, c.ok, out, stderr.Bytes())
		}
		want, _ := json.Marshal(verdict.RunFiles(context.Background(), c.bundle, trust, "", false, nil))
		if got := bytes.TrimSpace(out); !bytes.Equal(got, want) {
			t.Errorf("%s:\n component %s\n native    %s", c.bundle, got, want)
		}
		if !c.ok && !strings.Contains(string(out), `"entry_index":4`) {
			t.Errorf("tampered bundle verdict does not name entries[4]: %s", out)
		}
	}
}
