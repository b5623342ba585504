package filestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/securelog/securelog/pkg/wire"
)

// The operation kinds of SPEC §17.1, the tags of the externally tagged lines.
const (
	kindInsertEntry         = "InsertEntry"
	kindInsertSegment       = "InsertSegment"
	kindSetSegmentSignature = "SetSegmentSignature"
	kindInsertWitness       = "InsertWitness"
	kindDeleteWitness       = "DeleteWitness"
	kindStreamUpsert        = "StreamUpsert"
	kindStreamSetTier       = "StreamSetTier"
	kindStreamDeprecate     = "StreamDeprecate"
)

// op is one decoded line. Exactly one field matching kind is set.
type op struct {
	kind      string
	entry     wire.EntryRow       // InsertEntry
	segment   wire.SegmentRow     // InsertSegment, SetSegmentSignature (SegmentID, Signature, SignerIdentity)
	members   []wire.SegmentEntry // InsertSegment
	witness   wire.WitnessRow     // InsertWitness; DeleteWitness uses witness.ID
	stream    wire.StreamRow      // StreamUpsert; StreamSetTier (Name, Tier); StreamDeprecate (Name, DeprecatedAt)
	witnessID int64               // DeleteWitness
}

type insertSegmentJSON struct {
	Segment wire.SegmentRow     `json:"segment"`
	Entries []wire.SegmentEntry `json:"entries"`
}

type setSignatureJSON struct {
	SegmentID      uint64     `json:"segment_id"`
	Signature      wire.Bytes `json:"signature"`
	SignerIdentity string     `json:"signer_identity"`
}

type setTierJSON struct {
	Name string `json:"name"`
	Tier string `json:"tier"`
}

type deprecateJSON struct {
	Name         string `json:"name"`
	DeprecatedAt string `json:"deprecated_at_rfc3339"`
}

// encode renders the op as one §17.1 line, '\n'-terminated.
func (o op) encode() ([]byte, error) {
	var payload any
	switch o.kind {
	case kindInsertEntry:
		payload = o.entry
	case kindInsertSegment:
		members := o.members
		if members == nil {
			members = []wire.SegmentEntry{}
		}
		payload = insertSegmentJSON{Segment: o.segment, Entries: members}
	case kindSetSegmentSignature:
		payload = setSignatureJSON{SegmentID: o.segment.SegmentID, Signature: o.segment.Signature, SignerIdentity: o.segment.Signer()}
	case kindInsertWitness:
		payload = o.witness
	case kindDeleteWitness:
		payload = o.witnessID
	case kindStreamUpsert:
		payload = o.stream
	case kindStreamSetTier:
		payload = setTierJSON{Name: o.stream.Name, Tier: o.stream.Tier}
	case kindStreamDeprecate:
		var at string
		if o.stream.DeprecatedAt != nil {
			at = *o.stream.DeprecatedAt
		}
		payload = deprecateJSON{Name: o.stream.Name, DeprecatedAt: at}
	default:
		return nil, fmt.Errorf("file store: unknown operation kind %q", o.kind)
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("file store: encode %s: %w", o.kind, err)
	}
	line := make([]byte, 0, len(o.kind)+len(p)+6)
	line = append(line, `{"`...)
	line = append(line, o.kind...)
	line = append(line, `":`...)
	line = appendUnescapedHTML(line, p)
	return append(line, '}', '\n'), nil
}

// appendUnescapedHTML appends the JSON text src to dst, turning the escapes
// encoding/json adds beyond what the reference writer (serde_json) emits —
// \u003c, \u003e, \u0026, \u2028, \u2029 — back into the characters. Both
// forms decode to the same value; this keeps our lines byte-identical to the
// reference's.
func appendUnescapedHTML(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != '\\' || i+1 >= len(src) {
			dst = append(dst, c)
			continue
		}
		if src[i+1] != 'u' || i+6 > len(src) {
			dst = append(dst, c, src[i+1]) // two-character escape: copy as is
			i++
			continue
		}
		var r rune
		switch string(src[i+2 : i+6]) {
		case "003c":
			r = '<'
		case "003e":
			r = '>'
		case "0026":
			r = '&'
		case "2028":
			r = '\u2028'
		case "2029":
			r = '\u2029'
		default:
			dst = append(dst, src[i:i+6]...)
			i += 5
			continue
		}
		dst = utf8.AppendRune(dst, r)
		i += 5
	}
	return dst
}

