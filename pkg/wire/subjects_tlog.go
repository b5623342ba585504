package wire

// Subjects of the C2SP transparency view (package tlog). They live under
// securelog.tlog., which is no per-stream kind (securelog.<kind>.<stream>):
// no stream name can make a pipeline subject equal to one of them. Never
// add a per-stream kind named "tlog".
//
//	securelog.tlog.checkpoint  each new C2SP checkpoint (a signed note,
//	                           with the cosignatures collected so far)
//	securelog.tlog.latest      request/reply to the checkpointer:
//	                           {} → TlogLatestReply
//	securelog.tlog.head        request/reply to the ingester: {} → TlogHeadReply
//	securelog.tlog.tile        request/reply to the ingester:
//	                           TlogTileRequest → TlogTileReply
//
// head and tile let a checkpointer in another process (the signer worker)
// read the ingester's tree; they reveal only what the public tiles do.
const (
	// TlogCheckpointSubject announces each new C2SP checkpoint note. It
	// replaces securelog.checkpoint.log, which was also the v1 checkpoint
	// subject of a stream named "log".
	TlogCheckpointSubject = "securelog.tlog.checkpoint"
	// TlogLatestSubject answers with the checkpoint /checkpoint serves.
	TlogLatestSubject = "securelog.tlog.latest"
	// TlogHeadSubject answers with the committed tree size and root.
	TlogHeadSubject = "securelog.tlog.head"
	// TlogTileSubject answers with one stored tile.
	TlogTileSubject = "securelog.tlog.tile"
)

// TlogLatestReply answers TlogLatestSubject: the latest checkpoint that
// satisfies the log's witness policy (the latest log-signed one when no
// policy is configured), as served at /checkpoint.
type TlogLatestReply struct {
	// Checkpoint is the signed note with its cosignatures ("" = none yet).
	Checkpoint string `json:"checkpoint,omitempty"`
	// Size is its tree size.
	Size int64 `json:"size"`
	// Policy reports whether a witness policy is configured (then
	// Checkpoint satisfies it).
	Policy bool   `json:"policy"`
	Error  string `json:"error,omitempty"`
}

// TlogHeadReply answers TlogHeadSubject.
type TlogHeadReply struct {
	Size  int64  `json:"size"`
	Root  []byte `json:"root,omitempty"` // 32 bytes (base64 in JSON)
	Error string `json:"error,omitempty"`
}

// TlogTileRequest asks for the stored tile N of level L (L = -1: entry
// bundle, as raw 32-byte leaves).
type TlogTileRequest struct {
	L int   `json:"l"`
	N int64 `json:"n"`
}

// TlogTileReply answers a TlogTileRequest: the stored tile's data, which
// may be wider than the caller needs.
type TlogTileReply struct {
	Found bool   `json:"found"`
	Data  []byte `json:"data,omitempty"`
	Error string `json:"error,omitempty"`
}
