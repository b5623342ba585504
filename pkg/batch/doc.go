// Package batch holds the batching primitives of securelog, pure and
// without I/O:
//
//   - Group coalesces submissions into batches handled by one call, one
//     batch at a time and in submission order: a batch is cut when the
//     previous one is done, or (WithWait) when it is full or its oldest
//     item waited long enough. Do waits for the item's result (the
//     append group commit of securelog.Log); Go and GoContext deliver it
//     to a callback, with back-pressure on a bounded queue (the
//     ingester's request appends and its JetStream consume path).
//   - Ordered runs a produce → parallel work → in-order consume pipeline
//     with bounded memory (hash and decode on every core, check in order).
package batch
