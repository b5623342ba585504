package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/queryapi"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
)

// apiGet fetches path from the node's query API and decodes the JSON body.
func apiGet(t *testing.T, base, token, path string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, b)
		}
	}
	return resp.StatusCode
}

// TestQueryAPIOverPipeline runs the pipeline in-process (embedded
// nats-server, ingester, sealer, signer) with reader and writer tokens,
// follows a stream over Server-Sent Events while events are published,
// and queries, pages, reads the DLQ and verifies a served inclusion proof
// over HTTP.
func TestQueryAPIOverPipeline(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, []byte(`[{"token":"rd","role":"reader"},{"token":"wr","role":"writer"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	info := startLocal(t, node.UpConfig{DataDir: filepath.Join(dir, "data"), HTTPListen: "127.0.0.1:0", TokensFile: tokens})
	base := "http://" + info.HTTPAddr
	nc, err := info.Connect("query-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// Follow auth.* events before publishing.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/streams/default/follow?type=auth.*", nil)
	req.Header.Set("Authorization", "Bearer rd")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("follow: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	followed := make(chan queryapi.Entry, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e queryapi.Entry
			if json.Unmarshal([]byte(data), &e) == nil {
				followed <- e
			}
		}
		close(followed)
	}()

	types := []string{"auth.login", "db.query", "auth.logout"}
	const n = 30
	for i := range n {
		body := fmt.Sprintf(`{"type":%q,"severity":%q,"producer":"p%d","payload":"event %d"}`, types[i%3], wire.Severity(i%8), i%2, i)
		if _, err := nc.RequestMsg(natsMsg(wire.SubjectFor(wire.KindIn, "default"), body, fmt.Sprintf("q-%d", i)), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nc.RequestMsg(natsMsg(wire.SubjectFor(wire.KindIn, "default"), `{"type":"x","severity":"loud","producer":"p"}`, "q-bad"), 5*time.Second); err != nil {
		t.Fatal(err)
	}

	// Follow delivers the 20 auth.* entries, in seqno order.
	var last uint64
	deadline := time.After(60 * time.Second)
	for got := 0; got < 20; got++ {
		select {
		case e, ok := <-followed:
			if !ok {
				t.Fatalf("follow ended after %d entries", got)
			}
			if !strings.HasPrefix(e.EventType, "auth.") || e.Seqno <= last {
				t.Fatalf("followed entry %+v after seqno %d", e, last)
			}
			last = e.Seqno
		case <-deadline:
			t.Fatalf("follow delivered %d of 20 entries in 60s", got)
		}
	}

	// Query: filters and paging.
	var all queryapi.Page
	if code := apiGet(t, base, "rd", "/v1/streams/default/entries?order=oldest&limit=1000", &all); code != 200 || len(all.Entries) != n {
		t.Fatalf("all entries: %d, %d entries", code, len(all.Entries))
	}
	var walked int
	path := "/v1/streams/default/entries?type=auth.*&limit=6"
	for page := 0; page < 10; page++ {
		var p queryapi.Page
		if code := apiGet(t, base, "rd", path, &p); code != 200 {
			t.Fatalf("page %d: %d", page, code)
		}
		walked += len(p.Entries)
		if p.Next == nil {
			break
		}
		path = "/v1/streams/default/entries?type=auth.*&limit=6&after=" + url.QueryEscape(*p.Next)
	}
	if walked != 20 {
		t.Errorf("paged auth.* entries: %d, want 20", walked)
	}
	var sev queryapi.Page
	apiGet(t, base, "rd", "/v1/streams/default/entries?severity=error&producer=p0", &sev)
	for _, e := range sev.Entries {
		if s, _ := wire.ParseSeverity(e.Severity); s > wire.Error || e.Producer != "p0" {
			t.Errorf("severity/producer filter let through %+v", e)
		}
	}
	if len(sev.Entries) == 0 {
		t.Error("severity filter found nothing")
	}

	// Streams, DLQ, auth.
	var streams queryapi.Streams
	if code := apiGet(t, base, "rd", "/v1/streams", &streams); code != 200 || len(streams.Streams) == 0 || streams.Streams[0].Entries != n {
		t.Errorf("streams: %d %+v", code, streams)
	}
	var dlq queryapi.DLQ
	checkFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if code := apiGet(t, base, "rd", "/v1/dlq", &dlq); code != 200 || len(dlq.Entries) != 1 {
			return fmt.Errorf("dlq: %d %+v", code, dlq)
		}
		return nil
	})
	if !strings.Contains(dlq.Entries[0].Reason, "loud") || dlq.Entries[0].Stream != "default" {
		t.Errorf("dlq entry %+v", dlq.Entries[0])
	}
	var denied queryapi.ErrorBody
	if code := apiGet(t, base, "", "/v1/streams", &denied); code != 401 {
		t.Errorf("no token: %d %+v", code, denied)
	}
	if code := apiGet(t, base, "rd", "/v1/streams/nope/entries", &denied); code != 404 {
		t.Errorf("unknown stream: %d %+v", code, denied)
	}

	// Seal the segment; the entry then comes with a proof that verifies.
	rep, err := nc.Request(wire.SubjectFor(wire.KindClose, "default"), []byte(`{}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var cr wire.CloseReply
	if err := json.Unmarshal(rep.Data, &cr); err != nil || (cr.Segment == nil && cr.Code != "empty-segment") {
		t.Fatalf("close: %s %v", rep.Data, err)
	}
	var d queryapi.EntryDetail
	checkFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if code := apiGet(t, base, "rd", fmt.Sprintf("/v1/entries/%d", all.Entries[3].Seqno), &d); code != 200 || d.Proof == nil || d.Segment == nil {
			return fmt.Errorf("entry: %d, proof %v", code, d.Proof != nil)
		}
		return nil
	})
	if err := securelog.VerifyInclusionProof(*d.Proof, d.Segment.MerkleRoot); err != nil {
		t.Errorf("served proof: %v", err)
	}

	// The signer signs the segment: the stream shows its checkpoint hash,
	// and a current witness cosignature names the same hash.
	checkFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		var ss queryapi.Streams
		apiGet(t, base, "rd", "/v1/streams", &ss)
		s := ss.Streams[0]
		if s.LastSigned == nil || s.LastCheckpointHash == nil {
			return fmt.Errorf("no signed segment yet: %+v", s)
		}
		if s.WitnessStatus == "current" && s.Witness.CheckpointHash != *s.LastCheckpointHash {
			t.Fatalf("witness cosigned %s, the last checkpoint is %s", s.Witness.CheckpointHash, *s.LastCheckpointHash)
		}
		return nil
	})
}
