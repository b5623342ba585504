package wire

// JSON-RPC method names of the remote store (SPEC §16.2), one per store
// operation. Client and server both use these constants.
const (
	MethodInit                = "init"
	MethodInsert              = "secure-log-insert"
	MethodGlobalHead          = "secure-log-global-head"
	MethodGet                 = "secure-log-get"
	MethodRange               = "secure-log-range"
	MethodHead                = "secure-log-head"
	MethodLast                = "secure-log-last"
	MethodSegmentInsert       = "secure-log-segment-insert"
	MethodSegmentGet          = "secure-log-segment-get"
	MethodSegmentsList        = "secure-log-segments-list"
	MethodSegmentLastSeqno    = "secure-log-segment-last-seqno"
	MethodSegmentEntrySeqnos  = "secure-log-segment-entry-seqnos"
	MethodSegmentForSeqno     = "secure-log-segment-for-seqno"
	MethodSegmentSetSignature = "secure-log-segment-set-signature"
	MethodWitnessInsert       = "witness-log-insert"
	MethodWitnessLatest       = "witness-log-latest"
	MethodWitnessList         = "witness-log-list"
	MethodWitnessStreamIDs    = "witness-log-stream-ids"
	MethodWitnessGC           = "witness-log-gc"
	MethodStreamUpsert        = "secure-log-stream-upsert"
	MethodStreamGet           = "secure-log-stream-get"
	MethodStreamList          = "secure-log-stream-list"
	MethodStreamSetTier       = "secure-log-stream-set-tier"
	MethodStreamDeprecate     = "secure-log-stream-deprecate"

	// MethodSegmentReserve and MethodSegmentReservation are this module's
	// extension of SPEC §16 (store.SegmentReserver; issue 9 item 2): the
	// segment id reserved for a sealed stream's open segment.
	MethodSegmentReserve     = "secure-log-segment-reserve"
	MethodSegmentReservation = "secure-log-segment-reservation"

	// The paged reads and segment-tree methods are extensions too
	// (rpc_tree.go).
)

// Methods lists every method name in declaration order: init + the 23 of
// SPEC §16.2, then this module's extensions.
var Methods = []string{
	MethodInit, MethodInsert, MethodGlobalHead, MethodGet, MethodRange, MethodHead, MethodLast,
	MethodSegmentInsert, MethodSegmentGet, MethodSegmentsList, MethodSegmentLastSeqno,
	MethodSegmentEntrySeqnos, MethodSegmentForSeqno, MethodSegmentSetSignature,
	MethodWitnessInsert, MethodWitnessLatest, MethodWitnessList, MethodWitnessStreamIDs, MethodWitnessGC,
	MethodStreamUpsert, MethodStreamGet, MethodStreamList, MethodStreamSetTier, MethodStreamDeprecate,
	MethodSegmentReserve, MethodSegmentReservation,
	MethodRangePage, MethodSegmentEntrySeqnosPage, MethodSegmentInsertTree,
	MethodSegmentLeaf, MethodSegmentTreeChunk, MethodSegmentTreeNodes,
}

// MutatingMethods are the methods that change store state (they need the
// writer role, DECISIONS 17).
var MutatingMethods = map[string]bool{
	MethodInsert: true, MethodSegmentInsert: true, MethodSegmentSetSignature: true,
	MethodWitnessInsert: true, MethodWitnessGC: true, MethodStreamUpsert: true,
	MethodStreamSetTier: true, MethodStreamDeprecate: true, MethodSegmentReserve: true,
	MethodSegmentInsertTree: true,
}

// ZeroArgMethods take no parameters; the client sends null and servers
// accept null or [] (DECISIONS 16).
var ZeroArgMethods = map[string]bool{
	MethodGlobalHead: true, MethodWitnessStreamIDs: true, MethodStreamList: true,
}
