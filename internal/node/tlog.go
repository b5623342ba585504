package node

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/tlog"
)

// TlogConfig configures the transparency view of the ingester's store
// (package tlog): the RFC 6962 tree over every entry, committed with the
// entries, its C2SP checkpoints and the tlog-tiles read API.
type TlogConfig struct {
	// Off disables the tree (to compare its cost); no tiles, no
	// checkpoints. Switching it on later catches up with every entry.
	Off bool
	// Origin is the checkpoint origin and note key name
	// (tlog.DefaultOrigin(identity) if empty).
	Origin string
	// Interval is checkpoint_interval (tlog.DefaultCheckpointInterval).
	Interval time.Duration
}

func (c TlogConfig) origin(identity string) string {
	if c.Origin != "" {
		return c.Origin
	}
	return tlog.DefaultOrigin(identity)
}

// tlogPart is the tree of an ingester and, once built, its checkpointer.
type tlogPart struct {
	tree *tlog.Tree
	cp   atomic.Pointer[tlog.Checkpointer]
}

func (p *tlogPart) latest() []byte {
	if c := p.cp.Load(); c != nil {
		return c.Latest()
	}
	return nil
}

// withTiles serves GET /checkpoint and /tile/... from the tree (public:
// tiles hold entry hashes only) and everything else with h.
func withTiles(h http.Handler, p *tlogPart) http.Handler {
	if p == nil {
		return h
	}
	tiles := tlog.NewHandler(tlog.HandlerConfig{Tree: p.tree, Checkpoint: p.latest})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/checkpoint" || strings.HasPrefix(r.URL.Path, "/tile/")) {
			tiles.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// checkpointer builds the C2SP checkpointer of the ingester's tree: it
// signs with identity's ed25519 key from the keystore (software or
// PKCS#11), persists the latest checkpoint in the store and announces each
// on tlog.CheckpointSubject.
func (b *builder) checkpointer(p *tlogPart, st store.Store, ksCfg KeystoreConfig, identity string, cfg TlogConfig, nc *nats.Conn) error {
	bt, ok := st.(store.Batcher)
	if !ok {
		return fmt.Errorf("checkpointer: store %T cannot hold checkpoints", st)
	}
	ks, err := OpenKeystore(ksCfg)
	if err != nil {
		return err
	}
	b.cl.add(func() { _ = ks.Close() })
	key, err := ks.Key(b.ctx, identity, false)
	if err != nil {
		return fmt.Errorf("checkpointer: signing key %q: %w", identity, err)
	}
	origin := cfg.origin(identity)
	if key.Algorithm() != keystore.Ed25519 {
		b.log.Warn("no C2SP checkpoints: the signing key is not ed25519", "identity", identity, "algorithm", key.Algorithm())
		return nil
	}
	signer, err := tlog.NewNoteSigner(origin, key)
	if err != nil {
		return err
	}
	alert := b.alerts(nc, "checkpointer")
	c, err := tlog.NewCheckpointer(tlog.CheckpointerConfig{Tree: p.tree, Signer: signer, Origin: origin,
		Store: tlog.MetaCheckpoints{Store: bt}, Cosigned: tlog.MetaCheckpoints{Store: bt, Key: tlog.CosignedCheckpointKey},
		Interval: cfg.Interval, Logger: b.log,
		Publish: func(msg []byte) error { return nc.Publish(tlog.CheckpointSubject, msg) },
		OnAlert: func(err error) { alert("_tlog", err) }})
	if err != nil {
		return err
	}
	p.cp.Store(c)
	b.services = append(b.services, NewService("checkpointer", c.Run))
	return nil
}

// addVKeys sets the signed-note verifier key of every ed25519 trust entry,
// named after the log's checkpoint origin.
func addVKeys(entries []checkpoint.TrustEntry, cfg TlogConfig) error {
	for i, e := range entries {
		if e.Algorithm != keystore.Ed25519 {
			continue
		}
		vkey, err := tlog.VerifierKey(cfg.origin(e.Identity), e.PublicKey)
		if err != nil {
			return fmt.Errorf("trust entry %q: %w", e.Identity, err)
		}
		entries[i].VKey = vkey
	}
	return nil
}
