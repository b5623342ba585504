package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/tlog"
)

// export adds the store's witnessed C2SP checkpoint and inclusion proofs;
// audit checks them with the trust file's vkey and the witness's vkey
// (from up's witness trust file), and refuses a tampered checkpoint.
func TestExportAuditTlog(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan node.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- node.Up(ctx, node.UpConfig{DataDir: data, LocalWitness: true, Tlog: node.TlogConfig{Interval: 50 * time.Millisecond},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, func(i node.Info) { infoc <- i })
	}()
	var info node.Info
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatalf("up: %v", err)
	}
	nc, err := info.Connect("export-test")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	for i := 0; i < 30; i++ {
		if _, err := js.Publish(ctx, fmt.Sprintf("securelog.in.s%d", i%2), []byte(`{"type":"t","severity":"info","producer":"p","payload":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	// Wait until the stored witnessed checkpoint covers all 30 entries.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var size int64
		if m, err := info.Connect("poll"); err == nil {
			if r, err := m.Request("securelog.tlog.latest", nil, 2*time.Second); err == nil {
				var rep struct{ Size int64 }
				_ = json.Unmarshal(r.Data, &rep)
				size = rep.Size
			}
			m.Close()
		}
		if size >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("witnessed size %d after 60 s", size)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wt, err := checkpoint.LoadTrustFile(info.WitnessTrustFile)
	if err != nil {
		t.Fatal(err)
	}
	wvkey := wt.Entries()[0].VKey
	out := filepath.Join(dir, "b.json")
	mustCLI(t, "--store", info.StoreSpec, "--trust", info.TrustFile, "export", "s0", "--out", out)
	jsonOut := mustCLI(t, "--json", "--trust", info.TrustFile, "audit", out, "--allow-unsigned-tail", "--witness-vkey", wvkey)
	var res struct {
		Report struct {
			TlogSize   int64    `json:"tlog_size"`
			TlogProved uint64   `json:"tlog_entries_proved"`
			Cosigners  []string `json:"tlog_cosigners"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &res); err != nil {
		t.Fatalf("%v\n%s", err, jsonOut)
	}
	if res.Report.TlogSize < 30 || res.Report.TlogProved != 15 || len(res.Report.Cosigners) != 1 {
		t.Fatalf("report %+v\n%s", res.Report, jsonOut)
	}
	// A different root in the checkpoint text: refused.
	b, _ := os.ReadFile(out)
	var doc map[string]any
	_ = json.Unmarshal(b, &doc)
	tl := doc["tlog"].(map[string]any)
	lines := strings.SplitN(tl["checkpoint"].(string), "\n", 4)
	lines[2] = tlog.EncodeHash([32]byte{7})
	tl["checkpoint"] = strings.Join(lines, "\n")
	b, _ = json.Marshal(doc)
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, b, 0o644)
	if code, _, errs := runCLI(t, "--trust", info.TrustFile, "audit", bad, "--allow-unsigned-tail", "--witness-vkey", wvkey); code == 0 || !strings.Contains(errs, "tlog") {
		t.Fatalf("tampered checkpoint: exit %d %s", code, errs)
	}
}
