package witness

import "github.com/securelog/securelog/pkg/wire"

// The log keeps the cosignatures its witnesses returned in its own store's
// witness log (SPEC §15.5 rows), so an export bundle can carry them:
//
//	witness row field     ← receipt field
//	stream_id, segment_id ← stream_id, segment_id
//	seq_start, seq_end    ← the submission's range
//	checkpoint_hash_hex   ← checkpoint_hash_hex
//	signature_hex         ← cosignature_hex (the witness's signature)
//	signer_identity       ← witness_identity
//	received_at_rfc3339   ← received_at_rfc3339

// ReceiptRow is the witness-log row that records an accepted receipt.
func ReceiptRow(sub Submission, r Receipt) wire.WitnessRow {
	return wire.WitnessRow{
		StreamID: r.StreamID, SegmentID: r.SegmentID, SeqStart: sub.SeqStart, SeqEnd: sub.SeqEnd,
		CheckpointHashHex: r.CheckpointHashHex, SignatureHex: r.CosignatureHex,
		SignerIdentity: r.WitnessIdentity, ReceivedAt: r.ReceivedAt,
	}
}

// RowReceipt turns a recorded cosignature back into the receipt it came from.
func RowReceipt(row wire.WitnessRow) Receipt {
	return Receipt{
		StreamID: row.StreamID, SegmentID: row.SegmentID, CheckpointHashHex: row.CheckpointHashHex,
		Accepted: true, ReceivedAt: row.ReceivedAt, Status: "accepted",
		WitnessIdentity: row.SignerIdentity, CosignatureHex: row.SignatureHex,
	}
}
