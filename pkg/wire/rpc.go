package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
)

// This file is the JSON-RPC wire contract of the remote store (SPEC §16):
// the request envelope, one typed params struct per method (so client and
// server cannot disagree on the shape), and the result encoders/decoders.

// Envelope is one RPC request: {"method": <name>, "params": <params JSON>}.
// The HTTP transport sends it as the POST body; the NATS transport sends it
// as the request payload.
type Envelope struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// NullJSON is the JSON literal null: the params of zero-argument methods and
// the result of unit-returning methods.
var NullJSON = json.RawMessage("null")

// EncodeEnvelope returns the compact request body
// {"method":<method>,"params":<params verbatim>}. Empty params encode as
// null; params that are not valid JSON are an error.
func EncodeEnvelope(method string, params json.RawMessage) ([]byte, error) {
	if len(params) == 0 {
		params = NullJSON
	} else if !json.Valid(params) {
		return nil, fmt.Errorf("encode envelope: params of %q are not valid JSON", method)
	}
	m, err := json.Marshal(method)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: method %q: %w", method, err)
	}
	b := make([]byte, 0, len(`{"method":,"params":}`)+len(m)+len(params))
	b = append(b, `{"method":`...)
	b = append(b, m...)
	b = append(b, `,"params":`...)
	b = append(b, params...)
	return append(b, '}'), nil
}

// DecodeEnvelope parses a request body. The method must be a non-empty JSON
// string; missing params read as null; unknown fields are ignored. Errors
// read "malformed request envelope: <detail>" (SPEC §16.5).
func DecodeEnvelope(body []byte) (Envelope, error) {
	var raw struct {
		Method *string          `json:"method"`
		Params *json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Envelope{}, fmt.Errorf("malformed request envelope: %w", err)
	}
	if raw.Method == nil || *raw.Method == "" {
		return Envelope{}, fmt.Errorf("malformed request envelope: missing \"method\"")
	}
	env := Envelope{Method: *raw.Method, Params: NullJSON}
	if raw.Params != nil && len(*raw.Params) > 0 {
		env.Params = *raw.Params
	}
	return env, nil
}

// Params is the typed argument list of one RPC method. Every method of
// SPEC §16.3 has exactly one Params type (InitParams … StreamDeprecateParams);
// the type fixes the method name, the order and the JSON type of every
// argument.
type Params interface {
	// Method returns the RPC method name the params belong to.
	Method() string
	// args returns the arguments in declaration order (nil for zero-arg methods).
	args() []any
}

// argTargets is implemented by pointers to Params types: the decode targets
// in declaration order.
type argTargets interface {
	Params
	targets() []any
}

// InitParams is [config]. The server ignores the config (handshake).
type InitParams struct{ Config string }

// InsertParams is [row].
type InsertParams struct{ Row EntryRow }

// GlobalHeadParams takes no arguments (params null).
type GlobalHeadParams struct{}

// GetParams is [seqno].
type GetParams struct{ Seqno uint64 }

// RangeParams is [stream_id, from, to].
type RangeParams struct {
	Stream   string
	From, To uint64
}

// HeadParams is [stream_id].
type HeadParams struct{ Stream string }

// LastParams is [stream_id].
type LastParams struct{ Stream string }

// SegmentInsertParams is [segment, [[seqno, leaf_index], …]].
type SegmentInsertParams struct {
	Row     SegmentRow
	Entries []SegmentEntry
}

// SegmentGetParams is [segment_id].
type SegmentGetParams struct{ ID uint64 }

// SegmentsListParams is [stream_id].
type SegmentsListParams struct{ Stream string }

// SegmentLastSeqnoParams is [stream_id].
type SegmentLastSeqnoParams struct{ Stream string }

// SegmentReserveParams is [stream_id] (extension; store.SegmentReserver).
type SegmentReserveParams struct{ Stream string }

// SegmentReservationParams is [stream_id] (extension; store.SegmentReserver).
type SegmentReservationParams struct{ Stream string }

// SegmentEntrySeqnosParams is [segment_id].
type SegmentEntrySeqnosParams struct{ ID uint64 }

// SegmentForSeqnoParams is [seqno].
type SegmentForSeqnoParams struct{ Seqno uint64 }

// SegmentSetSignatureParams is [segment_id, [bytes…], signer_identity].
type SegmentSetSignatureParams struct {
	ID        uint64
	Signature []byte
	Signer    string
}

// WitnessInsertParams is [witness].
type WitnessInsertParams struct{ Row WitnessRow }

