package pipeline

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

func checkReceiptJSON(t *testing.T, r wire.CommitReceipt) {
	t.Helper()
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := marshalReceipt(&r); !bytes.Equal(got, want) {
		t.Fatalf("marshalReceipt(%+v)\n got %s\nwant %s", r, got, want)
	}
}

func TestMarshalReceipt(t *testing.T) {
	hash := bytes.Repeat([]byte{0x0f, 0xa0}, 16)
	for _, tc := range []struct {
		name string
		r    wire.CommitReceipt
	}{
		{"nil items", wire.CommitReceipt{Stream: "s"}},
		{"empty items", wire.CommitReceipt{Stream: "s", Items: []wire.CommitItem{}}},
		{"committed and rejected", wire.CommitReceipt{Stream: "orders", Items: []wire.CommitItem{
			{MsgID: "0123abcd", JSSeq: 18446744073709551615, Seqno: 1, EntryHash: hash},
			{MsgID: "x", JSSeq: 9, Error: `invalid severity "loud"`},
			{},
		}}},
		{"escapes", wire.CommitReceipt{Stream: "a<b>&c", Items: []wire.CommitItem{
			{MsgID: "tab\there \"q\" back\\slash \u2028 é", Error: "bad utf-8 \xff\xfe, nul \x00, del \x7f"},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkReceiptJSON(t, tc.r) })
	}
}

func FuzzMarshalReceipt(f *testing.F) {
	f.Add("orders", "0123abcd", uint64(7), uint64(41), []byte{1, 2, 3}, "")
	f.Add("s", "", uint64(0), uint64(0), []byte(nil), "rejected: <\"\\\xff>")
	f.Fuzz(func(t *testing.T, stream, msgID string, jsSeq, seqno uint64, hash []byte, errText string) {
		checkReceiptJSON(t, wire.CommitReceipt{Stream: stream, Items: []wire.CommitItem{
			{MsgID: msgID, JSSeq: jsSeq, Seqno: seqno, EntryHash: hash, Error: errText},
			{MsgID: errText, EntryHash: hash},
		}})
	})
}
