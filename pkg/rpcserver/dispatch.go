package rpcserver

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// Dispatch runs one RPC against st: it decodes params with exact arity
// (a *wire.ParamsError "decode params: …"), calls the store operation and encodes its
// result (SPEC §16.3). An unknown method is the error `unknown method "<m>"`
// (a *wire.UnknownMethodError); store errors are returned unchanged. init is
// a handshake: its params are checked, its config ignored, and it answers
// null without touching the store (the server opened its store at startup).
// This module's extensions (paged reads, segment trees; wire/rpc_tree.go)
// are dispatched too: a paged read fills at most the smallest of the
// caller's budget, the serving transport's message limit and
// DefaultMaxReply.
func Dispatch(ctx context.Context, st store.Store, method string, params json.RawMessage) (json.RawMessage, error) {
	p, err := wire.DecodeParams(method, params)
	if err != nil {
		return nil, err
	}
	switch p := p.(type) {
	case *wire.InitParams:
		return wire.NullJSON, nil
	case *wire.InsertParams:
		return value(st.Insert(ctx, p.Row))
	case *wire.GlobalHeadParams:
		return option(st.GlobalHead(ctx))
	case *wire.GetParams:
		return option(st.Get(ctx, p.Seqno))
	case *wire.RangeParams:
		return value(st.Range(ctx, p.Stream, p.From, p.To))
	case *wire.HeadParams:
		return option(st.Head(ctx, p.Stream))
	case *wire.LastParams:
		return option(st.Last(ctx, p.Stream))
	case *wire.SegmentInsertParams:
		return value(st.SegmentInsert(ctx, p.Row, p.Entries))
	case *wire.SegmentGetParams:
		return option(st.SegmentGet(ctx, p.ID))
	case *wire.SegmentsListParams:
		return value(st.SegmentsList(ctx, p.Stream))
	case *wire.SegmentLastSeqnoParams:
		return option(st.SegmentLastSeqno(ctx, p.Stream))
	case *wire.SegmentEntrySeqnosParams:
		return value(st.SegmentEntrySeqnos(ctx, p.ID))
	case *wire.SegmentForSeqnoParams:
		return option(st.SegmentForSeqno(ctx, p.Seqno))
	case *wire.SegmentSetSignatureParams:
		return unit(st.SegmentSetSignature(ctx, p.ID, p.Signature, p.Signer))
	case *wire.WitnessInsertParams:
		return value(st.WitnessInsert(ctx, p.Row))
	case *wire.WitnessLatestParams:
		return option(st.WitnessLatest(ctx, p.Stream))
	case *wire.WitnessListParams:
		return value(st.WitnessList(ctx, p.Stream))
	case *wire.WitnessStreamIDsParams:
		return value(st.WitnessStreamIDs(ctx))
	case *wire.WitnessGCParams:
		return value(st.WitnessGC(ctx, p.Stream, p.KeepLatest, p.OlderThan))
	case *wire.StreamUpsertParams:
		return unit(st.StreamUpsert(ctx, p.Row))
	case *wire.StreamGetParams:
		return option(st.StreamGet(ctx, p.Name))
	case *wire.StreamListParams:
		return value(st.StreamList(ctx))
	case *wire.StreamSetTierParams:
		return unit(st.StreamSetTier(ctx, p.Name, p.Tier))
	case *wire.StreamDeprecateParams:
		return unit(st.StreamDeprecate(ctx, p.Name, p.DeprecatedAt))
	case *wire.SegmentReserveParams:
		r, err := reserver(st)
		if err != nil {
			return nil, err
		}
		return value(r.SegmentReserve(ctx, p.Stream))
	case *wire.SegmentReservationParams:
		r, err := reserver(st)
		if err != nil {
			return nil, err
		}
		return option(r.SegmentReservation(ctx, p.Stream))
	default:
		if res, ok, err := dispatchExt(ctx, st, p); ok {
			return res, err
		}
		// Unreachable while wire.DecodeParams and this switch cover the same
		// methods; TestDispatchCoversEveryMethod keeps them in step.
		return nil, fmt.Errorf("rpcserver: no dispatch for method %q (params %T)", method, p)
	}
}

// reserver returns st's segment-id reservations (every backend of this
// module keeps them).
func reserver(st store.Store) (store.SegmentReserver, error) {
	r, ok := st.(store.SegmentReserver)
	if !ok {
		return nil, fmt.Errorf("rpcserver: store %T keeps no segment reservations", st)
	}
	return r, nil
}

func value[T any](v T, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	return wire.EncodeResult(v)
}

func option[T any](v T, ok bool, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	return wire.EncodeOptResult(v, ok)
}

func unit(err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	return wire.NullJSON, nil
}
