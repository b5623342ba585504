package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securelog/securelog/internal/wasmsplice"
	"github.com/securelog/securelog/pkg/bundle/bundletest"
	"github.com/securelog/securelog/pkg/console"
	"github.com/securelog/securelog/pkg/verdict"
	"github.com/securelog/securelog/pkg/verdict/wasmrun"
)

// BuildModule builds this command as a WASI reactor into dir and returns
// its path. The build is the one documented in doc.go.
func buildModule(t testing.TB, dir string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	out := filepath.Join(dir, "verifier.wasm")
	// The flags of go generate ./pkg/console (pkg/console/internal/genwasm).
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the wasm module: %v\n%s", err, b)
	}
	return out
}

// wasmHost is a wasmrun.Host that fails the test on errors.
type wasmHost struct{ h *wasmrun.Host }

func newWasmHost(t testing.TB, wasm []byte, root string) *wasmHost {
	t.Helper()
	h, err := wasmrun.New(context.Background(), wasm, root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return &wasmHost{h}
}

func (w *wasmHost) verify(t testing.TB, bundle, trust, witness string, allowUnsigned bool) ([]byte, string) {
	t.Helper()
	out, stderr, err := w.h.Verify(context.Background(), bundle, trust, witness, allowUnsigned)
	if err != nil {
		t.Fatalf("%v (stderr %s)", err, stderr)
	}
	return out, stderr
}

// native is the native verdict with the same paths, the root directory's
// name removed from it so that it reads like the module's.
func native(root, bundle, trust, witness string, allowUnsigned bool) []byte {
	abs := func(p string) string {
		if p == "" {
			return ""
		}
		return filepath.Join(root, p)
	}
	v := verdict.RunFiles(context.Background(), abs(bundle), abs(trust), abs(witness), allowUnsigned, nil)
	b, _ := json.Marshal(v)
	return bytes.ReplaceAll(b, []byte(root), nil)
}

var (
	moduleOnce sync.Once
	moduleWasm []byte
	moduleErr  error
)

// freshModule builds the module once per test binary.
func freshModule(t testing.TB) []byte {
	t.Helper()
	moduleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "securelog-verifier-build")
		if err != nil {
			moduleErr = err
			return
		}
		defer os.RemoveAll(dir)
		if moduleWasm, moduleErr = os.ReadFile(buildModule(t, dir)); moduleErr == nil {
			moduleWasm, moduleErr = wasmsplice.Splice(moduleWasm)
		}
	})
	if moduleErr != nil {
		t.Fatal(moduleErr)
	}
	return moduleWasm
}

// TestWasmVerdictsMatchNative builds the verifier for wasip1, runs it under
// wazero and checks that it returns exactly the native verdict on a valid
// bundle (with its own keys, a trust file and witness trust), on every
// single-field tampering of it, and on bundles that cannot be read.
func TestWasmVerdictsMatchNative(t *testing.T) {
	f := bundletest.NewFixture(t)
	root := t.TempDir()
	data, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bundle.json", data)
	bundletest.WriteTrust(t, f.TrustEntries, filepath.Join(root, "trust.json"))
	bundletest.WriteTrust(t, f.WitnessEntries, filepath.Join(root, "witnesses.json"))
	write("truncated.json", data[:len(data)/2])
	write("not-json.json", []byte("PK\x03\x04 this is a zip file"))
	write("empty.json", nil)
	write("bad-trust.json", []byte(`[{"identity":"x","algorithm":"ed25519","public_key":"zz"}]`))

	type call struct {
		bundle, trust, witness string
		allow                  bool
		ok                     bool
	}
	calls := []call{
		{"bundle.json", "", "", false, true},
		{"bundle.json", "trust.json", "", false, true},
		{"bundle.json", "trust.json", "witnesses.json", true, true},
		{"bundle.json", "witnesses.json", "", false, false}, // wrong signer keys
		{"bundle.json", "trust.json", "trust.json", false, false},
		{"bundle.json", "bad-trust.json", "", false, false},
		{"bundle.json", "missing.json", "", false, false},
		{"missing.json", "", "", false, false},
		{"truncated.json", "trust.json", "", false, false},
		{"not-json.json", "", "", false, false},
		{"empty.json", "", "", false, false},
	}
	base := bundletest.DecodeDoc(t, data)
	muts := bundletest.Mutations(base)
	if len(muts) < 200 {
		t.Fatalf("only %d mutations", len(muts))
	}
	stride := 1
	if raceEnabled {
		stride = 7 // every trust, receipt and top-level change, and every 7th entry or segment change
	}
	for i, m := range muts {
		if i%stride != 0 && (strings.HasPrefix(m.Name, "entries[") || strings.HasPrefix(m.Name, "segments[")) {
			continue
		}
		name := fmt.Sprintf("m%d.json", i)
		bundletest.WriteMutated(t, data, m, filepath.Join(root, name))
		calls = append(calls, call{name, "", "witnesses.json", false, false})
	}
	start := time.Now()
	fresh := freshModule(t)
	t.Logf("module built in %v", time.Since(start))
	embedded, err := console.VerifierWasm()
	if err != nil {
		t.Fatal(err)
	}
	modules := []struct {
		name string
		wasm []byte
	}{{"fresh build", fresh}}
	if bytes.Equal(embedded, fresh) {
		t.Log("the module embedded in the console is byte-identical to a fresh build")
	} else {
		// Another toolchain, or a stale artifact: it must still give the
		// same verdicts (else: go generate ./pkg/console).
		t.Log("the module embedded in the console differs from a fresh build: checking its verdicts too")
		modules = append(modules, struct {
			name string
			wasm []byte
		}{"embedded in pkg/console", embedded})
	}
	for _, mod := range modules {
		start := time.Now()
		h := newWasmHost(t, mod.wasm, root)
		t.Logf("%s: compiled in %v", mod.name, time.Since(start))
		start = time.Now()
		for i, c := range calls {
			got, stderr := h.verify(t, "/"+c.bundle, slash(c.trust), slash(c.witness), c.allow)
			want := native(root, "/"+c.bundle, slash(c.trust), slash(c.witness), c.allow)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: call %d %+v:\n wasm   %s\n native %s", mod.name, i, c, got, want)
				continue
			}
			var v verdict.Verdict
			if err := json.Unmarshal(got, &v); err != nil {
				t.Fatalf("call %d: verdict %s: %v", i, got, err)
			}
			if v.OK != c.ok {
				t.Errorf("%s: call %d %+v: ok=%v, want %v: %s", mod.name, i, c, v.OK, c.ok, got)
			}
			if c.ok && !strings.Contains(stderr, fmt.Sprintf("securelog-progress %d %d", v.Report.Entries, v.Report.Entries)) {
				t.Errorf("call %d: no final progress line in stderr %q", i, stderr)
			}
			if i >= 11 && (v.Stage != verdict.StageAudit && v.Stage != verdict.StageBundle) {
				t.Errorf("call %d (%s): stage %q: %s", i, c.bundle, v.Stage, got)
			}
		}
		t.Logf("%s: %d calls in %v", mod.name, len(calls), time.Since(start))
	}
}

func slash(p string) string {
	if p == "" {
		return ""
	}
	return "/" + p
}
