package node

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

// /healthz and /metrics say which partition answered (issue 14 item 5).
func TestHTTPNamesPartition(t *testing.T) {
	p := wire.MustPartition("p2")
	h := withPartitionHeader(HTTPHandler(http.NotFoundHandler(), func() error { return nil }, partitionInfo(p)), p)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || rec.Header().Get(PartitionHeader) != "p2" {
		t.Fatalf("healthz: %d, partition header %q", rec.Code, rec.Header().Get(PartitionHeader))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `securelog_partition_info{partition="p2"} 1`) {
		t.Fatalf("metrics lack the partition:\n%s", rec.Body.String())
	}
	if n := testutil.CollectAndCount(partitionInfo(wire.Partition{}), "securelog_partition_info"); n != 1 {
		t.Fatalf("default partition info: %d series", n)
	}
}

// up serving a partition other than the default is authenticated by
// default like any other: its roles' permissions cover the partition's
// subjects and JetStream names (SECURELOG_IN_P, the sealer's and signer's
// durable consumers on SECURELOG_APPENDED_P / SECURELOG_SEALED_P), so an
// event is committed, sealed and signed; nobody but the ingester may
// subscribe to the partition's request subjects.
func TestUpPartitionAuthenticated(t *testing.T) {
	info := startUpAuth(t, UpConfig{NATSListen: "127.0.0.1:0", Partition: "p2",
		Sealer: pipeline.SealerConfig{MaxEntries: 1, MaxAge: 50 * time.Millisecond},
		Signer: pipeline.SignerConfig{ScanInterval: 50 * time.Millisecond}})
	if info.AuthDir == "" || info.Partition != "p2" {
		t.Fatalf("up: auth dir %q, partition %q", info.AuthDir, info.Partition)
	}
	pnc, err := nats.Connect(info.NATSURL, mustOpts(t, info.Client(RoleProducer))...)
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
	// The stream is assigned to p2 (up registered it; a new stream's
	// default rule is the default partition, which has no ingester here).
	admin, err := info.Connect("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	m, err := partition.Open(ctx, js, partition.OpenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Assign(ctx, "audit", "p2"); err != nil {
		t.Fatal(err)
	}
	f, err := pc.Publish(ctx, "audit", producer.Event{Type: "t", Severity: wire.Info, Producer: "p", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Wait(ctx)
	if err != nil {
		t.Fatalf("producer publish in p2: %v", err)
	}
	if _, err := pc.AwaitCheckpointOf(ctx, "audit", res.Seqno); err != nil {
		t.Fatalf("checkpoint in p2 (sealer and signer consume p2's announcement queues): %v", err)
	}
	for _, role := range []string{RoleProducer, RoleReader, RoleSealer, RoleSigner} {
		errs := make(chan error, 16)
		nc, err := nats.Connect(info.NATSURL, append(mustOpts(t, info.Client(role)),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))...)
		if err != nil {
			t.Fatalf("%s connect: %v", role, err)
		}
		for _, subj := range []string{"securelog.p.p2.rpc", "securelog.p.p2.rpc.read", "securelog.p.p2.append.audit"} {
			if !permissionDenied(t, nc, errs, subj) {
				t.Errorf("%s may subscribe to %s and read its requests", role, subj)
			}
		}
		nc.Close()
	}
}
