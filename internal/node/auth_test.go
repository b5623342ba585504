package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/secretfile"
	"github.com/securelog/securelog/pkg/wire"
)

// startUpAuth runs Up with cfg (in a fresh data directory unless set) until
// the test ends.
func startUpAuth(t *testing.T, cfg UpConfig) Info {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan Info, 1)
	done := make(chan error, 1)
	go func() { done <- Up(ctx, cfg, func(i Info) { infoc <- i }) }()
	select {
	case info := <-infoc:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("up: %v", err)
			}
		})
		return info
	case err := <-done:
		cancel()
		t.Fatalf("up: %v", err)
	}
	return Info{}
}

// rpcPost sends one store RPC request over HTTP with token ("" = none)
// and returns the status and body.
func rpcPost(t *testing.T, addr, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// permissionDenied subscribes to subject on nc and reports whether the
// server refused it (a permissions violation).
func permissionDenied(t *testing.T, nc *nats.Conn, errs <-chan error, subject string) bool {
	t.Helper()
	if _, err := nc.SubscribeSync(subject); err != nil {
		return true
	}
	if err := nc.Flush(); err != nil {
		return true
	}
	select {
	case err := <-errs:
		return strings.Contains(strings.ToLower(err.Error()), "permissions violation")
	case <-time.After(10 * time.Second): // only waited out when the subscription is allowed
		return false
	}
}

// Forged writes that anonymous clients made against `up` (issue 9 item
// 3): with authentication on by default, an anonymous NATS client cannot
// connect at all (so it can neither publish events nor call the store
// RPC), an HTTP client without a token cannot insert an entry, overwrite
// a signature or delete witness records, a reader token cannot write, a
// producer cannot call mutating store RPC methods, and nobody but the
// ingester can subscribe to the RPC's request subjects to read requests
// (item 4).
func TestUpRefusesUnauthenticatedWrites(t *testing.T) {
	info := startUpAuth(t, UpConfig{NATSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", LocalWitness: true,
		Sealer: pipeline.SealerConfig{MaxEntries: 1, MaxAge: 50 * time.Millisecond},
		Signer: pipeline.SignerConfig{ScanInterval: 50 * time.Millisecond}})
	if info.AuthDir == "" {
		t.Fatal("up runs without credentials by default")
	}
	// The credentials: a 0700 directory of 0600 files.
	if st, err := os.Stat(info.AuthDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("credentials directory %s: %v, mode %v", info.AuthDir, err, st.Mode())
	}
	files, _ := filepath.Glob(filepath.Join(info.AuthDir, "*"))
	if len(files) != len(Roles)+2 {
		t.Fatalf("credentials directory holds %v, want one nkey per role and two tokens", files)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v, want 0600", f, err, st.Mode())
		}
	}

	// Anonymous NATS: refused at connect.
	if nc, err := nats.Connect(info.NATSURL, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("an anonymous NATS client connected to up")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("anonymous NATS connect: %v, want an authorization violation", err)
	}

	// A producer commits an event that gets signed (the pipeline works
	// under the permissions).
	perrs := make(chan error, 16)
	pnc, err := nats.Connect(info.NATSURL, append(mustOpts(t, info.Client(RoleProducer)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { perrs <- err }))...)
	if err != nil {
		t.Fatalf("producer connect: %v", err)
	}
	defer pnc.Close()
	pc, err := producer.New(pnc, producer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The announcement carries the local witness's receipt; subscribed
	// before publishing, so a fast signer cannot announce it before
	// anyone listens (AwaitCheckpoint reports only receipts it observed).
	announced, err := pnc.SubscribeSync(wire.SubjectFor(wire.KindCheckpoint, "default"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pnc.Flush(); err != nil {
		t.Fatal(err)
	}
	f, err := pc.Publish(ctx, "default", producer.Event{Type: "t", Severity: wire.Info, Producer: "p", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Wait(ctx)
	if err != nil {
		t.Fatalf("producer publish: %v", err)
	}
	ck, err := pc.AwaitCheckpoint(ctx, res.Seqno)
	if err != nil {
		t.Fatalf("checkpoint as producer (reads the store on the read-only subject): %v", err)
	}
	for {
		dl, _ := ctx.Deadline()
		m, err := announced.NextMsg(time.Until(dl))
		if err != nil {
			t.Fatalf("no checkpoint announcement of segment %d: %v", ck.Segment.SegmentID, err)
		}
		var cm wire.CheckpointMsg
		if err := json.Unmarshal(m.Data, &cm); err != nil {
			t.Fatalf("checkpoint announcement: %v", err)
		}
		if cm.SegmentID != ck.Segment.SegmentID {
			continue
		}
		if len(cm.Receipts) != 1 {
			t.Fatalf("checkpoint announced with %d witness receipts, want the local witness's", len(cm.Receipts))
		}
		break
	}

	// HTTP without a token, with the reader token: refused; the writer
	// token reads (positive control).
	creds, _, err := EnsureCredentials(info.DataDir, secretfileStrict)
	if err != nil {
		t.Fatal(err)
	}
	row := `{"seqno":2,"stream_id":"default","session_id":"x","boot_id":"x","ts":"2026-04-10T00:00:00.000000Z","event_type":"forged",` +
		`"severity":6,"producer":"attacker","payload_encoding":"cbor","payload":"","prev_entry_hash":"","entry_hash":""}`
	writes := map[string]string{
		"insert entry":           `{"method":"secure-log-insert","params":[` + row + `]}`,
		"overwrite signature":    `{"method":"secure-log-segment-set-signature","params":["default",1,"` + strings.Repeat("ab", 64) + `","attacker"]}`,
		"delete witness records": `{"method":"witness-log-gc","params":["default",0]}`,
	}
	for name, body := range writes {
		if code, b := rpcPost(t, info.HTTPAddr, "", body); code != http.StatusUnauthorized {
			t.Errorf("HTTP %s without a token: %d %s, want 401", name, code, b)
		}
		if code, b := rpcPost(t, info.HTTPAddr, creds.ReaderToken, body); code != http.StatusForbidden {
			t.Errorf("HTTP %s with the reader token: %d %s, want 403", name, code, b)
		}
	}
	if code, b := rpcPost(t, info.HTTPAddr, creds.WriterToken, `{"method":"secure-log-global-head","params":null}`); code != http.StatusOK || b != "1" {
		t.Errorf("HTTP read with the writer token: %d %s", code, b)
	}

	// A producer on NATS: the mutating store RPC is out of reach — the
	// request subject refuses its publish (no answer), the read-only
	// subject answers 403.
	for name, body := range writes {
		m := nats.NewMsg(wire.DefaultNATSSubject)
		m.Data = []byte(body)
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := pnc.RequestMsgWithContext(rctx, m)
		rcancel()
		if err == nil {
			t.Errorf("producer %s on %s was answered", name, wire.DefaultNATSSubject)
		}
		m = nats.NewMsg(wire.ReadSubject(wire.DefaultNATSSubject))
		m.Data = []byte(body)
		r, err := pnc.RequestMsgWithContext(ctx, m)
		if err != nil || r.Header.Get(wire.NATSStatusHeader) != "403" {
			t.Errorf("producer %s on the read-only subject: %v, want 403", name, err)
		}
	}
	// The signature and the witness records are intact: the segment
	// still verifies (read back as the operator).
	admin, err := info.Connect("check")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	st, err := RPCClient{Conn: admin}.Open(ctx, "check")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seg, ok, err := st.SegmentGet(ctx, 1)
	if err != nil || !ok || len(seg.Signature) == 0 || seg.Signer() == "attacker" {
		t.Fatalf("segment 1 after the attacks: %+v %v %v", seg, ok, err)
	}
	if head, _, _ := st.GlobalHead(ctx); head != 1 {
		t.Fatalf("global head %d after the attacks, want 1", head)
	}

	// Sniffing: no user but the ingester may subscribe to the request
	// subjects.
	for _, role := range []string{RoleProducer, RoleReader, RoleSealer, RoleSigner, RoleWitness, RoleAdmin} {
		errs := make(chan error, 16)
		nc, err := nats.Connect(info.NATSURL, append(mustOpts(t, info.Client(role)),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))...)
		if err != nil {
			t.Fatalf("%s connect: %v", role, err)
		}
		for _, subj := range []string{wire.DefaultNATSSubject, wire.ReadSubject(wire.DefaultNATSSubject), "securelog.append.default"} {
			if !permissionDenied(t, nc, errs, subj) {
				t.Errorf("%s may subscribe to %s and read its requests", role, subj)
			}
		}
		nc.Close()
	}
}

// mustOpts returns the connect options of c.
func mustOpts(t *testing.T, c NATSClient) []nats.Option {
	t.Helper()
	c.Server = nil
	opts, err := c.options("test")
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// secretfileStrict refuses readable secret files.
var secretfileStrict = secretfile.Policy{}

func TestEnsureCredentialsStable(t *testing.T) {
	dir := t.TempDir()
	a, created, err := EnsureCredentials(dir, secretfileStrict)
	if err != nil || len(created) != len(Roles)+2 {
		t.Fatalf("first start: %v, created %v", err, created)
	}
	b, created, err := EnsureCredentials(dir, secretfileStrict)
	if err != nil || len(created) != 0 {
		t.Fatalf("second start: %v, created %v", err, created)
	}
	if a.WriterToken != b.WriterToken || a.public[RoleProducer] != b.public[RoleProducer] || a.ReaderToken == a.WriterToken {
		t.Fatal("credentials change between starts, or reader and writer share a token")
	}
	// A readable credentials file is refused.
	if err := os.Chmod(NKeyFile(dir, RoleProducer), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EnsureCredentials(dir, secretfileStrict); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("readable nkey file: %v, want a refusal naming chmod 600", err)
	}
}

// TestSignerRoleServesTlogLatest (issue 14): a split `securelog signer`
// runs the C2SP checkpointer, which answers securelog.tlog.latest (and
// securelog.p.<name>.tlog.latest). With `up`'s generated credentials only
// the ingester role (where `up` runs the checkpointer) could subscribe to
// it: a signer run on its own against them failed with a permissions
// violation, and producers waiting for the checkpointed level got no
// answer.
func TestSignerRoleServesTlogLatest(t *testing.T) {
	dir := t.TempDir()
	creds, _, err := EnsureCredentials(dir, secretfileStrict)
	if err != nil {
		t.Fatal(err)
	}
	p2 := wire.MustPartition("p2")
	ns, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: t.TempDir(), NkeyUsers: creds.NkeyUsers(p2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	connect := func(role string) *nats.Conn {
		nc, err := creds.Client(role, ns).Connect("test-" + role)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	signer, prod := connect(RoleSigner), connect(RoleProducer)
	for _, p := range []wire.Partition{{}, p2} {
		subj := p.Tlog(wire.TlogLatestSubject)
		sub, err := signer.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond([]byte("note")) })
		if err != nil {
			t.Fatal(err)
		}
		if err := signer.Flush(); err != nil {
			t.Fatal(err)
		}
		m, err := prod.Request(subj, nil, 5*time.Second)
		if err != nil || string(m.Data) != "note" {
			t.Errorf("a producer's request on %s, answered by a signer: %v", subj, err)
		}
		_ = sub.Unsubscribe()
	}
}
