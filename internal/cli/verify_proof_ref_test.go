package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyProofReferenceShape reproduces issue 9 item 12 (first half): a
// reference-shaped inclusion proof — no leaf_index / tree_size (SPEC §3.7)
// — was rejected with "does not reconstruct expected root" although its
// path leads to the right root. It is accepted, and the output says that
// the check was weaker (the leaf's position and the tree size are not bound).
func TestVerifyProofReferenceShape(t *testing.T) {
	dir := t.TempDir()
	st := "pebble:" + filepath.Join(dir, "log")
	for _, p := range []string{"a", "b", "c", "d", "e"} {
		mustCLI(t, "--store", st, "append", "default", "--type", "t", "--producer", "p", "--payload", p)
	}
	mustCLI(t, "--store", st, "close-segment", "default")
	out := mustCLI(t, "--store", st, "--json", "prove", "4")
	var full map[string]any
	if err := json.Unmarshal([]byte(out), &full); err != nil {
		t.Fatalf("prove --json: %v\n%s", err, out)
	}
	root := full["merkle_root"].(string)
	if full["leaf_index"] != float64(3) || full["tree_size"] != float64(5) {
		t.Fatalf("unexpected proof %s", out)
	}
	write := func(name string, m map[string]any) string {
		b, _ := json.Marshal(m)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ref := map[string]any{}
	for k, v := range full {
		if k != "leaf_index" && k != "tree_size" && k != "entry" {
			ref[k] = v
		}
	}
	refPath := write("ref.json", ref)
	out = mustCLI(t, "verify-proof", refPath, "--root", root)
	for _, want := range []string{"proof OK", "weaker", "no leaf_index/tree_size", "leaf 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify-proof of a reference-shaped proof: %q lacks %q", out, want)
		}
	}
	// The weaker check still needs the right root.
	if code, _, errs := runCLI(t, "verify-proof", refPath, "--root", strings.Repeat("00", 32)); code == 0 || !strings.Contains(errs, "does not reconstruct") {
		t.Errorf("wrong root: exit %d %s", code, errs)
	}
	// With the entry, the leaf is still recomputed from the entry's bytes.
	ref["entry"] = full["entry"]
	out = mustCLI(t, "--json", "verify-proof", write("ref-entry.json", ref), "--root", root)
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["ok"] != true || res["position_checked"] != false || res["leaf_index_from_path"] != float64(3) {
		t.Errorf("--json: %s %v", out, err)
	}
	// A full proof still gets the strict check and says so.
	out = mustCLI(t, "--json", "verify-proof", write("full.json", full), "--root", root)
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["ok"] != true || res["position_checked"] != true {
		t.Errorf("--json full: %s %v", out, err)
	}
}
