// Package batch holds the batching primitives of securelog, pure and
// without I/O:
//
//   - Group coalesces concurrent submissions into groups handled by one
//     call (a group commit: many callers share one synced write), each
//     caller getting its own result only when its group is done.
//   - Ordered runs a produce → parallel work → in-order consume pipeline
//     with bounded memory (hash and decode on every core, check in order).
package batch
