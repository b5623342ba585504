// Package vectors2 loads the shared test vectors (shared/spec/vectors.json)
// for tests. The file is found by walking up from the working directory to
// the directory holding go.mod and then looking at
// ../shared/spec/vectors.json. A missing file fails the test: the vectors are
// the acceptance reference and must not be skipped silently.
package vectors2

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// RelPath is the location of the vectors relative to the module root.
const RelPath = "../shared/spec/vectors.json"

// Path returns the absolute path of vectors.json, found from dir by walking
// up to the nearest directory that contains go.mod.
func Path(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("vectors: resolve %q: %w", dir, err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, filepath.FromSlash(RelPath)), nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("vectors: no go.mod above %q", dir)
		}
		d = parent
	}
}

// Raw returns the bytes of vectors.json or fails tb.
func Raw(tb testing.TB) []byte {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("vectors: getwd: %v", err)
	}
	p, err := Path(wd)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		tb.Fatalf("vectors: read %s: %v (the shared vectors must be present)", p, err)
	}
	return data
}

// Section decodes the top-level member name of vectors.json into out, or
// fails tb if it is absent or does not decode.
func Section(tb testing.TB, name string, out any) {
	tb.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(Raw(tb), &top); err != nil {
		tb.Fatalf("vectors: decode: %v", err)
	}
	raw, ok := top[name]
	if !ok {
		tb.Fatalf("vectors: section %q missing", name)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.Fatalf("vectors: decode section %q: %v", name, err)
	}
}

// Hex decodes a lowercase hex string or fails tb.
func Hex(tb testing.TB, s string) []byte {
	tb.Helper()
	if s == "" {
		tb.Fatal(errors.New("vectors: empty hex string (missing field?)"))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("vectors: bad hex %q: %v", s, err)
	}
	return b
}
