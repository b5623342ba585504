package main

import (
	"bytes"
	"context"
	"encoding/binary"
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

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/securelog/securelog/pkg/bundle/bundletest"
	"github.com/securelog/securelog/pkg/verdict"
)

// verifyExport is the canonical-ABI name of the verify function.
const verifyExport = "securelog:log/verify@1.0.0#verify"

// BuildModule builds this command as a WASI reactor into dir and returns
// its path. The build is the one documented in doc.go.
func buildModule(t testing.TB, dir string) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	out := filepath.Join(dir, "verifier.wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-o", out, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the wasm module: %v\n%s", err, b)
	}
	return out
}

// wasmHost runs one instance of the module under wazero with root mounted
// at "/"; the instance serves every call, as in the browser.
type wasmHost struct {
	rt     wazero.Runtime
	mod    api.Module
	stderr bytes.Buffer
}

func newWasmHost(t testing.TB, wasm []byte, root string) *wasmHost {
	t.Helper()
	ctx := context.Background()
	h := &wasmHost{rt: wazero.NewRuntime(ctx)}
	t.Cleanup(func() { h.rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, h.rt)
	mod, err := h.rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatalf("compile the wasm module: %v", err)
	}
	for _, name := range []string{"cabi_realloc", verifyExport, "cabi_post_" + verifyExport, "_initialize"} {
		if _, ok := mod.ExportedFunctions()[name]; !ok {
			t.Fatalf("module does not export %q", name)
		}
	}
	cfg := wazero.NewModuleConfig().WithStartFunctions("_initialize").
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(root, "/")).WithStderr(&h.stderr)
	if h.mod, err = h.rt.InstantiateModule(ctx, mod, cfg); err != nil {
		t.Fatalf("instantiate: %v (stderr %s)", err, h.stderr.String())
	}
	return h
}

// verify calls verify with the paths ("" for none) and returns the
// verdict JSON and what the call wrote to stderr.
func (h *wasmHost) verify(t testing.TB, bundle, trust, witness string, allowUnsigned bool) ([]byte, string) {
	t.Helper()
	ctx := context.Background()
	h.stderr.Reset()
	m := h.mod
	mem := m.Memory()
	realloc := m.ExportedFunction("cabi_realloc")
	var args []uint64
	for _, s := range []string{bundle, trust, witness} {
		if s == "" {
			args = append(args, 0, 0)
			continue
		}
		res, err := realloc.Call(ctx, 0, 0, 1, uint64(len(s)))
		if err != nil {
			t.Fatal(err)
		}
		if !mem.WriteString(uint32(res[0]), s) {
			t.Fatal("write argument out of range")
		}
		args = append(args, res[0], uint64(len(s)))
	}
	allow := uint64(0)
	if allowUnsigned {
		allow = 1
	}
	res, err := m.ExportedFunction(verifyExport).Call(ctx, append(args, allow)...)
	if err != nil {
		t.Fatalf("verify: %v (stderr %s)", err, h.stderr.String())
	}
	ret, ok := mem.Read(uint32(res[0]), 8)
	if !ok {
		t.Fatal("result area out of range")
	}
	data, ok := mem.Read(binary.LittleEndian.Uint32(ret), binary.LittleEndian.Uint32(ret[4:]))
	if !ok {
		t.Fatal("result out of range")
	}
	out := bytes.Clone(data)
	if _, err := m.ExportedFunction("cabi_post_"+verifyExport).Call(ctx, res[0]); err != nil {
		t.Fatal(err)
	}
	return out, h.stderr.String()
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
		moduleWasm, moduleErr = os.ReadFile(buildModule(t, dir))
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

	start := time.Now()
	h := newWasmHost(t, freshModule(t), root)
	t.Logf("module built and compiled in %v", time.Since(start))

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
	start = time.Now()
	defer func() { t.Logf("%d calls in %v", len(calls), time.Since(start)) }()
	for i, c := range calls {
		got, stderr := h.verify(t, "/"+c.bundle, slash(c.trust), slash(c.witness), c.allow)
		want := native(root, "/"+c.bundle, slash(c.trust), slash(c.witness), c.allow)
		if !bytes.Equal(got, want) {
			t.Errorf("call %d %+v:\n wasm   %s\n native %s", i, c, got, want)
			continue
		}
		var v verdict.Verdict
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatalf("call %d: verdict %s: %v", i, got, err)
		}
		if v.OK != c.ok {
			t.Errorf("call %d %+v: ok=%v, want %v: %s", i, c, v.OK, c.ok, got)
		}
		if c.ok && !strings.Contains(stderr, fmt.Sprintf("securelog-progress %d %d", v.Report.Entries, v.Report.Entries)) {
			t.Errorf("call %d: no final progress line in stderr %q", i, stderr)
		}
		if i >= 11 && (v.Stage != verdict.StageAudit && v.Stage != verdict.StageBundle) {
			t.Errorf("call %d (%s): stage %q: %s", i, c.bundle, v.Stage, got)
		}
	}
}

func slash(p string) string {
	if p == "" {
		return ""
	}
	return "/" + p
}
