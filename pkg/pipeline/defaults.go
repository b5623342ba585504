// Package pipeline holds the workers of the JetStream pipeline (DESIGN.md
// "Data flow") as library types: the Ingester (the single writer of a
// store), the Sealer (segment-close policy) and the Signer (checkpoint
// signing and witnessing). The composition root (internal/node) wires
// them to NATS connections, stores and keystores for every command.
//
// The ingester consumes SECURELOG_IN and serves request/reply appends;
// both batch with pkg/batch's Group (cut at MaxBatch events or BatchWait,
// commits one at a time, in order). The sealer and signer are durable
// consumers of the ingester's appended/sealed announcements, with a slow
// store scan as a safety net.
//
// Durability is the store's, not the broker's: an event is committed only
// when the ingester's fsynced batch holds it, together with the last
// applied JetStream sequence, so every step can be repeated after a crash
// with exactly-once effect.
package pipeline

import "time"

// Defaults of the pipeline, in one place.
const (
	// DefaultDurable is the ingester's durable consumer name.
	DefaultDurable = "securelog-ingester"
	// DefaultMaxBatch is the most events committed in one store batch.
	DefaultMaxBatch = 1000
	// DefaultBatchWait is how long the ingester waits to fill a batch after
	// its first message. Under load batches fill by themselves (messages
	// that arrive while a batch commits form the next one), so the wait only
	// matters at moderate rates, where every event pays it as latency: 2 ms
	// (was 5 ms) keeps batches of dozens of events at a few thousand
	// events/s and takes 3 ms off every event's time to committed.
	DefaultBatchWait = 2 * time.Millisecond
	// DefaultMaxPayload is the largest accepted event payload (bytes).
	DefaultMaxPayload = 256 << 10
	// DefaultAckWait was the consumer's redelivery timeout; the consumer
	// no longer acknowledges (IngesterConfig.AckWait is ignored).
	//
	// Deprecated: it has no effect.
	DefaultAckWait = time.Minute
	// DefaultDuplicates is the JetStream de-duplication window of SECURELOG_IN.
	DefaultDuplicates = 2 * time.Minute
	// DefaultInMaxAge bounds how long SECURELOG_IN keeps messages; an
	// ingester down longer than this loses events (it logs an error).
	DefaultInMaxAge = 7 * 24 * time.Hour
	// DefaultRetryBackoff is the wait before the ingester re-positions
	// after a failed batch.
	DefaultRetryBackoff = 500 * time.Millisecond

	// DefaultMaxEntries closes a segment once it holds this many entries.
	DefaultMaxEntries = 1000
	// DefaultMaxAge closes a segment whose oldest entry is this old.
	DefaultMaxAge = time.Second
	// DefaultSealerScan is how often the sealer rescans the store for open
	// entries it has not heard about: a safety net for an announcement
	// lost between a commit and its publication (the durable consumer on
	// SECURELOG_APPENDED is the sealer's normal input).
	DefaultSealerScan = 2 * time.Minute
	// DefaultSignerScan is how often the signer rescans for unsigned
	// segments: a safety net like DefaultSealerScan.
	DefaultSignerScan = 2 * time.Minute
	// DefaultSealerDurable is the sealer's durable consumer on
	// SECURELOG_APPENDED.
	DefaultSealerDurable = "securelog-sealer"
	// DefaultSignerDurable is the signer's durable consumer on
	// SECURELOG_SEALED.
	DefaultSignerDurable = "securelog-signer"
	// DefaultSignerAckWait is how long the broker waits for the signer to
	// acknowledge a sealed announcement before redelivering it (signing is
	// idempotent; a redelivery of a signed segment is acknowledged at once).
	DefaultSignerAckWait = time.Minute
	// DefaultRequestTimeout bounds one NATS request of a worker.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultIdentity is the signer identity of `securelog up`.
	DefaultIdentity = "securelog"

	// ingesterQueue is the queue group of the ingester's request handlers.
	ingesterQueue = "securelog-ingester"
)

// PositionKey is the store meta key holding the last applied JetStream
// stream sequence (8 bytes, big endian) of stream.
func PositionKey(stream string) string { return "ingester/" + stream + "/seq" }

// CreatedKey is the store meta key holding the creation time of the
// JetStream stream the position refers to (RFC 3339, nanoseconds).
func CreatedKey(stream string) string { return "ingester/" + stream + "/created" }