// WitnessLatestParams is [stream_id].
type WitnessLatestParams struct{ Stream string }

// WitnessListParams is [stream_id].
type WitnessListParams struct{ Stream string }

// WitnessStreamIDsParams takes no arguments (params null).
type WitnessStreamIDsParams struct{}

// WitnessGCParams is [stream_id or null, keep_latest or null, older_than or null].
type WitnessGCParams struct {
	Stream     *string
	KeepLatest *uint32
	OlderThan  *string
}

// StreamUpsertParams is [stream].
type StreamUpsertParams struct{ Row StreamRow }

// StreamGetParams is [name].
type StreamGetParams struct{ Name string }

// StreamListParams takes no arguments (params null).
type StreamListParams struct{}

// StreamSetTierParams is [name, tier].
type StreamSetTierParams struct{ Name, Tier string }

// StreamDeprecateParams is [name, deprecated_at_rfc3339].
type StreamDeprecateParams struct{ Name, DeprecatedAt string }

// Method implementations: the name each params type is sent under.

// Method returns "init".
func (InitParams) Method() string { return MethodInit }

// Method returns "secure-log-insert".
func (InsertParams) Method() string { return MethodInsert }

// Method returns "secure-log-global-head".
func (GlobalHeadParams) Method() string { return MethodGlobalHead }

// Method returns "secure-log-get".
func (GetParams) Method() string { return MethodGet }

// Method returns "secure-log-range".
func (RangeParams) Method() string { return MethodRange }

// Method returns "secure-log-head".
func (HeadParams) Method() string { return MethodHead }

// Method returns "secure-log-last".
func (LastParams) Method() string { return MethodLast }

// Method returns "secure-log-segment-insert".
func (SegmentInsertParams) Method() string { return MethodSegmentInsert }

// Method returns "secure-log-segment-get".
func (SegmentGetParams) Method() string { return MethodSegmentGet }

// Method returns "secure-log-segments-list".
func (SegmentsListParams) Method() string { return MethodSegmentsList }

// Method returns "secure-log-segment-last-seqno".
func (SegmentLastSeqnoParams) Method() string { return MethodSegmentLastSeqno }

// Method returns "secure-log-segment-entry-seqnos".
func (SegmentEntrySeqnosParams) Method() string { return MethodSegmentEntrySeqnos }

// Method returns "secure-log-segment-for-seqno".
func (SegmentForSeqnoParams) Method() string { return MethodSegmentForSeqno }

// Method implements Params.
func (SegmentReserveParams) Method() string { return MethodSegmentReserve }

// Method implements Params.
func (SegmentReservationParams) Method() string { return MethodSegmentReservation }

// Method returns "secure-log-segment-set-signature".
func (SegmentSetSignatureParams) Method() string { return MethodSegmentSetSignature }

// Method returns "witness-log-insert".
func (WitnessInsertParams) Method() string { return MethodWitnessInsert }

// Method returns "witness-log-latest".
func (WitnessLatestParams) Method() string { return MethodWitnessLatest }

// Method returns "witness-log-list".
func (WitnessListParams) Method() string { return MethodWitnessList }

// Method returns "witness-log-stream-ids".
func (WitnessStreamIDsParams) Method() string { return MethodWitnessStreamIDs }

// Method returns "witness-log-gc".
func (WitnessGCParams) Method() string { return MethodWitnessGC }

// Method returns "secure-log-stream-upsert".
func (StreamUpsertParams) Method() string { return MethodStreamUpsert }

// Method returns "secure-log-stream-get".
func (StreamGetParams) Method() string { return MethodStreamGet }

// Method returns "secure-log-stream-list".
func (StreamListParams) Method() string { return MethodStreamList }

// Method returns "secure-log-stream-set-tier".
func (StreamSetTierParams) Method() string { return MethodStreamSetTier }

// Method returns "secure-log-stream-deprecate".
func (StreamDeprecateParams) Method() string { return MethodStreamDeprecate }

