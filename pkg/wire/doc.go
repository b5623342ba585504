// Package wire holds the byte-exact formats of securelog v1 (SPEC §2–§4,
// §13, §16), pure and without I/O: the canonical CBOR encoding of entries
// and checkpoints, the rows (EntryRow, SegmentRow, StreamRow, WitnessRow)
// with their JSON forms, the typed log errors of SPEC §13, the JSON-RPC
// contract of the remote store (method names, params, results), the NATS
// subjects and message envelopes of the pipeline (per partition), the
// severities, and the RFC 3339 time format. Every other package encodes
// and decodes through it, so a byte of the format lives in one place.
package wire
