//go:build wasip1

package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"unsafe"

	"github.com/securelog/securelog/pkg/verdict"
)

// main is not called in a reactor (-buildmode=c-shared); the host calls
// _initialize and then the exports.
func main() {}

// adapterArena is memory reserved for a WASI Preview 1 component adapter
// (wit/component): the adapter allocates its state on its first WASI call,
// while _initialize is still starting the Go runtime, when no Go function
// may run. wit/component/splice adds a non-Go bump allocator over this
// array, found by its marker, as the export cabi_realloc_adapter. Go code
// never touches it after the marker.
var adapterArena = [256 << 10]byte{'s', 'e', 'c', 'u', 'r', 'e', 'l', 'o', 'g', '-', 'a', 'd', 'a', 'p', 't', 'e', 'r', '-', 'a', 'r', 'e', 'n', 'a', 0x7f}

var arenaRef *[256 << 10]byte

// heap keeps every block handed to the host alive (the Go heap does not
// move objects), by address.
var heap = map[uint32][]byte{}

func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// alloc returns a new block of n bytes (at least one, so that its address
// is unique) aligned to 8.
func alloc(n uint32) uint32 {
	b := make([]byte, max(n, 1)+7)
	off := (8 - addr(b)%8) % 8
	b = b[off : off+max(n, 1)]
	p := addr(b)
	heap[p] = b
	return p
}

// cabiRealloc is the canonical ABI allocator: the host (and a component
// adapter) allocate arguments with it.
//
//go:wasmexport cabi_realloc
func cabiRealloc(oldPtr, oldSize, align, newSize uint32) uint32 {
	p := alloc(newSize)
	if old, ok := heap[oldPtr]; ok && oldPtr != 0 {
		copy(heap[p], old[:min(oldSize, newSize, uint32(len(old)))])
		delete(heap, oldPtr)
	}
	return p
}

// take returns the string the host wrote at p (allocated by cabi_realloc)
// and frees the block.
func take(p, n uint32) (string, error) {
	if n == 0 {
		return "", nil
	}
	b, ok := heap[p]
	if !ok || uint32(len(b)) < n {
		return "", fmt.Errorf("argument at %#x (%d bytes) was not allocated with cabi_realloc", p, n)
	}
	delete(heap, p)
	return string(b[:n]), nil
}

// retArea is the last result, kept until the post-return call.
var retArea, retData uint32

//go:wasmexport securelog:log/verify@1.0.0#verify
func verify(bundlePtr, bundleLen, trustPtr, trustLen, witnessPtr, witnessLen, allowUnsignedTail uint32) uint32 {
	arenaRef = &adapterArena // keeps the arena linked
	free()
	var v verdict.Verdict
	bundlePath, err1 := take(bundlePtr, bundleLen)
	trustPath, err2 := take(trustPtr, trustLen)
	witnessPath, err3 := take(witnessPtr, witnessLen)
	switch {
	case err1 != nil || err2 != nil || err3 != nil:
		v = verdict.Verdict{Format: verdict.Format, Stage: verdict.StageInput, Error: fmt.Sprint(err1, err2, err3)}
	case bundlePath == "":
		v = verdict.Verdict{Format: verdict.Format, Stage: verdict.StageInput, Error: "no bundle path"}
	default:
		v = verdict.RunFiles(context.Background(), bundlePath, trustPath, witnessPath, allowUnsignedTail != 0,
			func(done, total uint64) { fmt.Fprintf(os.Stderr, "securelog-progress %d %d\n", done, total) })
	}
	out, err := json.Marshal(v)
	if err != nil {
		out = []byte(`{"format":"securelog-verdict/v1","ok":false,"stage":"input","error":"verdict does not encode"}`)
	}
	retData = alloc(uint32(len(out)))
	copy(heap[retData], out)
	retArea = alloc(8)
	binary.LittleEndian.PutUint32(heap[retArea][0:], retData)
	binary.LittleEndian.PutUint32(heap[retArea][4:], uint32(len(out)))
	return retArea
}

// postVerify frees the last result.
//
//go:wasmexport cabi_post_securelog:log/verify@1.0.0#verify
func postVerify(uint32) { free() }

func free() {
	delete(heap, retArea)
	delete(heap, retData)
	retArea, retData = 0, 0
}
