// Command genwasm builds the bundle verifier (cmd/securelog-verifier) as a
// WASI reactor module, adds the component adapter's allocator
// (internal/wasmsplice) and writes it gzip-compressed for the console to
// embed (go generate ./pkg/console). The gzip stream has no name and no
// time, so the same module always gives the same bytes.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/securelog/securelog/internal/wasmsplice"
)

func main() {
	out := flag.String("o", "static/verifier.wasm.gz", "output file")
	raw := flag.Bool("raw", false, "write the module uncompressed")
	flag.Parse()
	if err := run(*out, *raw); err != nil {
		fmt.Fprintln(os.Stderr, "genwasm:", err)
		os.Exit(1)
	}
}

// BuildArgs are the go build arguments of the module (after "go").
var BuildArgs = []string{"build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-s -w"}

func run(out string, raw bool) error {
	dir, err := os.MkdirTemp("", "genwasm")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	wasm := filepath.Join(dir, "verifier.wasm")
	args := append(append([]string(nil), BuildArgs...), "-o", wasm, "github.com/securelog/securelog/cmd/securelog-verifier")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v: %w", args, err)
	}
	b, err := os.ReadFile(wasm)
	if err != nil {
		return err
	}
	if b, err = wasmsplice.Splice(b); err != nil {
		return err
	}
	if raw {
		return os.WriteFile(out, b, 0o644)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "genwasm: %s: %d bytes (%d uncompressed)\n", out, buf.Len(), len(b))
	return nil
}
