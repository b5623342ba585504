package bundle_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/bundle/bundletest"
	"github.com/securelog/securelog/pkg/wire"
)

// firstPass is what a reader's first pass and second pass make of data:
// the error of NewReader, or the entry count, the rows and the error of
// Entries.
type firstPass struct {
	openErr, entriesErr string
	count               uint64
	rows                []wire.EntryRow
}

func readAll(data []byte, minSize int64, workers int) firstPass {
	defer bundle.SetParallelScan(minSize, workers)()
	var fp firstPass
	r, err := bundle.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		fp.openErr = err.Error()
		return fp
	}
	fp.count = r.EntryCount()
	err = r.Entries(context.Background(), r.Stream(), func(row wire.EntryRow) error {
		fp.rows = append(fp.rows, row.Clone())
		return nil
	})
	if err != nil {
		fp.entriesErr = err.Error()
	}
	return fp
}

// checkParallelFirstPass: the first pass on several cores, whatever the
// guesses of where pieces start, finds what the single-core pass finds,
// and fails with the same error.
func checkParallelFirstPass(t *testing.T, name string, data []byte) {
	t.Helper()
	want := readAll(data, math.MaxInt64, 1)
	for _, workers := range []int{2, 3, 7} {
		got := readAll(data, 0, workers)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s, %d workers: open %q entries %q count %d (%d rows); single core: open %q entries %q count %d (%d rows)",
				name, workers, got.openErr, got.entriesErr, got.count, len(got.rows), want.openErr, want.entriesErr, want.count, len(want.rows))
		}
	}
}

// TestParallelFirstPass runs the parallel first pass over a real log's
// bundle, every single-field change of it (the tamper corpus), a large
// generated bundle and inputs that trick the guesses (",{" inside
// strings, a broken entry in a later piece), and audits the tamper corpus
// both ways: same verdicts, same first failure named.
func TestParallelFirstPass(t *testing.T) {
	f := bundletest.NewFixture(t)
	data, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	checkParallelFirstPass(t, "fixture", data)
	dir := t.TempDir()
	big, _, err := bundletest.WriteFile(dir, 3000, 500)
	if err != nil {
		t.Fatal(err)
	}
	bigData, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	checkParallelFirstPass(t, "generated", bigData)
	restore := bundle.SetParallelScan(0, 3)
	r, err := bundle.NewReader(bytes.NewReader(bigData), int64(len(bigData)))
	restore()
	if err != nil || r.Joins() != 2 {
		t.Fatalf("3 pieces: %d joined (%v): the guesses were not used", r.Joins(), err)
	}
	tricky := strings.ReplaceAll(string(bigData), `"producer":"gen"`, `"producer":",{\"x\":[,{"`)
	checkParallelFirstPass(t, "commas and braces in strings", []byte(tricky))
	compact := strings.ReplaceAll(string(bigData), "\n", "")
	checkParallelFirstPass(t, "no newlines", []byte(compact))
	for _, cut := range []int{len(bigData) / 3, len(bigData) / 2, 2 * len(bigData) / 3} {
		i := cut + bytes.Index(bigData[cut:], []byte(`"seqno"`))
		broken := append(append(append([]byte(nil), bigData[:i]...), '['), bigData[i:]...)
		checkParallelFirstPass(t, fmt.Sprintf("broken at byte %d", i), broken)
		broken = append(append(append([]byte(nil), bigData[:i]...), `"x":"`...), bigData[i:]...) // an unterminated string
		checkParallelFirstPass(t, fmt.Sprintf("string opened at byte %d", i), broken)
	}
	checkParallelFirstPass(t, "truncated", bigData[:len(bigData)/2])

	base := bundletest.DecodeDoc(t, data)
	opts := bundle.AuditOptions{WitnessTrust: f.WitnessTrust, KEK: f.KEK}
	for i, m := range bundletest.Mutations(base) {
		path := filepath.Join(dir, fmt.Sprintf("m%d.json", i))
		bundletest.WriteMutated(t, data, m, path)
		mdata, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := readAll(mdata, 0, 3), readAll(mdata, math.MaxInt64, 1); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s, 3 workers: %+v\nsingle core: %+v", m.Name, got, want)
		}
		verdicts := map[string]string{}
		for _, mode := range []struct {
			name    string
			minSize int64
			workers int
		}{{"single core", math.MaxInt64, 1}, {"3 cores", 0, 3}} {
			restore := bundle.SetParallelScan(mode.minSize, mode.workers)
			_, err := auditFile(t, path, opts)
			restore()
			verdicts[mode.name] = fmt.Sprint(err)
		}
		if verdicts["single core"] != verdicts["3 cores"] || verdicts["single core"] == "<nil>" {
			t.Fatalf("%s: verdicts %q", m.Name, verdicts)
		}
	}
}

// FuzzParallelFirstPass: on any input the parallel first pass agrees with
// the single-core one.
func FuzzParallelFirstPass(f *testing.F) {
	e := func(seqno int, producer string) string {
		return strings.Replace(strings.Replace(entryJSON, `"seqno":1`, fmt.Sprintf(`"seqno":%d`, seqno), 1), `"producer":"p"`, `"producer":`+producer, 1)
	}
	f.Add(doc(e(1, `"p"`)+",\n"+e(2, `",{"`)+",\n"+e(3, `"p"`), segJSON("1", "s", `,"entries":[[1,0]]`), `,"trust":[],"witness_receipts":[]`), uint8(3))
	f.Add(doc(e(1, `"p"`)+","+e(2, `"p"`)+",{"+e(3, `"p"`), "", ""), uint8(2))
	f.Add(doc(e(1, `"{,{"`)+", {"+e(2, `"p"`), "", ""), uint8(5))
	f.Add(`{"format":"securelog-bundle/v1","entries":[{},{"a":[,{]}],"x":1}`, uint8(2))
	f.Fuzz(func(t *testing.T, s string, workers uint8) {
		data := []byte(s)
		want := readAll(data, math.MaxInt64, 1)
		got := readAll(data, 0, 2+int(workers%6))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%d workers: %+v\nsingle core: %+v", 2+workers%6, got, want)
		}
	})
}
