package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/pipeline"
)

// Split workers start in any order (systemd starts them together): a
// sealer or signer whose store RPC has no responder yet waits for the
// ingester, saying so, instead of exiting. Found when the deployment test
// started the signer on a freshly formed cluster whose routes had not yet
// carried the ingester's RPC subscription to the signer's server: "store
// RPC: transport-nats: securelog.rpc: nats: no responders available for
// request".
func TestSplitWorkersWaitForTheirStore(t *testing.T) {
	url := startNATS(t)
	dir := t.TempDir()
	info, err := PrepareData(filepath.Join(dir, "data"), "securelog")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var wlog lockedBuffer
	logger := slog.New(slog.NewTextHandler(&wlog, nil))
	sealer, signer := make(chan error, 1), make(chan error, 1)
	go func() {
		sealer <- RunSealer(ctx, SealerConfig{NATS: NATSClient{URL: url}, Logger: logger,
			Worker: pipeline.SealerConfig{MaxAge: 200 * time.Millisecond}})
	}()
	go func() {
		signer <- RunSigner(ctx, SignerConfig{NATS: NATSClient{URL: url}, Keystore: KeystoreConfig{Dir: info.KeysDir},
			Identity: "securelog", TrustFile: info.TrustFile, HeadFile: filepath.Join(dir, "signer.heads.json"), KEKFile: info.KEKFile,
			Tlog: TlogConfig{Off: true}, Logger: logger})
	}()

	// No ingester yet: both wait.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case err := <-sealer:
			t.Fatalf("the sealer exited before its ingester started: %v", err)
		case err := <-signer:
			t.Fatalf("the signer exited before its ingester started: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if n := strings.Count(wlog.String(), "waiting for the store RPC"); n < 2 {
		t.Errorf("%d workers said they wait for the store RPC, want 2:\n%s", n, wlog.String())
	}

	idone := make(chan error, 1)
	go func() {
		idone <- RunIngester(ctx, IngesterConfig{NATS: NATSClient{URL: url}, Store: StoreConfig{Spec: info.StoreSpec},
			HeadFile: info.HeadFile, KEKFile: info.KEKFile, TrustFile: info.TrustFile, Tlog: TlogConfig{Off: true}, Logger: quietLogger()})
	}()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	checkpoints, err := nc.SubscribeSync("securelog.checkpoint.s")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	pctx, pcancel := context.WithTimeout(ctx, 60*time.Second)
	defer pcancel()
	for i := 0; i < 3; i++ {
		body := fmt.Sprintf(`{"type":"t","severity":"info","producer":"p","payload":"e%d"}`, i)
		for {
			// The stream exists once the ingester has started.
			if _, err := js.Publish(pctx, "securelog.in.s", []byte(body)); err == nil {
				break
			} else if pctx.Err() != nil {
				t.Fatalf("publish: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if _, err := checkpoints.NextMsg(60 * time.Second); err != nil {
		t.Fatalf("no checkpoint after the ingester started: %v\n%s", err, wlog.String())
	}
	cancel()
	for name, c := range map[string]chan error{"sealer": sealer, "signer": signer, "ingester": idone} {
		if err := <-c; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
