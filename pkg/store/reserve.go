package store

import "context"

// SegmentReserver is implemented by stores that keep segment-id
// reservations (DECISIONS 5, issue 9 item 2): the payloads of a sealed
// stream's open segment are encrypted under the id that segment will get,
// so that id is reserved in the store when the segment opens and no other
// stream's close can take it.
//
// Every backend of this module implements it (memory, sqlite, pebble, file
// and the remote store over the RPC methods secure-log-segment-reserve and
// secure-log-segment-reservation).
//
// With reservations, SegmentInsert assigns ids as follows, atomically with
// its checks: a stream that holds a reservation gets the reserved id and the
// reservation ends with the insert; any other segment gets a new id above
// every stored and every reserved id. Ids stay unique, and ascending within
// a stream, but a reserved id may be used after higher ones.
type SegmentReserver interface {
	// SegmentReserve returns the id reserved for the stream's next segment,
	// reserving a new id (above every stored and reserved one) if the stream
	// holds none. It is idempotent and atomic: concurrent calls for one
	// stream, also from other processes sharing the store, return one id.
	// The reservation is durable once SegmentReserve returns.
	SegmentReserve(ctx context.Context, stream string) (uint64, error)
	// SegmentReservation returns the stream's reserved id, if it holds one.
	SegmentReservation(ctx context.Context, stream string) (uint64, bool, error)
}
