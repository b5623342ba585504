#!/usr/bin/env bash
# Wraps the WebAssembly bundle verifier (cmd/securelog-verifier) as a WASI
# Preview 2 component exporting wit/verify.wit's `verify` interface, with
# @bytecodealliance/jco from npm, transpiles it to JavaScript and calls it
# under Node on the bundle given as $1 (docs/wasm-verifier.md). The Go test
# wit/component_test.go does the same.
#
#   wit/component/build.sh BUNDLE [TRUST]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
work="$(mktemp -d "${TMPDIR:-/tmp}/securelog-component.XXXXXX")"
trap 'rm -rf "$work"' EXIT
bundle="$(realpath "$1")"
trust="${2:+$(realpath "$2")}"

echo "== build the core module (with the adapter's allocator spliced in)"
(cd "$repo" && go run ./pkg/console/internal/genwasm -raw -o "$work/verifier.wasm")

echo "== install jco"
cp "$here/embed.mjs" "$here/run.mjs" "$repo/wit/verify.wit" "$work/"
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund @bytecodealliance/jco@1.35.0 @bytecodealliance/preview2-shim@0.26.1 >/dev/null

echo "== embed the WIT, adapt with the preview1 reactor adapter, transpile"
node embed.mjs verifier.wasm verify.wit embedded.wasm
npx jco new embedded.wasm --wasi-reactor -o component.wasm
npx jco wit component.wasm
npx jco transpile component.wasm -o out --name verifier >/dev/null
echo '{"type":"module"}' >out/package.json

echo "== call verify under Node"
node run.mjs "$bundle" "$trust"
