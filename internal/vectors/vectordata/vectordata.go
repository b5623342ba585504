// Package vectordata holds the format v1 test vectors (vectors.json, the
// values docs/format.md describes) as bytes compiled into the test binaries
// that import it. It has no dependencies, so tests inside pkg/wire can use it
// without an import cycle; most tests use the typed accessors of
// internal/vectors instead.
package vectordata

import _ "embed"

// JSON is the content of vectors.json.
//
//go:embed vectors.json
var JSON []byte
