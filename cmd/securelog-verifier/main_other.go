//go:build !wasip1

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "securelog-verifier is a WebAssembly module: build it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared ./cmd/securelog-verifier")
	os.Exit(2)
}
