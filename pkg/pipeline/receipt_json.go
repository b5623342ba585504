package pipeline

import (
	"encoding/hex"
	"encoding/json"
	"strconv"

	"github.com/securelog/securelog/pkg/wire"
)

// appendJSONString appends s as encoding/json would: printable ASCII that
// needs no escaping verbatim, anything else through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// marshalReceipt returns the same bytes as json.Marshal(r) without
// reflection: receipts are built for every batch and can hold thousands of
// items.
func marshalReceipt(r *wire.CommitReceipt) []byte {
	b := make([]byte, 0, 32+len(r.Stream)+len(r.Items)*(48+2*wire.HashLen))
	b = append(b, `{"stream":`...)
	b = appendJSONString(b, r.Stream)
	b = append(b, `,"items":`...)
	if r.Items == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i, it := range r.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		sep := false
		field := func(name string) {
			if sep {
				b = append(b, ',')
			}
			sep = true
			b = append(b, '"')
			b = append(b, name...)
			b = append(b, `":`...)
		}
		if it.MsgID != "" {
			field("msg_id")
			b = appendJSONString(b, it.MsgID)
		}
		if it.JSSeq != 0 {
			field("js_seq")
			b = strconv.AppendUint(b, it.JSSeq, 10)
		}
		if it.Seqno != 0 {
			field("seqno")
			b = strconv.AppendUint(b, it.Seqno, 10)
		}
		if len(it.EntryHash) != 0 {
			field("entry_hash")
			b = append(b, '"')
			b = hex.AppendEncode(b, it.EntryHash)
			b = append(b, '"')
		}
		if it.Error != "" {
			field("error")
			b = appendJSONString(b, it.Error)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
