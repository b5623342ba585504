// Package remote is the remote store of SPEC §16: a store.Store whose every
// operation is exactly one JSON-RPC call over a transport.Transport (HTTP or
// NATS) to a server (package rpcserver) that owns the real store.
//
// Init(config) is the handshake: an empty config fails locally with
// "remote store: init config is empty"; otherwise "init" is called with
// [config] (the server ignores the value). Unlike the reference, operations
// before a successful Init fail locally with store.ErrNotInitialized, as for
// every other backend. Results that do not decode fail with
// "decode result of <method>: <detail>"; transport errors (including the
// server's error text, e.g. "transport-http: server returned 500: stream
// not found: x") keep their text; a server error that names a store error
// type (duplicate seqno, segment/stream not found, segment overlap) also
// unwraps to that type (store.ParseError), so errors.As works remotely.
//
// Importing the package registers backend "remote" for store.Open:
// "remote:HANDSHAKE" (any non-empty handshake value); a store opened that
// way has an empty transport configuration (Init fails asking for the URL).
// Callers that configure the transport (the CLI's store opener,
// internal/node) build it and use New.
package remote

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

func init() {
	store.Register("remote", func() store.Store { return NewFromConfig("", transport.Config{}) })
}

var (
	_ store.Store            = (*Store)(nil)
	_ store.SegmentReserver  = (*Store)(nil)
	_ store.SegmentTreeStore = (*Store)(nil)
)

// errClosed is returned by operations after Close.
var errClosed = errors.New("remote store: closed")

// Store is the remote store. It is safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	t      transport.Transport
	build  func() (transport.Transport, error) // set by NewFromConfig; run at Init
	inited bool
	closed bool
	// rangeWindow is the most seqnos one v1 Range call asks for (0: no
	// limit yet; set when a reply was too large).
	rangeWindow atomic.Uint64
	// noExt: the server answered an extension method (paged reads,
	// segment trees) with "unknown method"; only v1 methods are used.
	noExt atomic.Bool
}

// New returns a remote store over t. Close closes t if it implements
// io.Closer.
func New(t transport.Transport) *Store { return &Store{t: t} }

// NewFromConfig returns a remote store that builds its transport with
// transport.New(kind, cfg) when Init is called (a bad configuration is an
// Init error).
func NewFromConfig(kind string, cfg transport.Config) *Store {
	return &Store{build: func() (transport.Transport, error) { return transport.New(kind, cfg) }}
}

