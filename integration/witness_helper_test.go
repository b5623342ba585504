package integration

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/witnessd"
)

// withWitness returns a node.UpConfig.Extra that runs an in-process witness
// over NATS (as `securelog up` does) and stores its trust file in *trust.
func withWitness(t *testing.T, trust **checkpoint.Trust) func(ctx context.Context, info node.Info) ([]pipeline.Witness, error) {
	return func(ctx context.Context, info node.Info) ([]pipeline.Witness, error) {
		ks, err := keystore.OpenSoftware(filepath.Join(info.DataDir, "witness-keys"))
		if err != nil {
			return nil, err
		}
		key, err := ks.GetKeyOrCreate(ctx, witnessd.DefaultIdentity, keystore.Ed25519)
		if err != nil {
			return nil, err
		}
		logTrust, err := checkpoint.LoadTrustFile(info.TrustFile)
		if err != nil {
			return nil, err
		}
		st, err := store.Open(ctx, "memory:witness")
		if err != nil {
			return nil, err
		}
		nc, err := info.ConnectAs(node.RoleWitness, "witness")
		if err != nil {
			return nil, err
		}
		srv, err := witnessd.New(witnessd.Config{Store: st, Trust: logTrust, Key: key, NATS: nc, Logger: testLogger(t)})
		if err != nil {
			return nil, err
		}
		wt, err := checkpoint.NewTrust(checkpoint.TrustEntry{Identity: witnessd.DefaultIdentity, Algorithm: key.Algorithm(), PublicKey: key.PublicKey()})
		if err != nil {
			return nil, err
		}
		*trust = wt
		listening := make(chan struct{})
		go func() {
			_ = srv.Run(ctx, witnessd.RunConfig{Listen: "127.0.0.1:0", OnListen: func(string) { close(listening) }})
			nc.Close()
			st.Close()
		}()
		<-listening
		// Submissions come from the log's side (the admin user here; the
		// witness's own user may only serve them).
		cnc, err := info.Connect("witness-client")
		if err != nil {
			return nil, err
		}
		go func() { <-ctx.Done(); cnc.Close() }()
		return []pipeline.Witness{witnessd.NewNATSClient(cnc, "")}, nil
	}
}
