// Command securelog-verifier is the bundle verifier (pkg/verdict over
// pkg/bundle) built as a WASI reactor module:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o verifier.wasm ./cmd/securelog-verifier
//
// It exports, with the component model's canonical ABI so that the same
// module can be wrapped as a WASI Preview 2 component (wit/verify.wit):
//
//	cabi_realloc(old_ptr, old_size, align, new_size i32) i32
//	securelog:log/verify@1.0.0#verify(bundle_ptr, bundle_len, trust_ptr, trust_len,
//	        witness_ptr, witness_len, allow_unsigned_tail i32) i32
//	cabi_post_securelog:log/verify@1.0.0#verify(ret i32)
//
// The host calls _initialize once, then allocates the three path strings
// with cabi_realloc, writes them (UTF-8) and calls verify; the result is a
// pointer to two little-endian i32s, the address and length of the verdict
// JSON (pkg/verdict, "securelog-verdict/v1"), valid until the post-return
// call. An empty trust path uses the bundle's own keys; an empty witness
// trust path leaves cosignatures unverified. Files are opened through WASI
// (preopened directories) and the bundle is read in parts with fd_pread, so
// memory is bounded by the largest segment, not the bundle. Progress is
// written to stderr as lines "securelog-progress DONE TOTAL".
//
// internal/wasmsplice then adds cabi_realloc_adapter, a non-Go allocator
// over adapterArena for the component adapter (docs/wasm-verifier.md);
// go generate ./pkg/console does both.
//
// Built for any other platform the command only says how to build it.
package main
