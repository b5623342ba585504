package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	_ "github.com/securelog/securelog/pkg/store/sqlitestore" // -store sqlite
	"github.com/securelog/securelog/pkg/wire"
)

// fixtureVersion changes whenever the generated workload changes, so a
// cached fixture of an older generator is rebuilt rather than measured.
const fixtureVersion = 1

// markerName is the file in the fixture directory that says what the
// store beside it holds.
const markerName = "securelog-query-fixture.json"

// marker describes a fixture store.
type marker struct {
	Version   int     `json:"version"`
	Store     string  `json:"store"`
	Entries   int     `json:"entries"`
	Seed      uint64  `json:"seed"`
	Complete  bool    `json:"complete"`
	Start     string  `json:"start"`      // timestamp of the first entry
	End       string  `json:"end"`        // timestamp of the last entry
	FillSecs  float64 `json:"fill_secs"`  // wall time of the fill
	FillLoad1 float64 `json:"fill_load1"` // 1-minute load average at its end
}

// Workload: streams, event types, producers, severities and payloads
// resemble a busy host fleet's audit trail. Entries are spread over span
// with exponential gaps (a Poisson process), so time-range queries see an
// even density.
var (
	fixtureStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// streams and their shares of the entries: the benchmark queries "audit".
	streams = []struct {
		name  string
		share float64
	}{{"audit", 0.90}, {"app", 0.09}, {"infra", 0.01}}
	// eventTypes in 4 families; drawn with weights 1/(rank+1) (a few
	// frequent types, a long tail of rare ones).
	eventTypes = []string{
		"auth.login", "db.read", "net.connect", "app.request", "auth.logout", "db.write",
		"net.allow", "app.config", "auth.token", "db.schema", "net.deny", "app.error",
		"auth.mfa", "db.grant", "net.tls", "app.deploy", "auth.fail", "db.backup",
		"net.scan", "app.start", "auth.password", "db.restore", "net.route", "app.stop",
	}
	// severityShares by ordinal (emergency … debug): mostly info, a few
	// urgent ones.
	severityShares = []float64{0.0005, 0.0015, 0.008, 0.03, 0.06, 0.10, 0.70, 0.099}
	producers      = 64
	actions        = []string{"create", "read", "update", "delete", "list", "grant", "revoke", "login"}
)

// generator draws the fixture's events deterministically from its seed.
type generator struct {
	rng       *rand.Rand
	typeCDF   []float64
	sevCDF    []float64
	streamCDF []float64
	now       time.Time
	meanGap   float64 // nanoseconds
}

func cdf(weights []float64) []float64 {
	out := make([]float64, len(weights))
	var sum float64
	for _, w := range weights {
		sum += w
	}
	var acc float64
	for i, w := range weights {
		acc += w / sum
		out[i] = acc
	}
	out[len(out)-1] = 1
	return out
}

func pick(c []float64, u float64) int {
	for i, p := range c {
		if u < p {
			return i
		}
	}
	return len(c) - 1
}

func newGenerator(seed uint64, entries int, span time.Duration) *generator {
	tw := make([]float64, len(eventTypes))
	for i := range tw {
		tw[i] = 1 / float64(i+1)
	}
	sw := make([]float64, len(streams))
	for i, s := range streams {
		sw[i] = s.share
	}
	return &generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		typeCDF: cdf(tw), sevCDF: cdf(severityShares), streamCDF: cdf(sw),
		now: fixtureStart, meanGap: float64(span) / float64(entries)}
}

// clock is the Log's clock: every call (one per entry) moves time on by an
// exponential gap, at least a microsecond (the timestamps' resolution).
func (g *generator) clock() time.Time {
	g.now = g.now.Add(max(time.Microsecond, time.Duration(g.rng.ExpFloat64()*g.meanGap)))
	return g.now
}

// event draws the next event.
func (g *generator) event() securelog.Event {
	r := g.rng
	p := r.IntN(producers)
	user := r.IntN(5000)
	payload := fmt.Sprintf(`{"user":"u%04d","action":"%s","object":"/projects/%d/items/%d","src":"10.%d.%d.%d","request_id":"%016x","ok":%t}`,
		user, actions[r.IntN(len(actions))], r.IntN(200), r.IntN(100000),
		p, r.IntN(256), r.IntN(256), r.Uint64(), r.IntN(20) != 0)
	enc := "json"
	return securelog.Event{
		Stream:    streams[pick(g.streamCDF, r.Float64())].name,
		EventType: eventTypes[pick(g.typeCDF, r.Float64())],
		Severity:  wire.Severity(pick(g.sevCDF, r.Float64())),
		Producer:  fmt.Sprintf("host-%02d.example.net", p),
		Payload:   []byte(payload),
		Encoding:  &enc,
	}
}

// storePath is where the fixture's store lives inside its directory.
func storePath(dir, backend string) string {
	if backend == "sqlite" {
		return filepath.Join(dir, "log.db")
	}
	return filepath.Join(dir, "db")
}

