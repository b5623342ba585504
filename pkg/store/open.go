package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Backends register themselves: each backend package (memory, pebblestore,
// sqlite, file, remote, ...) imports this package for the interface and calls
// Register from its own init function. This package never imports a backend,
// so there is no import cycle; a program selects the backends it links with
// blank imports, as with database/sql drivers:
//
//	import (
//		_ "github.com/securelog/securelog/pkg/store/memory"
//		_ "github.com/securelog/securelog/pkg/store/pebblestore"
//	)
//
//	s, err := store.Open(ctx, "pebble:/var/lib/securelog")

var (
	registryMu sync.RWMutex
	registry   = map[string]func() Store{}
)

// Register makes a backend available to Open under name. open returns a
// new, uninitialised store. Register panics if name is empty, contains ':',
// open is nil or the name is already registered (a programming error, as in
// database/sql).
func Register(name string, open func() Store) {
	if name == "" || strings.Contains(name, ":") {
		panic(fmt.Sprintf("store: Register: invalid backend name %q", name))
	}
	if open == nil {
		panic(fmt.Sprintf("store: Register(%q): nil open function", name))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("store: Register: backend %q registered twice", name))
	}
	registry[name] = open
}

// Backends returns the names of the registered backends, sorted.
func Backends() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ParseSpec splits a store spec "BACKEND:CONFIG" at its first ':'. The
// backend must be non-empty; the config is returned verbatim (it may be
// empty here, but every backend's Init rejects an empty config).
func ParseSpec(spec string) (backend, config string, err error) {
	backend, config, ok := strings.Cut(spec, ":")
	if !ok || backend == "" {
		return "", "", fmt.Errorf("store spec %q: want BACKEND:CONFIG, e.g. \"pebble:/var/lib/securelog\" (known backends: %s)",
			spec, knownList())
	}
	return backend, config, nil
}

// Open creates the backend named by spec ("BACKEND:CONFIG", e.g.
// "pebble:/var/lib/securelog" or "memory:test") and initialises it with
// CONFIG. The backend must be registered (normally by a blank import of its
// package). On an Init error the store is closed.
func Open(ctx context.Context, spec string) (Store, error) {
	backend, config, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	registryMu.RLock()
	open, ok := registry[backend]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("store spec %q: unknown backend %q (known backends: %s)", spec, backend, knownList())
	}
	s := open()
	if err := s.Init(ctx, config); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open store %q: %w", spec, err)
	}
	return s, nil
}

func knownList() string {
	names := Backends()
	if len(names) == 0 {
		return "none registered; import a backend package"
	}
	return strings.Join(names, ", ")
}
