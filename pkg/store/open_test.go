package store_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	_ "github.com/securelog/securelog/pkg/store/memory"
	_ "github.com/securelog/securelog/pkg/store/pebblestore"
)

func TestParseSpec(t *testing.T) {
	cases := []struct {
		spec, backend, config string
		ok                    bool
	}{
		{"pebble:/var/lib/securelog", "pebble", "/var/lib/securelog", true},
		{"memory:x", "memory", "x", true},
		{"memory:", "memory", "", true},
		{"sqlite:file:test.db?mode=memory", "sqlite", "file:test.db?mode=memory", true},
		{"remote:http://127.0.0.1:8080/rpc", "remote", "http://127.0.0.1:8080/rpc", true},
		{"", "", "", false},
		{"pebble", "", "", false},
		{":/tmp/x", "", "", false},
	}
	for _, c := range cases {
		b, cfg, err := store.ParseSpec(c.spec)
		if (err == nil) != c.ok || b != c.backend || cfg != c.config {
			t.Errorf("ParseSpec(%q) = (%q, %q, %v), want (%q, %q, ok=%v)", c.spec, b, cfg, err, c.backend, c.config, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "BACKEND:CONFIG") {
			t.Errorf("ParseSpec(%q) error %q does not show the expected form", c.spec, err)
		}
	}
}

func TestOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	cases := []struct {
		name, spec string
		wantErr    []string // substrings; nil means success
	}{
		{"memory", "memory:test", nil},
		{"pebble", "pebble:" + dir, nil},
		{"memory empty config", "memory:", []string{`open store "memory:"`, "empty config"}},
		{"pebble empty config", "pebble:", []string{`open store "pebble:"`, "empty config"}},
		{"unknown backend", "mysql:dsn", []string{`unknown backend "mysql"`, "memory", "pebble"}},
		{"no colon", "pebble", []string{"BACKEND:CONFIG", "known backends", "memory, pebble"}},
		{"pebble under a file", "pebble:" + filepath.Join("/dev/null", "db"), []string{"open pebble store"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := store.Open(t.Context(), c.spec)
			if c.wantErr == nil {
				if err != nil {
					t.Fatalf("Open(%q): %v", c.spec, err)
				}
				defer s.Close()
				rows, err := s.StreamList(t.Context())
				if err != nil || len(rows) != 1 || rows[0].Name != "default" {
					t.Fatalf("opened store not initialised: %v, %v", rows, err)
				}
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", c.spec)
			}
			for _, w := range c.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open(%q) error %q does not contain %q", c.spec, err, w)
				}
			}
		})
	}
}

func TestRegister(t *testing.T) {
	if got := store.Backends(); !slices.Contains(got, "memory") || !slices.Contains(got, "pebble") {
		t.Fatalf("Backends() = %v, want memory and pebble registered by import", got)
	}
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	mustPanic("duplicate", func() { store.Register("memory", func() store.Store { return nil }) })
	mustPanic("empty name", func() { store.Register("", func() store.Store { return nil }) })
	mustPanic("colon", func() { store.Register("a:b", func() store.Store { return nil }) })
	mustPanic("nil open", func() { store.Register("nilopen", nil) })
}
