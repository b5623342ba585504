package wire

// CommitLookupSubject answers "what did JetStream message N of SECURELOG_IN
// become?" from the ingester's durable commit index, so a producer that
// missed a commit receipt (disconnected, duplicate publish, ingester crash
// between commit and receipt) still learns the outcome.
const CommitLookupSubject = "securelog.lookup.commit"

// Commit lookup outcomes.
const (
	// LookupCommitted: the message was chained; Seqno and EntryHash are set.
	LookupCommitted = "committed"
	// LookupPending: the ingester has not applied that sequence yet.
	LookupPending = "pending"
	// LookupNotCommitted: applied but not chained (rejected to the
	// dead-letter subject, or a duplicate).
	LookupNotCommitted = "not-committed"
)

// CommitLookup asks about one JetStream stream sequence.
type CommitLookup struct {
	JSSeq uint64 `json:"js_seq"`
}

// CommitLookupReply answers a CommitLookup.
type CommitLookupReply struct {
	Status    string `json:"status,omitempty"`
	JSSeq     uint64 `json:"js_seq,omitempty"`
	Stream    string `json:"stream,omitempty"`
	Seqno     uint64 `json:"seqno,omitempty"`
	EntryHash Hex    `json:"entry_hash,omitempty"`
	Error     string `json:"error,omitempty"`
}
