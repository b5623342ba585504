package bundle

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

const fastSegment = `{"segment_id":3,"stream_id":"s","seq_start":1,"seq_end":2,"merkle_root":[1],"last_entry_hash":[2],"prev_checkpoint_hash":[3],"closed_at_rfc3339":"t","signature":null,"signer_identity":"x\"y","entries":[[1,0],[2,1]]}`

// FuzzSegmentFast: whenever parseSegmentFast accepts an input, encoding/json
// decodes the same row and membership.
func FuzzSegmentFast(f *testing.F) {
	f.Add(fastSegment)
	f.Add(strings.Replace(fastSegment, `"entries"`, `"Entries"`, 1))
	f.Add(strings.Replace(fastSegment, `[[1,0],[2,1]]`, `[ [1 , 0] ,[2,1] ]`, 1))
	f.Fuzz(func(t *testing.T, s string) {
		row, members, ok := parseSegmentFast([]byte(s))
		if !ok {
			return
		}
		var want wire.SegmentRow
		var m segmentMembers
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", s, err)
		}
		if err := json.Unmarshal([]byte(s), &m); err != nil || m.Entries == nil {
			t.Fatalf("fast path accepted %q, encoding/json membership: %v", s, err)
		}
		if !reflect.DeepEqual(row, want) || !reflect.DeepEqual(members, *m.Entries) {
			t.Fatalf("%q: fast %+v %v, encoding/json %+v %v", s, row, members, want, *m.Entries)
		}
	})
}

func TestSegmentFastPaths(t *testing.T) {
	if _, _, ok := parseSegmentFast([]byte(fastSegment)); !ok {
		t.Fatal("the fast path does not take the shape Write produces")
	}
	for _, in := range []string{
		strings.Replace(fastSegment, `"entries"`, `"Entries"`, 1),
		strings.Replace(fastSegment, `{`, `{"entries":[],`, 1),
		strings.Replace(fastSegment, `[[1,0],[2,1]]`, `null`, 1),
		strings.Replace(fastSegment, `[[1,0],[2,1]]`, `[[1]]`, 1),
		strings.Replace(fastSegment, `[[1,0],[2,1]]`, `[[1,0.5]]`, 1),
	} {
		if _, _, ok := parseSegmentFast([]byte(in)); ok {
			t.Errorf("fast path took %s", in)
		}
	}
}