// openStore opens the fixture's store; bulk selects pebble's larger
// memtables for the fill (the same keys and values, fewer and larger
// flushes). Queries use the defaults of `securelog up`.
func openStore(ctx context.Context, dir, backend string, bulk bool, quiet *slog.Logger) (store.Store, error) {
	switch backend {
	case "pebble":
		opts := []pebblestore.Option{pebblestore.WithLogger(quiet)}
		if bulk {
			opts = append(opts, pebblestore.WithMemTables(64<<20, 4), pebblestore.WithCacheSize(64<<20))
		}
		st := pebblestore.New(opts...)
		if err := st.Init(ctx, storePath(dir, backend)); err != nil {
			return nil, err
		}
		return st, nil
	case "sqlite":
		return store.Open(ctx, "sqlite:"+storePath(dir, backend))
	}
	return nil, fmt.Errorf("unknown -store %q (want pebble or sqlite)", backend)
}

func readMarker(dir string) (marker, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if errors.Is(err, fs.ErrNotExist) {
		return marker{}, false, nil
	}
	if err != nil {
		return marker{}, false, err
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil {
		return marker{}, false, fmt.Errorf("fixture marker %s: %w", filepath.Join(dir, markerName), err)
	}
	return m, true, nil
}

func writeMarker(dir string, m marker) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, markerName), append(b, '\n'), 0o600)
}

// ensureFixture returns the marker of a complete fixture in dir, building
// it first unless dir already holds one of the same generator, store,
// size and seed. It only ever deletes a store that its own marker names.
func ensureFixture(ctx context.Context, dir, backend string, entries, batch int, seed uint64, span time.Duration, quiet *slog.Logger) (marker, error) {
	want := marker{Version: fixtureVersion, Store: backend, Entries: entries, Seed: seed}
	m, found, err := readMarker(dir)
	if err != nil {
		return marker{}, err
	}
	if found && m.Complete && m.Version == want.Version && m.Store == want.Store && m.Entries == want.Entries && m.Seed == want.Seed {
		fmt.Printf("fixture: reusing %s (%d entries, filled in %.0f s at load %.2f)\n", dir, m.Entries, m.FillSecs, m.FillLoad1)
		return m, nil
	}
	if found {
		fmt.Printf("fixture: %s holds another or an unfinished fixture (%+v); rebuilding it\n", dir, m)
		if err := os.RemoveAll(storePath(dir, m.Store)); err != nil {
			return marker{}, err
		}
		if m.Store == "sqlite" {
			for _, sfx := range []string{"-wal", "-shm"} {
				_ = os.Remove(storePath(dir, m.Store) + sfx)
			}
		}
	} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return marker{}, fmt.Errorf("fixture directory %s is not empty and has no %s: refusing to write into it", dir, markerName)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return marker{}, err
	}
	if err := writeMarker(dir, want); err != nil { // incomplete until the end
		return marker{}, err
	}
	start := time.Now()
	if err := fill(ctx, dir, backend, entries, batch, seed, span, quiet, &want); err != nil {
		return marker{}, fmt.Errorf("fill fixture %s: %w", dir, err)
	}
	want.Complete, want.FillSecs, want.FillLoad1 = true, time.Since(start).Seconds(), load1()
	return want, writeMarker(dir, want)
}

// fill appends entries through securelog.Log.AppendBatch — the library's
// write path: the entries are chained and hashed, and the store writes
// each batch with its index records and counts in one synced commit.
func fill(ctx context.Context, dir, backend string, entries, batch int, seed uint64, span time.Duration, quiet *slog.Logger, m *marker) error {
	st, err := openStore(ctx, dir, backend, true, quiet)
	if err != nil {
		return err
	}
	defer st.Close()
	g := newGenerator(seed, entries, span)
	l := securelog.New(st, securelog.Options{SessionID: "fixture-session", BootID: "fixture-boot", Now: g.clock, Logger: quiet})
	if err := l.OpenInitialized(ctx); err != nil {
		return err
	}
	evs := make([]securelog.Event, 0, batch)
	t0, last := time.Now(), time.Now()
	for i := 1; i <= entries; i++ {
		evs = append(evs, g.event())
		if len(evs) < batch && i < entries {
			continue
		}
		res, err := l.AppendBatch(ctx, evs, nil)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Err != nil {
				return fmt.Errorf("entry rejected: %w", r.Err)
			}
		}
		if i == batch || i == entries {
			first, _, err := st.Get(ctx, 1)
			if err != nil {
				return err
			}
			m.Start = first.Timestamp
			m.End = wire.FormatTime(g.now)
		}
		evs = evs[:0]
		if time.Since(last) > 30*time.Second || i == entries {
			last = time.Now()
			el := time.Since(t0).Seconds()
			fmt.Printf("fixture: %d/%d entries, %.0f s, %.0f entries/s, load %.2f\n", i, entries, el, float64(i)/el, load1())
		}
	}
	return nil
}
