package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"math"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

const witnessColumns = `id, stream_id, segment_id, seq_start, seq_end, checkpoint_hash_hex, signature_hex,
	signer_identity, received_at`

// WitnessInsert assigns a new global id and stores the row.
func (s *Store) WitnessInsert(ctx context.Context, row wire.WitnessRow) (int64, error) {
	vals := make([]int64, 3)
	for i, f := range []struct {
		name string
		v    uint64
	}{{"witness segment_id", row.SegmentID}, {"witness seq_start", row.SeqStart}, {"witness seq_end", row.SeqEnd}} {
		v, err := toInt64(f.name, f.v)
		if err != nil {
			return 0, err
		}
		vals[i] = v
	}
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO witness_log (stream_id, segment_id, seq_start, seq_end,
			checkpoint_hash_hex, signature_hex, signer_identity, received_at) VALUES (?,?,?,?,?,?,?,?)`,
			row.StreamID, vals[0], vals[1], vals[2], row.CheckpointHashHex, row.SignatureHex, row.SignerIdentity, row.ReceivedAt)
		if err != nil {
			return fmt.Errorf("sqlite store: insert witness row of %s: %w", row.StreamID, err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("sqlite store: insert witness row of %s: %w", row.StreamID, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// WitnessLatest returns the stream's row with the highest id.
func (s *Store) WitnessLatest(ctx context.Context, stream string) (wire.WitnessRow, bool, error) {
	rows, err := s.queryWitness(ctx, "latest witness row of "+stream,
		`SELECT `+witnessColumns+` FROM witness_log WHERE stream_id = ? ORDER BY id DESC LIMIT 1`, stream)
	if err != nil || len(rows) == 0 {
		return wire.WitnessRow{}, false, err
	}
	return rows[0], true, nil
}

// WitnessList returns the stream's rows by ascending id.
func (s *Store) WitnessList(ctx context.Context, stream string) ([]wire.WitnessRow, error) {
	return s.queryWitness(ctx, "witness rows of "+stream,
		`SELECT `+witnessColumns+` FROM witness_log WHERE stream_id = ? ORDER BY id`, stream)
}

// WitnessStreamIDs returns the distinct stream ids with witness rows, ascending.
func (s *Store) WitnessStreamIDs(ctx context.Context) ([]string, error) {
	db, release, err := s.handle()
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := db.QueryContext(ctx, `SELECT DISTINCT stream_id FROM witness_log ORDER BY stream_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: witness stream ids: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlite store: witness stream ids: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: witness stream ids: %w", err)
	}
	return out, nil
}

// WitnessGC deletes witness rows by store.WitnessGCPolicy, in one
// transaction.
func (s *Store) WitnessGC(ctx context.Context, stream *string, keepLatest *uint32, olderThan *string) (uint32, error) {
	policy, err := store.NewWitnessGCPolicy(keepLatest, olderThan)
	if err != nil {
		return 0, err
	}
	if policy.DeletesNothing() {
		return 0, nil
	}
	var deleted uint32
	err = s.write(ctx, func(tx *sql.Tx) error {
		query := `SELECT id, stream_id, received_at FROM witness_log ORDER BY stream_id, id`
		var args []any
		if stream != nil {
			query = `SELECT id, stream_id, received_at FROM witness_log WHERE stream_id = ? ORDER BY id`
			args = append(args, *stream)
		}
		byStream, err := gcRows(ctx, tx, query, args)
		if err != nil {
			return err
		}
		var doomed []int64
		for _, rows := range byStream {
			doomed = append(doomed, policy.Victims(rows)...)
		}
		for _, id := range doomed {
			if _, err := tx.ExecContext(ctx, `DELETE FROM witness_log WHERE id = ?`, id); err != nil {
				return fmt.Errorf("sqlite store: witness gc: delete id %d: %w", id, err)
			}
		}
		deleted = uint32(min(len(doomed), math.MaxUint32))
		return nil
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}

// gcRows reads the (id, stream, received_at) of witness rows ordered by
// stream, then id, grouped per stream.
func gcRows(ctx context.Context, tx *sql.Tx, query string, args []any) ([][]wire.WitnessRow, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: witness gc: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out [][]wire.WitnessRow
	for rows.Next() {
		var r wire.WitnessRow
		if err := rows.Scan(&r.ID, &r.StreamID, &r.ReceivedAt); err != nil {
			return nil, fmt.Errorf("sqlite store: witness gc: %w", err)
		}
		if n := len(out); n == 0 || out[n-1][0].StreamID != r.StreamID {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: witness gc: %w", err)
	}
	return out, nil
}

func (s *Store) queryWitness(ctx context.Context, what, query string, args ...any) ([]wire.WitnessRow, error) {
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
	out := []wire.WitnessRow{}
	for rows.Next() {
		var (
			r                 wire.WitnessRow
			segID, start, end int64
		)
		err := rows.Scan(&r.ID, &r.StreamID, &segID, &start, &end, &r.CheckpointHashHex, &r.SignatureHex,
			&r.SignerIdentity, &r.ReceivedAt)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
		}
		if r.SegmentID, err = fromInt64("witness segment_id", segID); err != nil {
			return nil, err
		}
		if r.SeqStart, err = fromInt64("witness seq_start", start); err != nil {
			return nil, err
		}
		if r.SeqEnd, err = fromInt64("witness seq_end", end); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	return out, nil
}