func (p InitParams) args() []any       { return []any{p.Config} }
func (p InsertParams) args() []any     { return []any{p.Row} }
func (GlobalHeadParams) args() []any   { return nil }
func (p GetParams) args() []any        { return []any{p.Seqno} }
func (p RangeParams) args() []any      { return []any{p.Stream, p.From, p.To} }
func (p HeadParams) args() []any       { return []any{p.Stream} }
func (p LastParams) args() []any       { return []any{p.Stream} }
func (p SegmentGetParams) args() []any { return []any{p.ID} }
func (p SegmentInsertParams) args() []any {
	entries := p.Entries
	if entries == nil {
		entries = []SegmentEntry{} // [] on the wire, never null
	}
	return []any{p.Row, entries}
}
func (p SegmentsListParams) args() []any       { return []any{p.Stream} }
func (p SegmentLastSeqnoParams) args() []any   { return []any{p.Stream} }
func (p SegmentEntrySeqnosParams) args() []any { return []any{p.ID} }
func (p SegmentForSeqnoParams) args() []any    { return []any{p.Seqno} }
func (p SegmentReserveParams) args() []any     { return []any{p.Stream} }
func (p SegmentReservationParams) args() []any { return []any{p.Stream} }
func (p SegmentSetSignatureParams) args() []any {
	return []any{p.ID, Bytes(p.Signature), p.Signer}
}
func (p WitnessInsertParams) args() []any { return []any{p.Row} }
func (p WitnessLatestParams) args() []any { return []any{p.Stream} }
func (p WitnessListParams) args() []any   { return []any{p.Stream} }
func (WitnessStreamIDsParams) args() []any {
	return nil
}
func (p WitnessGCParams) args() []any         { return []any{p.Stream, p.KeepLatest, p.OlderThan} }
func (p StreamUpsertParams) args() []any      { return []any{p.Row} }
func (p StreamGetParams) args() []any         { return []any{p.Name} }
func (StreamListParams) args() []any          { return nil }
func (p StreamSetTierParams) args() []any     { return []any{p.Name, p.Tier} }
func (p StreamDeprecateParams) args() []any   { return []any{p.Name, p.DeprecatedAt} }
func (p *InitParams) targets() []any          { return []any{&p.Config} }
func (p *InsertParams) targets() []any        { return []any{&p.Row} }
func (*GlobalHeadParams) targets() []any      { return nil }
func (p *GetParams) targets() []any           { return []any{&p.Seqno} }
func (p *RangeParams) targets() []any         { return []any{&p.Stream, &p.From, &p.To} }
func (p *HeadParams) targets() []any          { return []any{&p.Stream} }
func (p *LastParams) targets() []any          { return []any{&p.Stream} }
func (p *SegmentInsertParams) targets() []any { return []any{&p.Row, &p.Entries} }
func (p *SegmentGetParams) targets() []any    { return []any{&p.ID} }
func (p *SegmentsListParams) targets() []any  { return []any{&p.Stream} }
func (p *SegmentLastSeqnoParams) targets() []any {
	return []any{&p.Stream}
}
func (p *SegmentEntrySeqnosParams) targets() []any { return []any{&p.ID} }
func (p *SegmentForSeqnoParams) targets() []any    { return []any{&p.Seqno} }
func (p *SegmentReserveParams) targets() []any     { return []any{&p.Stream} }
func (p *SegmentReservationParams) targets() []any { return []any{&p.Stream} }
func (p *SegmentSetSignatureParams) targets() []any {
	return []any{&p.ID, (*Bytes)(&p.Signature), &p.Signer}
}
func (p *WitnessInsertParams) targets() []any { return []any{&p.Row} }
func (p *WitnessLatestParams) targets() []any { return []any{&p.Stream} }
func (p *WitnessListParams) targets() []any   { return []any{&p.Stream} }
func (*WitnessStreamIDsParams) targets() []any {
	return nil
}
func (p *WitnessGCParams) targets() []any {
	return []any{&p.Stream, &p.KeepLatest, &p.OlderThan}
}
func (p *StreamUpsertParams) targets() []any    { return []any{&p.Row} }
func (p *StreamGetParams) targets() []any       { return []any{&p.Name} }
func (*StreamListParams) targets() []any        { return nil }
func (p *StreamSetTierParams) targets() []any   { return []any{&p.Name, &p.Tier} }
func (p *StreamDeprecateParams) targets() []any { return []any{&p.Name, &p.DeprecatedAt} }