// decodeLine parses one trimmed, non-empty line. Errors are the detail of
// "corrupt log at line <n>: <detail>".
func decodeLine(line []byte) (op, error) {
	var tagged map[string]json.RawMessage
	if err := json.Unmarshal(line, &tagged); err != nil {
		return op{}, err
	}
	if len(tagged) != 1 {
		return op{}, fmt.Errorf("want one {\"<Kind>\": payload} operation, got an object with %d keys", len(tagged))
	}
	var (
		kind    string
		payload json.RawMessage
	)
	for k, v := range tagged {
		kind, payload = k, v
	}
	o := op{kind: kind}
	switch kind {
	case kindInsertEntry:
		if err := requireNumber(payload, "seqno"); err != nil {
			return op{}, fmt.Errorf("%s: %w", kind, err)
		}
		if err := json.Unmarshal(payload, &o.entry); err != nil {
			return op{}, fmt.Errorf("%s: %w", kind, err)
		}
	case kindInsertSegment:
		var j struct {
			Segment json.RawMessage     `json:"segment"`
			Entries []wire.SegmentEntry `json:"entries"`
		}
		if err := json.Unmarshal(payload, &j); err != nil {
			return op{}, fmt.Errorf("%s: %w", kind, err)
		}
		if err := requireNumber(j.Segment, "segment_id"); err != nil {
			return op{}, fmt.Errorf("%s: segment: %w", kind, err)
		}
		if err := json.Unmarshal(j.Segment, &o.segment); err != nil {
			return op{}, fmt.Errorf("%s: %w", kind, err)
		}
		o.members = j.Entries
	case kindSetSegmentSignature:
		var j setSignatureJSON
		if err := unmarshalObject(payload, &j); err != nil {
			return op{}, fmt.Errorf("%s: %w", kind, err)
		}
		signer := j.SignerIdentity
		o.segment = wire.SegmentRow{SegmentID: j.SegmentID, Signature: nonNil(j.Signature), SignerIdentity: &signer}
	case kindInsertWitness:
		if err := requireNumber(payload, "id"); err != nil {
			return op{}, fmt.Errorf("%s: %w", kind, err)
		}
		if err := json.Unmarshal(payload, &o.witness); err != nil {
			return op{}, fmt.Errorf("%s: %w", kind, err)
		}
	case kindDeleteWitness:
		if err := json.Unmarshal(payload, &o.witnessID); err != nil {
			return op{}, fmt.Errorf("%s: want the witness id as a number: %w", kind, err)
		}
	case kindStreamUpsert:
		if err := unmarshalObject(payload, &o.stream); err != nil {
			return op{}, fmt.Errorf("%s: %w", kind, err)
		}
	case kindStreamSetTier:
		var j setTierJSON
		if err := unmarshalObject(payload, &j); err != nil {
			return op{}, fmt.Errorf("%s: %w", kind, err)
		}
		o.stream = wire.StreamRow{Name: j.Name, Tier: j.Tier}
	case kindStreamDeprecate:
		var j deprecateJSON
		if err := unmarshalObject(payload, &j); err != nil {
			return op{}, fmt.Errorf("%s: %w", kind, err)
		}
		at := j.DeprecatedAt
		o.stream = wire.StreamRow{Name: j.Name, DeprecatedAt: &at}
	default:
		return op{}, fmt.Errorf("unknown operation kind %q (want InsertEntry, InsertSegment, SetSegmentSignature, InsertWitness, DeleteWitness, StreamUpsert, StreamSetTier or StreamDeprecate)", kind)
	}
	return o, nil
}

// unmarshalObject decodes a JSON object, rejecting null and non-objects
// (which encoding/json would accept silently as a zero value).
func unmarshalObject(payload json.RawMessage, v any) error {
	if p := bytes.TrimSpace(payload); len(p) == 0 || p[0] != '{' {
		return errors.New("payload must be a JSON object")
	}
	return json.Unmarshal(payload, v)
}

// requireNumber checks that the JSON object has the field as a positive
// integer (the ids and seqnos §17.1 marks required; 0 means "absent" in the
// row types, and no writer assigns it).
func requireNumber(object json.RawMessage, field string) error {
	if p := bytes.TrimSpace(object); len(p) == 0 || p[0] != '{' {
		return errors.New("payload must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(object, &fields); err != nil {
		return err
	}
	raw, ok := fields[field]
	if !ok {
		return fmt.Errorf("missing required field %q", field)
	}
	var n uint64
	if err := json.Unmarshal(raw, &n); err != nil || n == 0 { // null leaves n at 0
		return fmt.Errorf("field %q is %s, want a positive integer", field, raw)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
