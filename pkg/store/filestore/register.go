package filestore

import "github.com/securelog/securelog/pkg/store"

// init registers the backend as "file": store.Open(ctx, "file:/path/log.jsonl").
func init() {
	store.Register("file", func() store.Store { return New() })
}