// newParams returns a fresh decode target for each method name.
var newParams = map[string]func() argTargets{
	MethodInit:                func() argTargets { return &InitParams{} },
	MethodInsert:              func() argTargets { return &InsertParams{} },
	MethodGlobalHead:          func() argTargets { return &GlobalHeadParams{} },
	MethodGet:                 func() argTargets { return &GetParams{} },
	MethodRange:               func() argTargets { return &RangeParams{} },
	MethodHead:                func() argTargets { return &HeadParams{} },
	MethodLast:                func() argTargets { return &LastParams{} },
	MethodSegmentInsert:       func() argTargets { return &SegmentInsertParams{} },
	MethodSegmentGet:          func() argTargets { return &SegmentGetParams{} },
	MethodSegmentsList:        func() argTargets { return &SegmentsListParams{} },
	MethodSegmentLastSeqno:    func() argTargets { return &SegmentLastSeqnoParams{} },
	MethodSegmentEntrySeqnos:  func() argTargets { return &SegmentEntrySeqnosParams{} },
	MethodSegmentForSeqno:     func() argTargets { return &SegmentForSeqnoParams{} },
	MethodSegmentSetSignature: func() argTargets { return &SegmentSetSignatureParams{} },
	MethodWitnessInsert:       func() argTargets { return &WitnessInsertParams{} },
	MethodWitnessLatest:       func() argTargets { return &WitnessLatestParams{} },
	MethodWitnessList:         func() argTargets { return &WitnessListParams{} },
	MethodWitnessStreamIDs:    func() argTargets { return &WitnessStreamIDsParams{} },
	MethodWitnessGC:           func() argTargets { return &WitnessGCParams{} },
	MethodStreamUpsert:        func() argTargets { return &StreamUpsertParams{} },
	MethodStreamGet:           func() argTargets { return &StreamGetParams{} },
	MethodStreamList:          func() argTargets { return &StreamListParams{} },
	MethodStreamSetTier:       func() argTargets { return &StreamSetTierParams{} },
	MethodStreamDeprecate:     func() argTargets { return &StreamDeprecateParams{} },
	MethodSegmentReserve:      func() argTargets { return &SegmentReserveParams{} },
	MethodSegmentReservation:  func() argTargets { return &SegmentReservationParams{} },
}

// EncodeParams returns the params JSON of p: a compact JSON array of the
// arguments in declaration order, or null for zero-argument methods (what
// the reference server expects, DECISIONS 16).
func EncodeParams(p Params) (json.RawMessage, error) {
	a := p.args()
	if a == nil {
		return NullJSON, nil
	}
	b, err := marshalNoEscape(a)
	if err != nil {
		return nil, fmt.Errorf("encode params of %s: %w", p.Method(), err)
	}
	return b, nil
}

// UnknownMethodError is returned by DecodeParams for a method name that is
// not part of the contract. Its text is `unknown method "<m>"` (SPEC §16.5).
type UnknownMethodError struct{ Method string }

func (e *UnknownMethodError) Error() string { return fmt.Sprintf("unknown method %q", e.Method) }

// ParamsError is returned by DecodeParams for params that do not decode:
// wrong arity, wrong JSON types, integers out of range (-1, 2^64) or with a
// fraction (1.5). It is the caller's mistake, so servers answer it with 400.
// Its text is "decode params: <method>: <detail>" (SPEC §16.5).
type ParamsError struct {
	Method string
	Err    error
}

func (e *ParamsError) Error() string { return fmt.Sprintf("decode params: %s: %v", e.Method, e.Err) }
func (e *ParamsError) Unwrap() error { return e.Err }

// DecodeParams decodes the params of method into its typed Params (a
// pointer, e.g. *RangeParams). Arity is exact: params must be a JSON array
// with one element per argument; a null element is accepted only for
// optional arguments. Zero-argument methods accept null and [] (DECISIONS 16)
// and reject anything else. A decode failure is a *ParamsError ("decode
// params: <method>: <detail>"); an unknown method is an *UnknownMethodError.
func DecodeParams(method string, params json.RawMessage) (Params, error) {
	mk, ok := newParams[method]
	if !ok {
		return nil, &UnknownMethodError{Method: method}
	}
	p := mk()
	if err := decodeArgs(params, p.targets()); err != nil {
		return nil, &ParamsError{Method: method, Err: err}
	}
	return p, nil
}

