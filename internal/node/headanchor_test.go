package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
)

// up --reset-head-from-witness local reads its local witness's heads from
// DATA/witness/store before the witness runs, only when the head file is
// missing; other commands refuse "local" naming the setting.
func TestLocalWitnessHeads(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	headFile := filepath.Join(data, "store.heads.json")
	if heads, err := localWitnessHeads(ctx, data, headFile); err != nil || heads == nil || len(heads) != 0 {
		t.Fatalf("no witness store: %v %v", heads, err)
	}
	st, err := OpenStore(ctx, StoreConfig{Spec: "pebble:" + filepath.Join(data, "witness", "store"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.Repeat("ab", 32)
	for i, id := range []uint64{3, 7} {
		row := wire.WitnessRow{StreamID: "ledger", SegmentID: id, SeqStart: uint64(i*10 + 1), SeqEnd: uint64(i*10 + 10), CheckpointHashHex: hash,
			SignatureHex: "0102", SignerIdentity: "securelog", ReceivedAt: "2026-11-30T00:00:00Z"}
		if _, err := st.WitnessInsert(ctx, row); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	heads, err := localWitnessHeads(ctx, data, headFile)
	if err != nil || len(heads) != 1 || heads["ledger"].SegmentID != 7 {
		t.Fatalf("local heads %+v %v", heads, err)
	}
	var opts securelog.Options
	if err := (HeadAnchor{WitnessURL: LocalWitness, heads: heads}).Apply(&opts); err != nil {
		t.Fatal(err)
	}
	h, ok, err := opts.WitnessHead(ctx, "ledger")
	if err != nil || !ok || h.SegmentID != 7 || h.SeqEnd != 20 || h.SignerIdentity != "securelog" || len(h.Signature) != 2 {
		t.Fatalf("head %+v %v %v", h, ok, err)
	}
	if _, ok, err := opts.WitnessHead(ctx, "other"); ok || err != nil {
		t.Fatalf("a stream the witness never saw: %v %v", ok, err)
	}
	// With the head file present there is nothing to re-establish.
	if err := os.WriteFile(headFile, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if heads, err := localWitnessHeads(ctx, data, headFile); heads != nil || err != nil {
		t.Fatalf("head file present: %v %v", heads, err)
	}
	// "local" outside up, and a URL that is not http(s), name the setting.
	for _, u := range []string{LocalWitness, "nats:securelog.witness.submit"} {
		err := (HeadAnchor{WitnessURL: u}).Apply(&securelog.Options{})
		if err == nil || !strings.Contains(err.Error(), FlagResetHeadFromWitness) || !strings.Contains(err.Error(), EnvResetHeadFromWitness) {
			t.Errorf("%q: %v", u, err)
		}
	}
}
