// Package wasmrun runs the WebAssembly bundle verifier (the WASI reactor
// built from cmd/securelog-verifier) under wazero, calling its
// canonical-ABI export the way every other host does: the browser
// console's worker and the WASI Preview 2 component.
package wasmrun

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// VerifyExport is the canonical-ABI name of the verify function (WIT
// securelog:log/verify@1.0.0, function verify).
const VerifyExport = "securelog:log/verify@1.0.0#verify"

// Exports are the functions a verifier module must export.
var Exports = []string{"_initialize", "cabi_realloc", VerifyExport, "cabi_post_" + VerifyExport}

// Host is one instance of the module with a host directory mounted
// read-only at "/"; it serves any number of Verify calls, one at a time.
type Host struct {
	rt     wazero.Runtime
	mod    api.Module
	stderr bytes.Buffer
}

// New compiles wasm and instantiates it (running _initialize) with root
// mounted read-only at "/". Close the Host when done.
func New(ctx context.Context, wasm []byte, root string) (*Host, error) {
	h := &Host{rt: wazero.NewRuntime(ctx)}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.rt); err != nil {
		h.rt.Close(ctx)
		return nil, err
	}
	mod, err := h.rt.CompileModule(ctx, wasm)
	if err != nil {
		h.rt.Close(ctx)
		return nil, fmt.Errorf("compile the verifier module: %w", err)
	}
	for _, name := range Exports {
		if _, ok := mod.ExportedFunctions()[name]; !ok {
			h.rt.Close(ctx)
			return nil, fmt.Errorf("the verifier module does not export %q", name)
		}
	}
	cfg := wazero.NewModuleConfig().WithStartFunctions("_initialize").
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(root, "/")).WithStderr(&h.stderr)
	if h.mod, err = h.rt.InstantiateModule(ctx, mod, cfg); err != nil {
		h.rt.Close(ctx)
		return nil, fmt.Errorf("instantiate the verifier module: %w (stderr %q)", err, h.stderr.String())
	}
	return h, nil
}

// Close releases the runtime.
func (h *Host) Close(ctx context.Context) error { return h.rt.Close(ctx) }

// Verify calls verify with paths under the mounted root ("" for none) and
// returns the verdict JSON and what the call wrote to stderr (progress).
func (h *Host) Verify(ctx context.Context, bundle, trust, witness string, allowUnsignedTail bool) ([]byte, string, error) {
	h.stderr.Reset()
	m := h.mod
	mem := m.Memory()
	var args []uint64
	for _, s := range []string{bundle, trust, witness} {
		if s == "" {
			args = append(args, 0, 0)
			continue
		}
		res, err := m.ExportedFunction("cabi_realloc").Call(ctx, 0, 0, 1, uint64(len(s)))
		if err != nil {
			return nil, h.stderr.String(), fmt.Errorf("cabi_realloc: %w", err)
		}
		if !mem.WriteString(uint32(res[0]), s) {
			return nil, "", fmt.Errorf("cabi_realloc returned %#x, outside memory", res[0])
		}
		args = append(args, res[0], uint64(len(s)))
	}
	allow := uint64(0)
	if allowUnsignedTail {
		allow = 1
	}
	res, err := m.ExportedFunction(VerifyExport).Call(ctx, append(args, allow)...)
	if err != nil {
		return nil, h.stderr.String(), fmt.Errorf("verify: %w", err)
	}
	ret, ok := mem.Read(uint32(res[0]), 8)
	if !ok {
		return nil, "", fmt.Errorf("verify returned %#x, outside memory", res[0])
	}
	data, ok := mem.Read(binary.LittleEndian.Uint32(ret), binary.LittleEndian.Uint32(ret[4:]))
	if !ok {
		return nil, "", fmt.Errorf("verify's result is outside memory")
	}
	out := bytes.Clone(data)
	stderr := h.stderr.String()
	if _, err := m.ExportedFunction("cabi_post_"+VerifyExport).Call(ctx, res[0]); err != nil {
		return nil, stderr, fmt.Errorf("post-return: %w", err)
	}
	return out, stderr, nil
}