func decodeArgs(params json.RawMessage, targets []any) error {
	trimmed := bytes.TrimSpace(params)
	if len(targets) == 0 {
		if len(trimmed) == 0 || isNull(trimmed) {
			return nil
		}
		var a []json.RawMessage
		if err := json.Unmarshal(trimmed, &a); err != nil || len(a) != 0 {
			return fmt.Errorf("takes no arguments: want null or [], got %s", abbrev(trimmed))
		}
		return nil
	}
	if len(trimmed) == 0 || isNull(trimmed) {
		return fmt.Errorf("want a JSON array of %d argument(s), got null", len(targets))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(trimmed, &elems); err != nil {
		return fmt.Errorf("want a JSON array of %d argument(s): %w", len(targets), err)
	}
	if len(elems) != len(targets) {
		return fmt.Errorf("want %d argument(s), got %d", len(targets), len(elems))
	}
	for i, el := range elems {
		t := targets[i]
		if isNull(el) && reflect.TypeOf(t).Elem().Kind() != reflect.Pointer {
			return fmt.Errorf("argument %d: null is not allowed here", i+1)
		}
		if err := json.Unmarshal(el, t); err != nil {
			return fmt.Errorf("argument %d: %w", i+1, err)
		}
	}
	return nil
}

func isNull(b []byte) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

func abbrev(b []byte) string {
	const max = 64
	if len(b) <= max {
		return string(b)
	}
	return string(b[:max]) + "…"
}

// EncodeResult returns the result JSON of v (SPEC §16.3). A nil slice
// encodes as [] (list results are never null); use EncodeOptResult for
// option<T> and NullJSON for unit results.
func EncodeResult(v any) (json.RawMessage, error) {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		return json.RawMessage("[]"), nil
	}
	if rows, ok := v.([]EntryRow); ok { // ranges: most of the RPC's bytes
		b, err := encodeEntryRows(rows)
		if err != nil {
			return nil, fmt.Errorf("encode result: %w", err)
		}
		return b, nil
	}
	b, err := marshalNoEscape(v)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return b, nil
}

// EncodeOptResult returns the JSON of an option<T>: v if ok, else null.
func EncodeOptResult(v any, ok bool) (json.RawMessage, error) {
	if !ok {
		return NullJSON, nil
	}
	return EncodeResult(v)
}

// DecodeResult decodes a non-optional result of method into T. null is an
// error (use DecodeOptResult for option<T>). Errors read
// "decode result of <method>: <detail>" (SPEC §16.3).
func DecodeResult[T any](method string, raw json.RawMessage) (T, error) {
	var v T
	if len(bytes.TrimSpace(raw)) == 0 || isNull(raw) {
		return v, fmt.Errorf("decode result of %s: got null, want a value", method)
	}
	if p, ok := any(&v).(*[]EntryRow); ok { // ranges: most of the RPC's bytes
		if rows, ok := decodeEntryRows(raw); ok {
			*p = rows
			return v, nil
		}
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("decode result of %s: %w", method, err)
	}
	return v, nil
}

// DecodeOptResult decodes an option<T> result of method: null → ok false.
func DecodeOptResult[T any](method string, raw json.RawMessage) (T, bool, error) {
	var v T
	if isNull(raw) {
		return v, false, nil
	}
	v, err := DecodeResult[T](method, raw)
	return v, err == nil, err
}

// DecodeUnitResult checks that a unit result of method is null.
func DecodeUnitResult(method string, raw json.RawMessage) error {
	if !isNull(raw) {
		return fmt.Errorf("decode result of %s: want null, got %s", method, abbrev(bytes.TrimSpace(raw)))
	}
	return nil
}

// NATS request/reply framing of the RPC (an addition to SPEC §16; HTTP
// stays exactly as specified).
//
// Request: the payload is the Envelope body, byte for byte what the HTTP
// transport POSTs; an optional header "Authorization: Bearer <token>".
// Reply: header NATSStatusHeader carries the status the HTTP server would
// have answered (e.g. "200", "400", "401", "403", "413", "500"); with 200 the
// payload is the result JSON, otherwise it is the plain-text error.
const (
	// DefaultNATSSubject is the default request subject of the RPC.
	DefaultNATSSubject = "securelog.rpc"
	// NATSQueueGroup is the queue group servers subscribe with, so one
	// request is answered by exactly one server.
	NATSQueueGroup = "securelog-rpc"
	// NATSStatusHeader is the reply header carrying the status code.
	NATSStatusHeader = "Securelog-Status"
	// AuthorizationHeader carries the bearer token (HTTP and NATS).
	AuthorizationHeader = "Authorization"
)

// ReadSubjectSuffix turns a request subject into its read-only subject.
const ReadSubjectSuffix = ".read"

// ReadSubject returns the read-only request subject of the RPC subject
// subject ("securelog.rpc" → "securelog.rpc.read"). A server answers
// requests on it with the reader role (mutating methods are refused, 403),
// so a nats-server can give a user read access to the store by allowing it
// to publish on ReadSubject(subject) only, and write access by allowing
// subject: on NATS, access is decided by the user's permissions, not by a
// bearer token that every subscriber of the subject could read (issue 9
// item 4). Clients send non-mutating methods there.
func ReadSubject(subject string) string { return subject + ReadSubjectSuffix }

// FormatStatus renders a status code for NATSStatusHeader.
func FormatStatus(code int) string { return strconv.Itoa(code) }
