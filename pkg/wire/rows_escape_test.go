package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRowsDoNotHTMLEscape(t *testing.T) {
	b, err := EncodeParams(InsertParams{Row: EntryRow{Seqno: 1, StreamID: "a<b>&c", Severity: Info, Payload: []byte{}, PrevEntryHash: ZeroHash, EntryHash: ZeroHash}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"stream_id":"a<b>&c"`) {
		t.Fatalf("got %s", b)
	}
	var back []EntryRow
	if err := json.Unmarshal(b, &back); err != nil || back[0].StreamID != "a<b>&c" {
		t.Fatalf("round trip: %v %v", err, back)
	}
}
