package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

const segmentColumns = `segment_id, stream_id, seq_start, seq_end, merkle_root, last_entry_hash,
	prev_checkpoint_hash, closed_at, signature, signer_identity`

// SegmentInsert checks the segment against its stream (store.CheckSegment),
// assigns a new segment id and stores the row and its membership records,
// all in one transaction. On a file database the transaction holds SQLite's
// write lock from its start (BEGIN IMMEDIATE), so the check and the insert
// are atomic across processes.
func (s *Store) SegmentInsert(ctx context.Context, row wire.SegmentRow, entries []wire.SegmentEntry) (uint64, error) {
	return s.SegmentInsertTree(ctx, row, entries, nil)
}

// SegmentInsertTree is SegmentInsert that also stores the segment's Merkle
// tree chunks in the same transaction (store.SegmentTreeStore).
func (s *Store) SegmentInsertTree(ctx context.Context, row wire.SegmentRow, entries []wire.SegmentEntry, chunks []store.TreeChunk) (uint64, error) {
	seqStart, err := toInt64("seq_start", row.SeqStart)
	if err != nil {
		return 0, err
	}
	seqEnd, err := toInt64("seq_end", row.SeqEnd)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		tail, err := streamTail(ctx, tx, row.StreamID)
		if err != nil {
			return err
		}
		if err := store.CheckSegment(row, entries, tail); err != nil {
			return err
		}
		if id, err = segmentIDFor(ctx, tx, row.StreamID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO secure_log_segments (segment_id, stream_id, seq_start, seq_end, merkle_root,
			last_entry_hash, prev_checkpoint_hash, closed_at, signature, signer_identity) VALUES (?,?,?,?,?,?,?,?,?,?)`,
			id, row.StreamID, seqStart, seqEnd, nonNil(row.MerkleRoot), nonNil(row.LastEntryHash),
			nonNil(row.PrevCheckpointHash), row.ClosedAt, row.Signature, row.SignerIdentity); err != nil {
			return fmt.Errorf("sqlite store: insert segment %d of %s: %w", id, row.StreamID, err)
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO secure_log_segment_entries (segment_id, seqno, leaf_index) VALUES (?,?,?)`)
		if err != nil {
			return fmt.Errorf("sqlite store: insert segment %d entries: %w", id, err)
		}
		defer func() { _ = stmt.Close() }()
		for _, e := range entries {
			seqno, err := toInt64("segment entry seqno", e.Seqno)
			if err != nil {
				return err
			}
			leaf, err := toInt64("segment entry leaf_index", e.LeafIndex)
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, id, seqno, leaf); err != nil {
				return fmt.Errorf("sqlite store: insert segment %d entry (seqno %d, leaf %d): %w", id, e.Seqno, e.LeafIndex, err)
			}
		}
		for _, c := range chunks {
			chunk, err := toInt64("tree chunk", c.Chunk)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO _secure_log_segment_tree (segment_id, level, chunk, nodes) VALUES (?,?,?,?)`,
				id, c.Level, chunk, nonNil(c.Nodes)); err != nil {
				return fmt.Errorf("sqlite store: insert segment %d tree chunk %d/%d: %w", id, c.Level, c.Chunk, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return fromInt64("segment_id", id)
}

// segmentIDFor returns the id of the stream's new segment inside the
// transaction: its reservation, which ends here, or the next id above every
// stored and reserved one (store.SegmentReserver).
func segmentIDFor(ctx context.Context, tx *sql.Tx, stream string) (int64, error) {
	var reserved sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT segment_id FROM _secure_log_segment_reservations WHERE stream_id = ?`, stream).Scan(&reserved)
	switch {
	case err == nil:
		if _, err := tx.ExecContext(ctx, `DELETE FROM _secure_log_segment_reservations WHERE stream_id = ?`, stream); err != nil {
			return 0, fmt.Errorf("sqlite store: end reservation of %s: %w", stream, err)
		}
		return reserved.Int64, nil
	case !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("sqlite store: reservation of %s: %w", stream, err)
	}
	return nextSegmentID(ctx, tx)
}

