package node

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestOpenStorePebbleTuning: OpenStore opens a pebble store with the
// tuning (defaults for zero fields) and names a bad size by its flag.
func TestOpenStorePebbleTuning(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tuning PebbleTuning
		flag   string // "" = opens
	}{
		{"defaults", PebbleTuning{}, ""},
		{"small", PebbleTuning{CacheSize: 8 << 20, MemTableSize: 2 << 20, MemTables: 2}, ""},
		{"negative cache", PebbleTuning{CacheSize: -1}, "--pebble-cache-mib"},
		{"memtable of 4 GiB", PebbleTuning{MemTableSize: 4 << 30}, "--pebble-memtable-mib"},
		{"one memtable", PebbleTuning{MemTables: 1}, "--pebble-memtables"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := "pebble:" + filepath.Join(t.TempDir(), "store")
			st, err := OpenStore(ctx, StoreConfig{Spec: spec, Create: true, Pebble: tc.tuning})
			if tc.flag != "" {
				var se *SettingError
				if !errors.As(err, &se) || se.Flag != tc.flag {
					t.Fatalf("OpenStore with %+v: %v, want a SettingError naming %s", tc.tuning, err, tc.flag)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, _, err := st.GlobalHead(ctx); err != nil {
				t.Fatal(err)
			}
			// A second open of the same store fails as in use, as before.
			if _, err := OpenStore(ctx, StoreConfig{Spec: spec, Pebble: tc.tuning}); !errors.As(err, new(*StoreInUseError)) {
				t.Fatalf("second open: %v, want StoreInUseError", err)
			}
		})
	}
}
