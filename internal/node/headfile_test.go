package node

import (
	"path/filepath"
	"testing"

	"github.com/securelog/securelog/pkg/witness"
)

// TestUpHeadFileIsTheCLIRule: `up` keeps its head file where every other
// command looks for the head file of its store (issue 9 item 10: up wrote
// DATA/heads.json while `verify --store pebble:DATA/store` looked for
// DATA/store.heads.json, and skipped the check).
func TestUpHeadFileIsTheCLIRule(t *testing.T) {
	dir := t.TempDir()
	info, err := PrepareData(dir, "attest")
	if err != nil {
		t.Fatal(err)
	}
	want := witness.PathForStore(filepath.Join(dir, "store"))
	if info.HeadFile != want || HeadFileFor(info.StoreSpec) != want {
		t.Fatalf("up's head file %q, store %q's head file %q, want %q", info.HeadFile, info.StoreSpec, HeadFileFor(info.StoreSpec), want)
	}
}
