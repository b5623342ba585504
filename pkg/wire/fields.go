package wire

// Format constants of SPEC §2.
const (
	// EntryVersion is the version field of every entry.
	EntryVersion uint32 = 1
	// CheckpointVersion is the version field of every checkpoint.
	CheckpointVersion uint32 = 1
	// HashLen is the digest length (SHA-256).
	HashLen = 32
	// EncoderName names the canonical encoder and is the default payload_encoding.
	EncoderName = "cbor"
	// AEADEncoding is the payload_encoding of sealed entries.
	AEADEncoding = "cbor+aead-chacha20poly1305-v1"
	// DefaultStream is seeded by every store at init.
	DefaultStream = "default"
	// DefaultStreamTier is the tier of the seeded default stream.
	DefaultStreamTier = "public"
	// DefaultStreamDescription is the description of the seeded default stream.
	DefaultStreamDescription = "Default stream created automatically at init."
)

// ZeroHash is 32 zero bytes: genesis prev hashes, the policy hash, the empty root.
var ZeroHash = make([]byte, HashLen)

// EntryFields is the logical entry that is encoded and hashed (SPEC §3.2), in
// encoding order.
type EntryFields struct {
	Version         uint32
	StreamID        string
	SessionID       string
	BootID          string
	Seqno           uint64
	Timestamp       string
	EventType       string
	Severity        Severity
	Producer        string
	PayloadEncoding string
	Payload         []byte
	PrevEntryHash   []byte
}

// CheckpointFields is the canonical checkpoint record (SPEC §3.8), in encoding
// order. Note boot_id precedes session_id here.
type CheckpointFields struct {
	Version            uint32
	StreamID           string
	SegmentID          uint64
	SeqStart           uint64
	SeqEnd             uint64
	MerkleRoot         []byte
	LastEntryHash      []byte
	PrevCheckpointHash []byte
	BootID             string
	SessionID          string
	PolicyHash         []byte
	Timestamp          string
}
