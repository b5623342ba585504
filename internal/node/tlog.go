package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	sumtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
	"github.com/securelog/securelog/pkg/wire"
)

// TlogConfig configures the transparency view of the log (package tlog):
// the RFC 6962 tree over every entry, committed with the entries by the
// ingester, its C2SP checkpoints (signed where the signing key is: up's
// process or the signer worker), their witnessing by C2SP tlog-witnesses
// and the tlog-tiles read API.
type TlogConfig struct {
	// Off disables the tree (to compare its cost); no tiles, no
	// checkpoints. Switching it on later catches up with every entry.
	Off bool
	// Origin is the checkpoint origin and note key name
	// (tlog.DefaultOrigin(identity) if empty).
	Origin string
	// Interval is checkpoint_interval (tlog.DefaultCheckpointInterval).
	Interval time.Duration
	// Witnesses are the C2SP tlog-witnesses each new checkpoint is
	// submitted to (URL + cosignature vkey). up adds its local witness.
	Witnesses []tlogwitness.WitnessConfig
	// Quorum is N of the witness policy: a checkpoint is witnessed (and
	// served at /checkpoint, and entries in it reach the checkpointed
	// level) once N of the witnesses cosigned it; 0 means all of them.
	Quorum int
	// Public serves /checkpoint and /tile/ to anyone; otherwise they need
	// a reader (or writer) token when the listener has a tokens file.
	Public bool
	// StateFile (signer worker) persists the latest signed checkpoint;
	// the latest witnessed one goes to StateFile + ".witnessed". Default:
	// tlog-checkpoint.note beside the head file.
	StateFile string
}

func (c TlogConfig) origin(identity string) string {
	if c.Origin != "" {
		return c.Origin
	}
	return tlog.DefaultOrigin(identity)
}

// LatestTimeout bounds a request for the latest checkpoint to the
// checkpointer of another process.
const LatestTimeout = 2 * time.Second

// forPartition gives a partition other than the default its own origin
// (DefaultOrigin(identity)/p/<partition>) unless one is configured: each
// partition is its own log, and witnesses must never see two trees under
// one origin.
func (c TlogConfig) forPartition(identity string, p wire.Partition) TlogConfig {
	if c.Origin == "" && !p.IsDefault() {
		c.Origin = tlog.DefaultOrigin(identity) + "/p/" + p.Name()
	}
	return c
}

// tlogPart is the tree of an ingester and where its checkpoint comes from:
// the checkpointer of this process (up) or, over NATS, the signer's.
type tlogPart struct {
	tree tlog.TreeSource
	cp   atomic.Pointer[tlog.Checkpointer]
	nc   *nats.Conn
	part wire.Partition // whose tlog subjects
}

func (p *tlogPart) latest() []byte {
	if c := p.cp.Load(); c != nil {
		return c.Latest()
	}
	if p.nc == nil {
		return nil
	}
	m, err := p.nc.Request(p.part.Tlog(wire.TlogLatestSubject), nil, LatestTimeout)
	if err != nil {
		return nil
	}
	var r wire.TlogLatestReply
	if json.Unmarshal(m.Data, &r) != nil || r.Checkpoint == "" {
		return nil
	}
	return []byte(r.Checkpoint)
}