// nextSegmentID returns one above every segment id ever stored (AUTOINCREMENT
// never reuses one) or reserved.
func nextSegmentID(ctx context.Context, tx *sql.Tx) (int64, error) {
	var maxID sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(id) FROM (
			SELECT seq AS id FROM sqlite_sequence WHERE name = 'secure_log_segments'
			UNION ALL SELECT MAX(segment_id) FROM secure_log_segments
			UNION ALL SELECT MAX(segment_id) FROM _secure_log_segment_reservations)`).Scan(&maxID); err != nil {
		return 0, fmt.Errorf("sqlite store: next segment id: %w", err)
	}
	if maxID.Int64 == math.MaxInt64 {
		return 0, errors.New("sqlite store: segment ids exhausted")
	}
	return maxID.Int64 + 1, nil
}

// SegmentReserve returns the stream's reserved segment id, reserving the
// next id if it holds none, in one write transaction (atomic across
// processes sharing the database file; store.SegmentReserver).
func (s *Store) SegmentReserve(ctx context.Context, stream string) (uint64, error) {
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT segment_id FROM _secure_log_segment_reservations WHERE stream_id = ?`, stream).Scan(&id)
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if id, err = nextSegmentID(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO _secure_log_segment_reservations (stream_id, segment_id) VALUES (?,?)`, stream, id); err != nil {
			return fmt.Errorf("sqlite store: reserve segment %d for %s: %w", id, stream, err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite store: reserve segment for %s: %w", stream, err)
	}
	return fromInt64("segment_id", id)
}

// SegmentReservation returns the stream's reserved segment id, if any.
func (s *Store) SegmentReservation(ctx context.Context, stream string) (uint64, bool, error) {
	db, release, err := s.handle()
	if err != nil {
		return 0, false, err
	}
	defer release()
	var id int64
	err = db.QueryRowContext(ctx, `SELECT segment_id FROM _secure_log_segment_reservations WHERE stream_id = ?`, stream).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("sqlite store: reservation of %s: %w", stream, err)
	}
	v, err := fromInt64("segment_id", id)
	return v, err == nil, err
}

// streamTail reads the stream's last sealed seqno and first unsealed entry
// inside the transaction.
func streamTail(ctx context.Context, tx *sql.Tx, stream string) (store.StreamTail, error) {
	var t store.StreamTail
	var last, first sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(seq_end) FROM secure_log_segments WHERE stream_id = ?`, stream).Scan(&last); err != nil {
		return t, fmt.Errorf("sqlite store: last sealed seqno of %s: %w", stream, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT MIN(seqno) FROM secure_log WHERE stream_id = ? AND seqno > ?`,
		stream, last.Int64).Scan(&first); err != nil {
		return t, fmt.Errorf("sqlite store: first unsealed seqno of %s: %w", stream, err)
	}
	var err error
	if last.Valid {
		if t.LastSealed, err = fromInt64("seq_end", last.Int64); err != nil {
			return t, err
		}
		t.HasSealed = true
	}
	if first.Valid {
		if t.FirstUnsealed, err = fromInt64("seqno", first.Int64); err != nil {
			return t, err
		}
		t.HasUnsealed = true
	}
	return t, nil
}

// SegmentLeaf returns the segment, leaf index and tree size of seqno when
// its segment's tree was stored: the membership record gives the leaf index,
// the last level-0 chunk the tree size.
func (s *Store) SegmentLeaf(ctx context.Context, seqno uint64) (store.SegmentLeaf, bool, error) {
	key, ok := clampKey(seqno)
	if !ok {
		return store.SegmentLeaf{}, false, nil
	}
	db, release, err := s.handle()
	if err != nil {
		return store.SegmentLeaf{}, false, err
	}
	defer release()
	var id, leaf, chunk, n int64
	err = db.QueryRowContext(ctx, `SELECT e.segment_id, e.leaf_index, t.chunk, length(t.nodes)
		FROM secure_log_segment_entries e JOIN _secure_log_segment_tree t ON t.segment_id = e.segment_id AND t.level = 0
		WHERE e.seqno = ? ORDER BY e.segment_id, t.chunk DESC LIMIT 1`, key).Scan(&id, &leaf, &chunk, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return store.SegmentLeaf{}, false, nil
	}
	if err != nil {
		return store.SegmentLeaf{}, false, fmt.Errorf("sqlite store: leaf of seqno %d: %w", seqno, err)
	}
	if id < 0 || leaf < 0 || chunk < 0 {
		return store.SegmentLeaf{}, false, fmt.Errorf("sqlite store: leaf of seqno %d: negative stored value", seqno)
	}
	size := uint64(chunk)*store.TreeChunkNodes + uint64(n)/wire.HashLen
	return store.SegmentLeaf{SegmentID: uint64(id), Index: uint64(leaf), Size: size}, true, nil
}

// SegmentTreeChunk returns one stored chunk of a segment's Merkle tree.
func (s *Store) SegmentTreeChunk(ctx context.Context, id uint64, level int, chunk uint64) ([]byte, bool, error) {
	idKey, ok1 := clampKey(id)
	chunkKey, ok2 := clampKey(chunk)
	if !ok1 || !ok2 {
		return nil, false, nil
	}
	db, release, err := s.handle()
	if err != nil {
		return nil, false, err
	}
	defer release()
	var b []byte
	err = db.QueryRowContext(ctx, `SELECT nodes FROM _secure_log_segment_tree WHERE segment_id = ? AND level = ? AND chunk = ?`,
		idKey, level, chunkKey).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("sqlite store: tree chunk %d/%d of segment %d: %w", level, chunk, id, err)
	}
	return nonNil(b), true, nil
}

// SegmentTreeNodes returns nodes of a segment's stored tree in one query
// that reads only each node's 32 bytes of its chunk.
func (s *Store) SegmentTreeNodes(ctx context.Context, id uint64, nodes []store.TreeNode) ([][]byte, error) {
	out := make([][]byte, len(nodes))
	idKey, ok := clampKey(id)
	if !ok || len(nodes) == 0 {
		return out, nil
	}
	var q strings.Builder
	q.WriteString(`WITH want(i, level, chunk, off) AS (VALUES `)
	args := make([]any, 0, 4*len(nodes)+1)
	for i, n := range nodes {
		chunk, ok := clampKey(n.Index / store.TreeChunkNodes)
		if !ok {
			continue
		}
		if len(args) > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?)")
		args = append(args, i, n.Level, chunk, int64(n.Index%store.TreeChunkNodes)*wire.HashLen+1)
	}
	if len(args) == 0 {
		return out, nil
	}
	q.WriteString(`) SELECT want.i, substr(t.nodes, want.off, 32) FROM want JOIN _secure_log_segment_tree t
		ON t.segment_id = ? AND t.level = want.level AND t.chunk = want.chunk`)
	args = append(args, idKey)
	db, release, err := s.handle()
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: tree nodes of segment %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int
		var b []byte
		if err := rows.Scan(&i, &b); err != nil {
			return nil, fmt.Errorf("sqlite store: tree nodes of segment %d: %w", id, err)
		}
		if i >= 0 && i < len(out) && len(b) == wire.HashLen {
			out[i] = b
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: tree nodes of segment %d: %w", id, err)
	}
	return out, nil
}

// SegmentGet returns a segment by id.
func (s *Store) SegmentGet(ctx context.Context, id uint64) (wire.SegmentRow, bool, error) {
	key, ok := clampKey(id)
	if !ok {
		return wire.SegmentRow{}, false, nil
	}
	rows, err := s.querySegments(ctx, fmt.Sprintf("get segment %d", id),
		`SELECT `+segmentColumns+` FROM secure_log_segments WHERE segment_id = ?`, key)
	if err != nil || len(rows) == 0 {
		return wire.SegmentRow{}, false, err
	}
	return rows[0], true, nil
}

// SegmentsList returns the stream's segments by ascending id.
func (s *Store) SegmentsList(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	return s.querySegments(ctx, "list segments of "+stream,
		`SELECT `+segmentColumns+` FROM secure_log_segments WHERE stream_id = ? ORDER BY segment_id`, stream)
}

// SegmentLastSeqno returns the highest seq_end over the stream's segments.
func (s *Store) SegmentLastSeqno(ctx context.Context, stream string) (uint64, bool, error) {
	return s.maxQuery(ctx, "last segment seqno of "+stream,
		`SELECT MAX(seq_end) FROM secure_log_segments WHERE stream_id = ?`, stream)
}

// SegmentEntrySeqnos returns the segment's member seqnos ordered by leaf
// index; an unknown segment has none.
func (s *Store) SegmentEntrySeqnos(ctx context.Context, id uint64) ([]uint64, error) {
	out := []uint64{}
	key, ok := clampKey(id)
	if !ok {
		return out, nil
	}
	db, release, err := s.handle()
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := db.QueryContext(ctx, `SELECT seqno FROM secure_log_segment_entries WHERE segment_id = ? ORDER BY leaf_index`, key)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: entries of segment %d: %w", id, err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlite store: entries of segment %d: %w", id, err)
		}
		u, err := fromInt64("segment entry seqno", v)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: entries of segment %d: %w", id, err)
	}
	return out, nil
}

// SegmentForSeqno returns the id of a segment containing the seqno (the
// lowest id if several do).
func (s *Store) SegmentForSeqno(ctx context.Context, seqno uint64) (uint64, bool, error) {
	key, ok := clampKey(seqno)
	if !ok {
		return 0, false, nil
	}
	return s.maxQuery(ctx, fmt.Sprintf("segment for seqno %d", seqno),
		`SELECT MIN(segment_id) FROM secure_log_segment_entries WHERE seqno = ?`, key)
}

// SegmentSetSignature overwrites the segment's signature and signer.
func (s *Store) SegmentSetSignature(ctx context.Context, id uint64, sig []byte, signer string) error {
	key, ok := clampKey(id)
	if !ok {
		return &store.SegmentNotFoundError{SegmentID: id}
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE secure_log_segments SET signature = ?, signer_identity = ? WHERE segment_id = ?`,
			nonNil(sig), signer, key)
		if err != nil {
			return fmt.Errorf("sqlite store: set signature of segment %d: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite store: set signature of segment %d: %w", id, err)
		} else if n == 0 {
			return &store.SegmentNotFoundError{SegmentID: id}
		}
		return nil
	})
}

