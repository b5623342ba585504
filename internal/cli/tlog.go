package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
	sumtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
	"github.com/securelog/securelog/pkg/wire"
)

func init() { extraCommands = append(extraCommands, (*app).consistencyCmd) }

// tlogFlags are the flags of the commands that read the transparency tree.
type tlogFlags struct {
	url       string   // tiles API prefix ("" = the local store's tiles)
	witnesses []string // witness cosignature vkeys
	quorum    int      // cosignatures required
}

func (f *tlogFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.url, "tlog-url", os.Getenv("SECURELOG_TLOG_URL"), "the log's tlog-tiles URL prefix, e.g. http://127.0.0.1:8080 (env SECURELOG_TLOG_URL; default: the tiles of a local --store)")
	c.Flags().StringSliceVar(&f.witnesses, "witness-vkey", nil, "a witness's cosignature verifier key (repeatable)")
	c.Flags().IntVar(&f.quorum, "witness-quorum", 0, "cosignatures by --witness-vkey witnesses required (default: all of them)")
}

// tlogView is where the CLI reads the tree: tiles over HTTP or a local store.
type tlogView struct {
	checkpoint func(ctx context.Context) ([]byte, error)
	tiles      sumtlog.TileReader
	leaf       func(ctx context.Context, index, size int64) ([]byte, error)
	close      func()
}

func (a *app) tlogView(ctx context.Context, f *tlogFlags) (*tlogView, error) {
	if f.url != "" {
		c, err := a.tlogClient(f.url)
		if err != nil {
			return nil, err
		}
		return &tlogView{checkpoint: c.Checkpoint, tiles: c.TileReader(ctx), leaf: c.Leaf, close: func() {}}, nil
	}
	l, closeFn, err := a.openLog(ctx, openOpts{})
	if err != nil {
		return nil, err
	}
	bt, ok := l.Store().(store.Batcher)
	if !ok {
		closeFn()
		return nil, usageErr("store %q has no transparency tree here: pass --tlog-url (the tiles API of 'securelog up --listen')", a.storeSpec)
	}
	tr := tlog.StoreTiles(ctx, bt)
	return &tlogView{
		checkpoint: func(ctx context.Context) ([]byte, error) {
			for _, key := range []string{tlog.CosignedCheckpointKey, tlog.CheckpointKey} {
				b, err := (tlog.MetaCheckpoints{Store: bt, Key: key}).Load(ctx)
				if err != nil || b != nil {
					return b, err
				}
			}
			return nil, errors.New("the store holds no checkpoint yet (is the checkpointer running?)")
		},
		tiles: storeTileReader{tr},
		leaf: func(ctx context.Context, index, size int64) ([]byte, error) {
			d, ok, err := tr.ReadTile(tlog.TileID{L: tlog.DataLevel, N: index / tlog.TileWidth})
			if err != nil {
				return nil, err
			}
			i := int(index%tlog.TileWidth) * tlog.LeafSize
			if !ok || len(d) < i+tlog.LeafSize {
				return nil, fmt.Errorf("leaf %d is not stored", index)
			}
			return d[i : i+tlog.LeafSize], nil
		},
		close: closeFn,
	}, nil
}

// storeTileReader is a tlog.TileReader (x/mod) over stored tiles.
type storeTileReader struct{ tr tlog.TileReader }

func (s storeTileReader) Height() int { return tlog.TileHeight }
func (s storeTileReader) ReadTiles(tiles []sumtlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		d, ok, err := s.tr.ReadTile(tlog.TileID{L: t.L, N: t.N})
		if err != nil {
			return nil, err
		}
		if !ok || len(d) < t.W*sumtlog.HashSize {
			return nil, fmt.Errorf("tile %d/%d of width %d is not stored", t.L, t.N, t.W)
		}
		out[i] = d[:t.W*sumtlog.HashSize]
	}
	return out, nil
}
func (s storeTileReader) SaveTiles([]sumtlog.Tile, [][]byte) {}