// withTiles serves GET /checkpoint and /tile/... from the tree and
// everything else with h. Unless public, the tiles need what canRead
// accepts (a reader token).
func withTiles(h http.Handler, p *tlogPart, public bool, canRead func(header string) bool) http.Handler {
	if p == nil {
		return h
	}
	tiles := tlog.NewHandler(tlog.HandlerConfig{Tree: p.tree, Checkpoint: p.latest})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/checkpoint" || strings.HasPrefix(r.URL.Path, "/tile/")) {
			if !public && canRead != nil && !canRead(r.Header.Get(wire.AuthorizationHeader)) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="securelog"`)
				http.Error(w, "unauthorized: the tiles need a reader token", http.StatusUnauthorized)
				return
			}
			tiles.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveTree answers securelog.tlog.head and securelog.tlog.tile from the
// ingester's tree, for a checkpointer in another process.
func (b *builder) serveTree(nc *nats.Conn, tree *tlog.Tree, part wire.Partition) error {
	head, err := nc.Subscribe(part.Tlog(wire.TlogHeadSubject), func(m *nats.Msg) {
		var r wire.TlogHeadReply
		size, root, err := tree.Head(b.ctx)
		if err != nil {
			r.Error = err.Error()
		} else {
			r.Size, r.Root = size, root[:]
		}
		respondJSON(m, r)
	})
	if err != nil {
		return fmt.Errorf("tlog: serve %s: %w", wire.TlogHeadSubject, err)
	}
	b.cl.add(func() { _ = head.Unsubscribe() })
	tile, err := nc.Subscribe(part.Tlog(wire.TlogTileSubject), func(m *nats.Msg) {
		var req wire.TlogTileRequest
		var r wire.TlogTileReply
		if err := json.Unmarshal(m.Data, &req); err != nil || req.L < tlog.DataLevel || req.L > 63 || req.N < 0 {
			r.Error = fmt.Sprintf("bad tile request %q", m.Data)
		} else if r.Data, r.Found, err = tree.ReadTile(b.ctx, tlog.TileID{L: req.L, N: req.N}); err != nil {
			r.Error = err.Error()
		}
		respondJSON(m, r)
	})
	if err != nil {
		return fmt.Errorf("tlog: serve %s: %w", wire.TlogTileSubject, err)
	}
	b.cl.add(func() { _ = tile.Unsubscribe() })
	return nil
}

func respondJSON(m *nats.Msg, v any) {
	if data, err := json.Marshal(v); err == nil {
		_ = m.Respond(data)
	}
}

// natsTree is the ingester's tree read over NATS (serveTree).
type natsTree struct {
	nc      *nats.Conn
	timeout time.Duration
	part    wire.Partition // whose tree
}

func (t natsTree) request(ctx context.Context, subj string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	m, err := t.nc.RequestWithContext(ctx, t.part.Tlog(subj), body)
	if err != nil {
		return fmt.Errorf("tlog: %s (is the ingester running with the tree on?): %w", subj, err)
	}
	if err := json.Unmarshal(m.Data, out); err != nil {
		return fmt.Errorf("tlog: %s reply: %w", subj, err)
	}
	return nil
}

// Head returns the ingester's committed tree size and root.
func (t natsTree) Head(ctx context.Context) (int64, sumtlog.Hash, error) {
	var r wire.TlogHeadReply
	if err := t.request(ctx, wire.TlogHeadSubject, struct{}{}, &r); err != nil {
		return 0, sumtlog.Hash{}, err
	}
	if r.Error != "" || len(r.Root) != len(sumtlog.Hash{}) {
		return 0, sumtlog.Hash{}, fmt.Errorf("tlog: tree head from the ingester: %s (root %d bytes)", r.Error, len(r.Root))
	}
	return r.Size, sumtlog.Hash(r.Root), nil
}

// Tiles reads the ingester's stored tiles.
func (t natsTree) Tiles(ctx context.Context) tlog.TileReader {
	return tlog.TileReaderFunc(func(id tlog.TileID) ([]byte, bool, error) {
		var r wire.TlogTileReply
		if err := t.request(ctx, wire.TlogTileSubject, wire.TlogTileRequest{L: id.L, N: id.N}, &r); err != nil {
			return nil, false, err
		}
		if r.Error != "" {
			return nil, false, fmt.Errorf("tlog: tile %d/%d from the ingester: %s", id.L, id.N, r.Error)
		}
		return r.Data, r.Found, nil
	})
}

// checkpointerConfig is what builds a checkpointer: its tree, where it
// keeps its checkpoints, the signing key and the witnesses.
type checkpointerConfig struct {
	tree              tlog.TreeSource
	signed, witnessed tlog.CheckpointStore
	keystore          KeystoreConfig
	identity          string
	tlog              TlogConfig
	// cp, if set, is given the checkpointer (the ingester's /checkpoint
	// in the same process).
	cp *atomic.Pointer[tlog.Checkpointer]
	// part is the partition whose log this is (its tlog subjects).
	part wire.Partition
}

// checkpointer builds the C2SP checkpointer: it signs with identity's
// ed25519 key from the keystore (software or PKCS#11), submits each
// checkpoint to the tlog-witnesses of the policy, persists the latest
// signed and witnessed checkpoints, announces each on
// tlog.CheckpointSubject and answers securelog.tlog.latest.
func (b *builder) checkpointer(cfg checkpointerConfig, nc *nats.Conn) error {
	ks, err := OpenKeystore(cfg.keystore)
	if err != nil {
		return err
	}
	b.cl.add(func() { _ = ks.Close() })
	key, err := ks.Key(b.ctx, cfg.identity, false)
	if err != nil {
		return fmt.Errorf("checkpointer: signing key %q: %w", cfg.identity, err)
	}
	origin := cfg.tlog.origin(cfg.identity)
	if key.Algorithm() != keystore.Ed25519 {
		b.log.Warn("no C2SP checkpoints: the signing key is not ed25519", "identity", cfg.identity, "algorithm", key.Algorithm())
		return nil
	}
	signer, err := tlog.NewNoteSigner(origin, key)
	if err != nil {
		return err
	}
	alert := b.alerts(nc, "checkpointer")
	cc := tlog.CheckpointerConfig{Tree: cfg.tree, Signer: signer, Origin: origin, Store: cfg.signed, Cosigned: cfg.witnessed,
		Interval: cfg.tlog.Interval, Logger: b.log,
		Publish: func(msg []byte) error { return nc.Publish(cfg.part.Tlog(tlog.CheckpointSubject), msg) },
		OnAlert: func(err error) { alert("_tlog", err) }}
	if len(cfg.tlog.Witnesses) > 0 {
		wc, err := tlogwitness.New(tlogwitness.Options{Witnesses: cfg.tlog.Witnesses, Quorum: cfg.tlog.Quorum, Logger: b.log})
		if err != nil {
			return &SettingError{Flag: "--tlog-witness", Env: "SECURELOG_TLOG_WITNESS", Msg: err.Error()}
		}
		cc.Cosign = wc.CosignFunc(tlogwitness.HashReaderProofs(tlog.TileHashes(cfg.tree.Tiles(b.ctx))))
	}
	c, err := tlog.NewCheckpointer(cc)
	if err != nil {
		return err
	}
	sub, err := nc.Subscribe(cfg.part.Tlog(wire.TlogLatestSubject), func(m *nats.Msg) {
		msg, size, policy := c.Witnessed()
		respondJSON(m, wire.TlogLatestReply{Checkpoint: string(msg), Size: size, Policy: policy})
	})
	if err != nil {
		return fmt.Errorf("checkpointer: serve %s: %w", wire.TlogLatestSubject, err)
	}
	b.cl.add(func() { _ = sub.Unsubscribe() })
	if cfg.cp != nil {
		cfg.cp.Store(c)
	}
	b.log.Info("checkpointer starting", "origin", origin, "tlog_witnesses", len(cfg.tlog.Witnesses), "quorum", cfg.tlog.Quorum)
	b.services = append(b.services, NewService("checkpointer", c.Run))
	return nil
}

// metaCheckpoints keeps the checkpoints in the store beside the tree.
func metaCheckpoints(st store.Store) (signed, witnessed tlog.CheckpointStore, err error) {
	bt, ok := st.(store.Batcher)
	if !ok {
		return nil, nil, fmt.Errorf("checkpointer: store %T cannot hold checkpoints", st)
	}
	return tlog.MetaCheckpoints{Store: bt}, tlog.MetaCheckpoints{Store: bt, Key: tlog.CosignedCheckpointKey}, nil
}

// fileCheckpoints keeps the checkpoints of a signer worker in files.
func fileCheckpoints(cfg TlogConfig, headFile string) (signed, witnessed tlog.CheckpointStore) {
	path := cfg.StateFile
	if path == "" {
		path = filepath.Join(filepath.Dir(headFile), "tlog-checkpoint.note")
	}
	return tlog.FileCheckpoints{Path: path}, tlog.FileCheckpoints{Path: path + ".witnessed"}
}

// AddVKeys sets the signed-note verifier key of every ed25519 trust entry,
// named after the log's checkpoint origin (cfg.Origin, or the default
// origin of the entry's identity).
func AddVKeys(entries []checkpoint.TrustEntry, cfg TlogConfig) error {
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
