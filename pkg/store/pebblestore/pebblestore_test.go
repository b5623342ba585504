package pebblestore_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/store/storetest"
)

func quiet() pebblestore.Option {
	return pebblestore.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Name: "pebble",
		New: func(t *testing.T) (store.Store, string) {
			return pebblestore.New(quiet(), pebblestore.WithCacheSize(1<<20)), filepath.Join(t.TempDir(), "db")
		},
		Reopen: func(t *testing.T, config string) store.Store {
			return pebblestore.New(quiet(), pebblestore.WithCacheSize(1<<20))
		},
	})
}