// noteVerifiers returns the log vkeys of the trust file and the witness
// vkeys of the flags.
func (a *app) noteVerifiers(f *tlogFlags) (note.Verifiers, []string, error) {
	if a.trustFile == "" {
		return nil, nil, usageErr("no trust file: pass --trust trust.json (with the log's vkey, from 'securelog keys export')")
	}
	t, err := checkpoint.LoadTrustFile(a.trustFile)
	if err != nil {
		return nil, nil, err
	}
	var vs []note.Verifier
	for _, e := range t.Entries() {
		if e.VKey == "" {
			continue
		}
		v, err := note.NewVerifier(e.VKey)
		if err != nil {
			return nil, nil, fmt.Errorf("trust file %s: identity %q: vkey %q: %w", a.trustFile, e.Identity, e.VKey, err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, nil, usageErr("trust file %s has no vkey: re-export it with 'securelog keys export'", a.trustFile)
	}
	var names []string
	for _, w := range f.witnesses {
		v, err := tlogwitness.NewVerifier(w)
		if err != nil {
			return nil, nil, usageErr("--witness-vkey %q: %v", w, err)
		}
		vs = append(vs, v)
		names = append(names, v.Name())
	}
	return note.VerifierList(vs...), names, nil
}

// openCheckpoint verifies a checkpoint note: signed by a log vkey of the
// trust file named after its origin, and cosigned by the witness quorum.
func (a *app) openCheckpoint(msg []byte, f *tlogFlags) (tlog.Checkpoint, error) {
	vs, witnesses, err := a.noteVerifiers(f)
	if err != nil {
		return tlog.Checkpoint{}, err
	}
	text, _, err := tlog.SplitNote(msg)
	if err != nil {
		return tlog.Checkpoint{}, err
	}
	unverified, err := tlog.ParseCheckpoint(text)
	if err != nil {
		return tlog.Checkpoint{}, err
	}
	ck, n, err := tlog.OpenCheckpoint(msg, unverified.Origin, vs)
	if err != nil {
		return tlog.Checkpoint{}, err
	}
	need := f.quorum
	if need == 0 {
		need = len(witnesses)
	}
	got := 0
	for _, w := range witnesses {
		for _, s := range n.Sigs {
			if s.Name == w && w != ck.Origin {
				got++
				break
			}
		}
	}
	if got < need {
		return tlog.Checkpoint{}, fmt.Errorf("checkpoint size %d has %d valid witness cosignature(s), need %d", ck.Size, got, need)
	}
	return ck, nil
}

// proveTlog prints (or with c2sp, writes as a C2SP tlog-proof) the
// inclusion proof of seqno against the latest checkpoint.
func (a *app) proveTlog(cmd *cobra.Command, seqno uint64, f *tlogFlags, c2sp bool) error {
	ctx := cmd.Context()
	idx, err := tlog.LeafIndex(seqno)
	if err != nil {
		return usageErr("%v", err)
	}
	v, err := a.tlogView(ctx, f)
	if err != nil {
		return err
	}
	defer v.close()
	msg, err := v.checkpoint(ctx)
	if err != nil {
		return err
	}
	ck, err := a.openCheckpoint(msg, f)
	if err != nil {
		return err
	}
	if idx >= ck.Size {
		return fmt.Errorf("seqno %d is not in the latest checkpoint yet (tree size %d); retry in a second", seqno, ck.Size)
	}
	hr := sumtlog.TileHashReader(ck.Tree(), v.tiles)
	p, err := sumtlog.ProveRecord(ck.Size, idx, hr)
	if err != nil {
		return fmt.Errorf("inclusion proof of seqno %d: %w", seqno, err)
	}
	leaf, err := v.leaf(ctx, idx, ck.Size)
	if err != nil {
		return err
	}
	if err := sumtlog.CheckRecord(p, ck.Size, ck.Root, idx, sumtlog.RecordHash(leaf)); err != nil {
		return fmt.Errorf("the log's leaf %d does not prove against its checkpoint: %w", idx, err)
	}
	if c2sp {
		l, closeFn, err := a.openLog(ctx, openOpts{})
		if err != nil {
			return err
		}
		defer closeFn()
		row, err := l.Read(ctx, seqno)
		if err != nil {
			return err
		}
		enc := wire.EncodeEntry(row.Fields())
		doc := tlog.Proof{Extra: enc, Index: idx, Path: p, Checkpoint: msg}
		if _, _, _, err := tlog.VerifyEntryProof(doc, ck.Origin, mustVerifiers(a, f)); err != nil {
			return fmt.Errorf("the store's entry %d does not match the tree: %w", seqno, err)
		}
		if a.jsonOut {
			return a.printJSON(map[string]any{"seqno": seqno, "tlog_proof": string(doc.Marshal())})
		}
		_, err = a.stdout.Write(doc.Marshal())
		return err
	}
	if a.jsonOut {
		// JSON carries hashes as hex (docs/cli.md); the text and the
		// signed checkpoint use the C2SP base64.
		return a.printJSON(map[string]any{"seqno": seqno, "index": idx, "leaf": wire.Hex(leaf), "tree_size": ck.Size,
			"root": wire.Hex(ck.Root[:]), "origin": ck.Origin, "proof": hexHashes(p), "checkpoint": string(msg)})
	}
	a.printf("seqno %d is leaf %d of tree size %d (origin %s, root %s), %d proof hashes:\n", seqno, idx, ck.Size, ck.Origin, tlog.EncodeHash(ck.Root), len(p))
	for _, h := range p {
		a.printf("%s\n", tlog.EncodeHash(h))
	}
	return nil
}

func mustVerifiers(a *app, f *tlogFlags) note.Verifiers {
	vs, _, _ := a.noteVerifiers(f) // already loaded successfully by openCheckpoint
	return vs
}

func (a *app) consistencyCmd() *cobra.Command {
	var f tlogFlags
	c := &cobra.Command{
		Use:   "consistency OLD NEW",
		Short: "Print and check the RFC 6962 consistency proof between two tree sizes of the transparency log",
		Long: `Read the latest checkpoint (verified with the log's vkey from --trust and any
--witness-vkey cosignatures), the tiles it authenticates, and print the roots at
tree sizes OLD and NEW (NEW at most the checkpoint's size) and the consistency
proof between them, one base64 hash per line, after checking it.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			oldN, err1 := strconv.ParseInt(args[0], 10, 64)
			newN, err2 := strconv.ParseInt(args[1], 10, 64)
			if err1 != nil || err2 != nil || oldN < 1 || newN < oldN {
				return usageErr("want tree sizes 1 ≤ OLD ≤ NEW, got %q %q", args[0], args[1])
			}
			v, err := a.tlogView(ctx, &f)
			if err != nil {
				return err
			}
			defer v.close()
			msg, err := v.checkpoint(ctx)
			if err != nil {
				return err
			}
			ck, err := a.openCheckpoint(msg, &f)
			if err != nil {
				return err
			}
			if newN > ck.Size {
				return fmt.Errorf("NEW %d is beyond the latest checkpoint (tree size %d)", newN, ck.Size)
			}
			hr := sumtlog.TileHashReader(ck.Tree(), v.tiles)
			oldRoot, err := sumtlog.TreeHash(oldN, hr)
			if err != nil {
				return err
			}
			newRoot, err := sumtlog.TreeHash(newN, hr)
			if err != nil {
				return err
			}
			p, err := sumtlog.ProveTree(newN, oldN, hr)
			if err != nil {
				return err
			}
			if err := sumtlog.CheckTree(p, newN, newRoot, oldN, oldRoot); err != nil {
				return fmt.Errorf("consistency %d → %d: %w", oldN, newN, err)
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"old_size": oldN, "old_root": wire.Hex(oldRoot[:]), "new_size": newN,
					"new_root": wire.Hex(newRoot[:]), "proof": hexHashes(p), "checkpoint": string(msg)})
			}
			a.printf("old %d %s\nnew %d %s\n", oldN, tlog.EncodeHash(oldRoot), newN, tlog.EncodeHash(newRoot))
			for _, h := range p {
				a.printf("%s\n", tlog.EncodeHash(h))
			}
			return nil
		},
	}
	f.add(c)
	return c
}

// isC2SPProof reports whether a proof file is a C2SP tlog-proof document.
func isC2SPProof(data []byte) bool { return bytes.HasPrefix(data, []byte(tlog.ProofHeader+"\n")) }

// verifyC2SPProof checks a tlog-proof document offline with the trust
// file's log vkeys and the witness vkeys.
func (a *app) verifyC2SPProof(data []byte, f *tlogFlags) error {
	p, err := tlog.ParseProof(data)
	if err != nil {
		return err
	}
	ck, err := a.openCheckpoint(p.Checkpoint, f)
	if err != nil {
		return err
	}
	vs, _, err := a.noteVerifiers(f)
	if err != nil {
		return err
	}
	e, _, _, err := tlog.VerifyEntryProof(p, ck.Origin, vs)
	if err != nil {
		return err
	}
	if a.jsonOut {
		return a.printJSON(map[string]any{"seqno": e.Seqno, "stream": e.StreamID, "index": p.Index, "tree_size": ck.Size, "origin": ck.Origin, "ok": true})
	}
	a.printf("proof OK: seqno %d (stream %s) is leaf %d of tree size %d signed by %s\n", e.Seqno, e.StreamID, p.Index, ck.Size, ck.Origin)
	return nil
}

// vkeyCmd is `keys vkey IDENTITY`.
func (a *app) vkeyCmd() *cobra.Command {
	var origin string
	c := &cobra.Command{
		Use:   "vkey IDENTITY [--origin ORIGIN]",
		Short: "Print the signed-note verifier key (vkey) of an ed25519 key, named after the log's checkpoint origin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if origin == "" {
				origin = tlog.DefaultOrigin(args[0])
			}
			var pub []byte
			var alg string
			if kind, err := a.keystoreKind(); err != nil {
				return err
			} else if kind == keystorePKCS11 {
				es, err := a.pkcs11TrustEntries(cmd.Context(), args)
				if err != nil {
					return err
				}
				pub, alg = es[0].PublicKey, es[0].Algorithm
			} else {
				ks, err := a.keystore()
				if err != nil {
					return err
				}
				k, err := ks.GetKey(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				pub, alg = k.PublicKey(), k.Algorithm()
			}
			if alg != keystore.Ed25519 {
				return fmt.Errorf("key %q is %s: signed-note checkpoints need an ed25519 key", args[0], alg)
			}
			vkey, err := tlog.VerifierKey(origin, pub)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"identity": args[0], "origin": origin, "vkey": vkey})
			}
			a.printf("%s\n", vkey)
			return nil
		},
	}
	c.Flags().StringVar(&origin, "origin", "", "checkpoint origin (default "+tlog.DefaultOriginPrefix+"IDENTITY)")
	return c
}

// hexHashes returns tree hashes as hex strings (the CLI's JSON form).
func hexHashes(hs []sumtlog.Hash) []wire.Hex {
	out := make([]wire.Hex, len(hs))
	for i, h := range hs {
		out[i] = wire.Hex(h[:])
	}
	return out
}

// exportTlog returns the C2SP part of an exported bundle: the latest
// (witnessed) checkpoint and the tree's hashes, from the tiles API at url
// or from a local store's tree; nil when neither holds a checkpoint.
func (a *app) exportTlog(ctx context.Context, st store.Store, url string) (*bundle.Tlog, error) {
	if url != "" {
		c, err := a.tlogClient(url)
		if err != nil {
			return nil, err
		}
		msg, err := c.Checkpoint(ctx)
		if err != nil {
			return nil, fmt.Errorf("--tlog-url: %w", err)
		}
		text, _, err := tlog.SplitNote(msg)
		if err != nil {
			return nil, fmt.Errorf("--tlog-url: checkpoint: %w", err)
		}
		ck, err := tlog.ParseCheckpoint(text)
		if err != nil {
			return nil, fmt.Errorf("--tlog-url: checkpoint: %w", err)
		}
		return &bundle.Tlog{Checkpoint: msg, Hashes: sumtlog.TileHashReader(ck.Tree(), c.TileReader(ctx))}, nil
	}
	bt, ok := st.(store.Batcher)
	if !ok {
		return nil, nil // a remote store: pass --tlog-url for the checkpoint
	}
	for _, key := range []string{tlog.CosignedCheckpointKey, tlog.CheckpointKey} {
		msg, err := (tlog.MetaCheckpoints{Store: bt, Key: key}).Load(ctx)
		if err != nil {
			return nil, err
		}
		if msg != nil {
			return &bundle.Tlog{Checkpoint: msg, Hashes: tlog.TileHashes(tlog.StoreTiles(ctx, bt))}, nil
		}
	}
	return nil, nil
}