// Init builds the transport if needed and performs the handshake. A second
// Init is an error.
func (s *Store) Init(ctx context.Context, config string) error {
	if config == "" {
		return errors.New("remote store: init config is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errClosed
	case s.inited:
		return errors.New("remote store: already initialised")
	}
	if s.t == nil {
		t, err := s.build()
		if err != nil {
			return err
		}
		s.t = t
	}
	res, err := s.callLocked(ctx, wire.InitParams{Config: config})
	if err != nil {
		return err
	}
	if err := wire.DecodeUnitResult(wire.MethodInit, res); err != nil {
		return err
	}
	s.inited = true
	return nil
}

// Close marks the store closed and closes the transport if it is an io.Closer.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed, s.inited = true, false
	if c, ok := s.t.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// call encodes p, sends it once and returns the raw result.
func (s *Store) call(ctx context.Context, p wire.Params) (json.RawMessage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch {
	case s.closed:
		return nil, errClosed
	case !s.inited:
		return nil, store.ErrNotInitialized
	}
	return s.callLocked(ctx, p)
}

// typed maps a server's error reply back to the store error type its text
// names (store.ParseError), keeping the text exactly; other errors (local,
// transport) are returned unchanged.
func typed(err error) error {
	var se *transport.StatusError
	if errors.As(err, &se) {
		return store.ParseError(err)
	}
	return err
}

func (s *Store) callLocked(ctx context.Context, p wire.Params) (json.RawMessage, error) {
	params, err := wire.EncodeParams(p)
	if err != nil {
		return nil, err
	}
	res, err := s.t.Call(ctx, p.Method(), params)
	return res, typed(err)
}

func value[T any](s *Store, ctx context.Context, p wire.Params) (T, error) {
	res, err := s.call(ctx, p)
	if err != nil {
		var zero T
		return zero, err
	}
	return wire.DecodeResult[T](p.Method(), res)
}

func option[T any](s *Store, ctx context.Context, p wire.Params) (T, bool, error) {
	res, err := s.call(ctx, p)
	if err != nil {
		var zero T
		return zero, false, err
	}
	return wire.DecodeOptResult[T](p.Method(), res)
}

func unit(s *Store, ctx context.Context, p wire.Params) error {
	res, err := s.call(ctx, p)
	if err != nil {
		return err
	}
	return wire.DecodeUnitResult(p.Method(), res)
}

// Insert implements store.Store.
func (s *Store) Insert(ctx context.Context, row wire.EntryRow) (uint64, error) {
	return value[uint64](s, ctx, wire.InsertParams{Row: row})
}

// GlobalHead implements store.Store.
func (s *Store) GlobalHead(ctx context.Context) (uint64, bool, error) {
	return option[uint64](s, ctx, wire.GlobalHeadParams{})
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, seqno uint64) (wire.EntryRow, bool, error) {
	return option[wire.EntryRow](s, ctx, wire.GetParams{Seqno: seqno})
}

// Range implements store.Store.
//
// A range is read in pages (secure-log-range-page, an extension of SPEC
// §16) that each fit the transport's message limit (NATS max_payload), so
// no reply is too large whatever the range. A server without the paged
// method (the reference) is asked with secure-log-range in windows of
// seqnos: a window the server cannot send (status 413) is halved and asked
// again, and later calls start from the smaller window.
func (s *Store) Range(ctx context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	if !s.noExt.Load() {
		rows, err := s.rangePaged(ctx, stream, from, to)
		if !unknownMethod(err) {
			return rows, err
		}
		s.noExt.Store(true)
	}
	return s.rangeWindows(ctx, stream, from, to)
}

// rangeWindows is Range over v1 secure-log-range.
func (s *Store) rangeWindows(ctx context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	var out []wire.EntryRow
	for lo := from; lo <= to; {
		w := s.rangeWindow.Load() // 0: the whole range at once
		if w == 0 {
			w = math.MaxUint64
		}
		hi := to
		if hi-lo >= w {
			hi = lo + w - 1
		}
		rows, err := value[[]wire.EntryRow](s, ctx, wire.RangeParams{Stream: stream, From: lo, To: hi})
		var se *transport.StatusError
		if errors.As(err, &se) && se.Status == http.StatusRequestEntityTooLarge && hi > lo {
			s.rangeWindow.Store((hi-lo)/2 + 1)
			continue
		}
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = rows
		} else {
			out = append(out, rows...)
		}
		if hi == to {
			break
		}
		lo = hi + 1
	}
	if out == nil {
		out = []wire.EntryRow{}
	}
	return out, nil
}

// Head implements store.Store.
func (s *Store) Head(ctx context.Context, stream string) (uint64, bool, error) {
	return option[uint64](s, ctx, wire.HeadParams{Stream: stream})
}

// Last implements store.Store.
func (s *Store) Last(ctx context.Context, stream string) (wire.EntryRow, bool, error) {
	return option[wire.EntryRow](s, ctx, wire.LastParams{Stream: stream})
}

// SegmentInsert implements store.Store.
func (s *Store) SegmentInsert(ctx context.Context, row wire.SegmentRow, entries []wire.SegmentEntry) (uint64, error) {
	return value[uint64](s, ctx, wire.SegmentInsertParams{Row: row, Entries: entries})
}

// SegmentGet implements store.Store.
func (s *Store) SegmentGet(ctx context.Context, id uint64) (wire.SegmentRow, bool, error) {
	return option[wire.SegmentRow](s, ctx, wire.SegmentGetParams{ID: id})
}

// SegmentsList implements store.Store.
func (s *Store) SegmentsList(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	return value[[]wire.SegmentRow](s, ctx, wire.SegmentsListParams{Stream: stream})
}

// SegmentLastSeqno implements store.Store.
func (s *Store) SegmentLastSeqno(ctx context.Context, stream string) (uint64, bool, error) {
	return option[uint64](s, ctx, wire.SegmentLastSeqnoParams{Stream: stream})
}

