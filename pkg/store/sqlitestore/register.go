package sqlitestore

import "github.com/securelog/securelog/pkg/store"

// init registers the backend as "sqlite": store.Open(ctx, "sqlite:/path/log.db")
// or "sqlite::memory:".
func init() {
	store.Register("sqlite", func() store.Store { return New() })
}
