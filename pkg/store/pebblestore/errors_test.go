package pebblestore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

func TestInitErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, dir, want string
	}{
		{"empty", "", "empty config"},
		{"under a file", filepath.Join(file, "db"), `open pebble store "` + filepath.Join(file, "db") + `"`},
		{"a file", file, `open pebble store "` + file + `"`},
	}
	if os.Geteuid() != 0 { // root ignores permissions
		cases = append(cases, struct{ name, dir, want string }{"unwritable", filepath.Join(ro, "db"), "open pebble store"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := pebblestore.New(quiet())
			defer s.Close()
			err := s.Init(t.Context(), c.dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Init(%q) = %v, want an error containing %q", c.dir, err, c.want)
			}
			if _, _, err := s.GlobalHead(t.Context()); !errors.Is(err, store.ErrNotInitialized) {
				t.Fatalf("GlobalHead after failed Init = %v, want ErrNotInitialized", err)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s := pebblestore.New(quiet())
	if _, _, err := s.Get(t.Context(), 1); !errors.Is(err, store.ErrNotInitialized) {
		t.Fatalf("Get before Init = %v, want ErrNotInitialized", err)
	}
	if err := s.Init(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(t.Context(), dir); err == nil {
		t.Fatal("second Init succeeded")
	}
	// The directory is locked while open.
	other := pebblestore.New(quiet())
	if err := other.Init(t.Context(), dir); err == nil {
		other.Close()
		t.Fatal("second store on an open directory succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Insert(t.Context(), wire.EntryRow{Seqno: 1}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Insert after Close = %v, want a closed error", err)
	}
	if err := s.Init(t.Context(), dir); err == nil {
		t.Fatal("Init after Close succeeded")
	}
}

func TestSchemaVersionChecked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("v"), []byte{9}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := pebblestore.New(quiet())
	defer s.Close()
	if err := s.Init(t.Context(), dir); err == nil || !strings.Contains(err.Error(), "unsupported schema version") {
		t.Fatalf("Init = %v, want unsupported schema version", err)
	}
}

func TestCorruptValueIsAnError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s := pebblestore.New(quiet())
	if err := s.Init(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(t.Context(), wire.EntryRow{Seqno: 1, StreamID: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The entry row of seqno 1 in stream "a" (keys.go layout).
	k := append([]byte("s/a\x00\x01"), 0, 0, 0, 0, 0, 0, 0, 1)
	if _, closer, err := db.Get(k); err != nil {
		t.Fatalf("entry key not where keys.go says: %v", err)
	} else {
		closer.Close()
	}
	if err := db.Set(k, []byte{1, 1, 0xff}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = pebblestore.New(quiet())
	defer s.Close()
	if err := s.Init(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(t.Context(), 1); err == nil || !strings.Contains(err.Error(), "decode entry") {
		t.Fatalf("Get of a corrupt row = %v, want a decode error", err)
	}
	if _, err := s.Range(t.Context(), "a", 0, 5); err == nil {
		t.Fatal("Range over a corrupt row succeeded")
	}
}
