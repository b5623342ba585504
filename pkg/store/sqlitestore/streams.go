package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

const streamColumns = `name, tier, description, created_at, deprecated_at`

// StreamUpsert inserts the stream row, or updates the existing row of that
// name in place (keeping its creation-order position).
func (s *Store) StreamUpsert(ctx context.Context, row wire.StreamRow) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO secure_log_streams (`+streamColumns+`) VALUES (?,?,?,?,?)
			ON CONFLICT(name) DO UPDATE SET tier = excluded.tier, description = excluded.description,
			created_at = excluded.created_at, deprecated_at = excluded.deprecated_at`,
			row.Name, row.Tier, row.Description, row.CreatedAt, row.DeprecatedAt)
		if err != nil {
			return fmt.Errorf("sqlite store: upsert stream %q: %w", row.Name, err)
		}
		return nil
	})
}

// StreamGet returns the stream row by name.
func (s *Store) StreamGet(ctx context.Context, name string) (wire.StreamRow, bool, error) {
	rows, err := s.queryStreams(ctx, "get stream "+name,
		`SELECT `+streamColumns+` FROM secure_log_streams WHERE name = ?`, name)
	if err != nil || len(rows) == 0 {
		return wire.StreamRow{}, false, err
	}
	return rows[0], true, nil
}

// StreamList returns all stream rows in creation order (DECISIONS 10).
func (s *Store) StreamList(ctx context.Context) ([]wire.StreamRow, error) {
	return s.queryStreams(ctx, "list streams", `SELECT `+streamColumns+` FROM secure_log_streams ORDER BY rowid`)
}

// StreamSetTier sets the tier of an existing stream.
func (s *Store) StreamSetTier(ctx context.Context, name, tier string) error {
	return s.updateStream(ctx, name, "set tier of", `UPDATE secure_log_streams SET tier = ? WHERE name = ?`, tier)
}

// StreamDeprecate sets deprecated_at of an existing stream.
func (s *Store) StreamDeprecate(ctx context.Context, name, deprecatedAt string) error {
	return s.updateStream(ctx, name, "deprecate", `UPDATE secure_log_streams SET deprecated_at = ? WHERE name = ?`, deprecatedAt)
}

func (s *Store) updateStream(ctx context.Context, name, what, query, value string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, value, name)
		if err != nil {
			return fmt.Errorf("sqlite store: %s stream %q: %w", what, name, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlite store: %s stream %q: %w", what, name, err)
		}
		if n == 0 {
			return &store.StreamNotFoundError{Name: name}
		}
		return nil
	})
}

func (s *Store) queryStreams(ctx context.Context, what, query string, args ...any) ([]wire.StreamRow, error) {
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
	out := []wire.StreamRow{}
	for rows.Next() {
		var (
			r                wire.StreamRow
			desc, deprecated sql.NullString
		)
		if err := rows.Scan(&r.Name, &r.Tier, &desc, &r.CreatedAt, &deprecated); err != nil {
			return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
		}
		if desc.Valid {
			r.Description = &desc.String
		}
		if deprecated.Valid {
			r.DeprecatedAt = &deprecated.String
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	return out, nil
}