func (s *Store) querySegments(ctx context.Context, what, query string, args ...any) ([]wire.SegmentRow, error) {
	db, release, err := s.handle()
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	defer func() { _ = rows.Close() }()
	out := []wire.SegmentRow{}
	for rows.Next() {
		var (
			r                    wire.SegmentRow
			id, seqStart, seqEnd int64
			sig                  any
			signer               sql.NullString
		)
		err := rows.Scan(&id, &r.StreamID, &seqStart, &seqEnd, &r.MerkleRoot, &r.LastEntryHash,
			&r.PrevCheckpointHash, &r.ClosedAt, &sig, &signer)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
		}
		if r.SegmentID, err = fromInt64("segment_id", id); err != nil {
			return nil, err
		}
		if r.SeqStart, err = fromInt64("seq_start", seqStart); err != nil {
			return nil, err
		}
		if r.SeqEnd, err = fromInt64("seq_end", seqEnd); err != nil {
			return nil, err
		}
		switch v := sig.(type) {
		case nil:
		case []byte:
			r.Signature = append([]byte{}, v...)
		default:
			return nil, errors.New("sqlite store: " + what + fmt.Sprintf(": segment %d signature has type %T, want blob", id, sig))
		}
		if signer.Valid {
			r.SignerIdentity = &signer.String
		}
		r.MerkleRoot, r.LastEntryHash, r.PrevCheckpointHash = nonNil(r.MerkleRoot), nonNil(r.LastEntryHash), nonNil(r.PrevCheckpointHash)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	return out, nil
}