// SegmentEntrySeqnos implements store.Store. The members are read in
// pages (secure-log-segment-entry-seqnos-page) that fit the transport's
// message limit, or with v1 secure-log-segment-entry-seqnos from a server
// without it.
func (s *Store) SegmentEntrySeqnos(ctx context.Context, id uint64) ([]uint64, error) {
	if !s.noExt.Load() {
		seqnos, err := s.seqnosPaged(ctx, id)
		if !unknownMethod(err) {
			return seqnos, err
		}
		s.noExt.Store(true)
	}
	return value[[]uint64](s, ctx, wire.SegmentEntrySeqnosParams{ID: id})
}

// SegmentReserve implements store.SegmentReserver
// (secure-log-segment-reserve, an extension of SPEC §16).
func (s *Store) SegmentReserve(ctx context.Context, stream string) (uint64, error) {
	return value[uint64](s, ctx, wire.SegmentReserveParams{Stream: stream})
}

// SegmentReservation implements store.SegmentReserver
// (secure-log-segment-reservation).
func (s *Store) SegmentReservation(ctx context.Context, stream string) (uint64, bool, error) {
	return option[uint64](s, ctx, wire.SegmentReservationParams{Stream: stream})
}

// SegmentForSeqno implements store.Store.
func (s *Store) SegmentForSeqno(ctx context.Context, seqno uint64) (uint64, bool, error) {
	return option[uint64](s, ctx, wire.SegmentForSeqnoParams{Seqno: seqno})
}

// SegmentSetSignature implements store.Store.
func (s *Store) SegmentSetSignature(ctx context.Context, id uint64, sig []byte, signer string) error {
	return unit(s, ctx, wire.SegmentSetSignatureParams{ID: id, Signature: sig, Signer: signer})
}

// WitnessInsert implements store.Store.
func (s *Store) WitnessInsert(ctx context.Context, row wire.WitnessRow) (int64, error) {
	return value[int64](s, ctx, wire.WitnessInsertParams{Row: row})
}

// WitnessLatest implements store.Store.
func (s *Store) WitnessLatest(ctx context.Context, stream string) (wire.WitnessRow, bool, error) {
	return option[wire.WitnessRow](s, ctx, wire.WitnessLatestParams{Stream: stream})
}

// WitnessList implements store.Store.
func (s *Store) WitnessList(ctx context.Context, stream string) ([]wire.WitnessRow, error) {
	return value[[]wire.WitnessRow](s, ctx, wire.WitnessListParams{Stream: stream})
}

// WitnessStreamIDs implements store.Store.
func (s *Store) WitnessStreamIDs(ctx context.Context) ([]string, error) {
	return value[[]string](s, ctx, wire.WitnessStreamIDsParams{})
}

// WitnessGC implements store.Store.
func (s *Store) WitnessGC(ctx context.Context, stream *string, keepLatest *uint32, olderThan *string) (uint32, error) {
	return value[uint32](s, ctx, wire.WitnessGCParams{Stream: stream, KeepLatest: keepLatest, OlderThan: olderThan})
}

// StreamUpsert implements store.Store.
func (s *Store) StreamUpsert(ctx context.Context, row wire.StreamRow) error {
	return unit(s, ctx, wire.StreamUpsertParams{Row: row})
}

// StreamGet implements store.Store.
func (s *Store) StreamGet(ctx context.Context, name string) (wire.StreamRow, bool, error) {
	return option[wire.StreamRow](s, ctx, wire.StreamGetParams{Name: name})
}

// StreamList implements store.Store.
func (s *Store) StreamList(ctx context.Context) ([]wire.StreamRow, error) {
	return value[[]wire.StreamRow](s, ctx, wire.StreamListParams{})
}

// StreamSetTier implements store.Store.
func (s *Store) StreamSetTier(ctx context.Context, name, tier string) error {
	return unit(s, ctx, wire.StreamSetTierParams{Name: name, Tier: tier})
}

// StreamDeprecate implements store.Store.
func (s *Store) StreamDeprecate(ctx context.Context, name, deprecatedAt string) error {
	return unit(s, ctx, wire.StreamDeprecateParams{Name: name, DeprecatedAt: deprecatedAt})
}
