// Package wasmsplice adds to the verifier module (cmd/securelog-verifier)
// an export cabi_realloc_adapter that is not Go code: a bump allocator over
// the module's adapterArena, found by its marker in the data section. A
// WASI Preview 1 component adapter allocates its state with it on its first
// WASI call, while _initialize is still starting the Go runtime and no Go
// function may run (docs/wasm-verifier.md). Other hosts never call it.
package wasmsplice

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// marker starts cmd/securelog-verifier's adapterArena; arenaSize is its size.
var marker = []byte("securelog-adapter-arena\x7f")

const arenaSize = 256 << 10

type section struct {
	id   byte
	body []byte
}

func uleb(b []byte) (uint64, int, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, errors.New("bad LEB128")
	}
	return v, n, nil
}

func sleb32(b []byte) (int64, int, error) {
	var v int64
	var shift uint
	for i, c := range b {
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("bad signed LEB128")
}

func appendULEB(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// addEntry returns a vector section body with one more entry.
func addEntry(body, entry []byte) ([]byte, uint64, error) {
	n, k, err := uleb(body)
	if err != nil {
		return nil, 0, err
	}
	out := appendULEB(nil, n+1)
	out = append(out, body[k:]...)
	return append(out, entry...), n, nil
}

// Splice returns the module with cabi_realloc_adapter added; a module
// that has it already is returned unchanged.
func Splice(mod []byte) ([]byte, error) {
	if !bytes.HasPrefix(mod, []byte("\x00asm\x01\x00\x00\x00")) {
		return nil, errors.New("not a wasm module")
	}
	if bytes.Contains(mod, []byte("cabi_realloc_adapter")) {
		return mod, nil
	}
	var secs []section
	for p := 8; p < len(mod); {
		id := mod[p]
		size, n, err := uleb(mod[p+1:])
		if err != nil {
			return nil, err
		}
		start := p + 1 + n
		secs = append(secs, section{id, mod[start : start+int(size)]})
		p = start + int(size)
	}
	find := func(id byte) *section {
		for i := range secs {
			if secs[i].id == id {
				return &secs[i]
			}
		}
		return nil
	}
	arena, err := arenaAddr(find(11))
	if err != nil {
		return nil, err
	}
	nImportedFuncs, err := importedFuncs(find(2))
	if err != nil {
		return nil, err
	}
	typ, fn, glob, exp, code := find(1), find(3), find(6), find(7), find(10)
	if typ == nil || fn == nil || glob == nil || exp == nil || code == nil {
		return nil, errors.New("module lacks a type, function, global, export or code section")
	}
	var typeIdx, nFuncs, globalIdx uint64
	if typ.body, typeIdx, err = addEntry(typ.body, []byte{0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f}); err != nil {
		return nil, err
	}
	if fn.body, nFuncs, err = addEntry(fn.body, appendULEB(nil, typeIdx)); err != nil {
		return nil, err
	}
	base := (arena + uint64(len(marker)) + 15) &^ 15
	limit := arena + arenaSize
	g := appendSLEB([]byte{0x7f, 0x01, 0x41}, int64(int32(base)))
	if glob.body, globalIdx, err = addEntry(glob.body, append(g, 0x0b)); err != nil {
		return nil, err
	}
	// (func (param old_ptr old_size align new_size) (result i32) (local p i32)
	//   old_ptr != 0 → unreachable
	//   p = (g + align - 1) & -align; p + new_size > limit → unreachable
	//   g = p + new_size; p)
	gi := appendULEB(nil, globalIdx)
	var c []byte
	c = append(c, 0x20, 0, 0x04, 0x40, 0x00, 0x0b)
	c = append(append(c, 0x23), gi...)
	c = append(c, 0x20, 2, 0x6a, 0x41, 1, 0x6b, 0x41, 0, 0x20, 2, 0x6b, 0x71, 0x21, 4)
	c = append(c, 0x20, 4, 0x20, 3, 0x6a, 0x41)
	c = appendSLEB(c, int64(int32(limit)))
	c = append(c, 0x4b, 0x04, 0x40, 0x00, 0x0b)
	c = append(c, 0x20, 4, 0x20, 3, 0x6a, 0x24)
	c = append(c, gi...)
	c = append(c, 0x20, 4, 0x0b)
	fbody := append([]byte{1, 1, 0x7f}, c...)
	if code.body, _, err = addEntry(code.body, append(appendULEB(nil, uint64(len(fbody))), fbody...)); err != nil {
		return nil, err
	}
	name := "cabi_realloc_adapter"
	e := append(appendULEB(nil, uint64(len(name))), name...)
	e = append(append(e, 0x00), appendULEB(nil, nImportedFuncs+nFuncs)...)
	if exp.body, _, err = addEntry(exp.body, e); err != nil {
		return nil, err
	}
	out := append([]byte(nil), mod[:8]...)
	for _, s := range secs {
		out = append(out, s.id)
		out = appendULEB(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out, nil
}

// arenaAddr finds the marker in the active data segments and returns its
// linear-memory address.
func arenaAddr(data *section) (uint64, error) {
	if data == nil {
		return 0, errors.New("no data section")
	}
	b := data.body
	n, k, err := uleb(b)
	if err != nil {
		return 0, err
	}
	b = b[k:]
	for range n {
		flags, k, err := uleb(b)
		if err != nil {
			return 0, err
		}
		b = b[k:]
		if flags != 0 {
			return 0, fmt.Errorf("data segment with flags %d is not supported", flags)
		}
		if b[0] != 0x41 {
			return 0, errors.New("data segment offset is not i32.const")
		}
		off, k, err := sleb32(b[1:])
		if err != nil {
			return 0, err
		}
		b = b[1+k:]
		if b[0] != 0x0b {
			return 0, errors.New("data segment offset expression is not a constant")
		}
		b = b[1:]
		size, k, err := uleb(b)
		if err != nil {
			return 0, err
		}
		seg := b[k : k+int(size)]
		b = b[k+int(size):]
		if i := bytes.Index(seg, marker); i >= 0 {
			return uint64(off) + uint64(i), nil
		}
	}
	return 0, errors.New("adapter arena marker not found (is this cmd/securelog-verifier?)")
}

// importedFuncs counts the function imports.
func importedFuncs(imp *section) (uint64, error) {
	if imp == nil {
		return 0, nil
	}
	b := imp.body
	n, k, err := uleb(b)
	if err != nil {
		return 0, err
	}
	b = b[k:]
	var funcs uint64
	skipName := func() error {
		l, k, err := uleb(b)
		if err != nil {
			return err
		}
		b = b[k+int(l):]
		return nil
	}
	limits := func() error {
		flag := b[0]
		b = b[1:]
		for i := 0; i < 1+int(flag&1); i++ {
			_, k, err := uleb(b)
			if err != nil {
				return err
			}
			b = b[k:]
		}
		return nil
	}
	for range n {
		if err := skipName(); err != nil {
			return 0, err
		}
		if err := skipName(); err != nil {
			return 0, err
		}
		kind := b[0]
		b = b[1:]
		switch kind {
		case 0:
			_, k, err := uleb(b)
			if err != nil {
				return 0, err
			}
			b = b[k:]
			funcs++
		case 1:
			b = b[1:]
			if err := limits(); err != nil {
				return 0, err
			}
		case 2:
			if err := limits(); err != nil {
				return 0, err
			}
		case 3:
			b = b[2:]
		default:
			return 0, fmt.Errorf("unknown import kind %d", kind)
		}
	}
	return funcs, nil
}
