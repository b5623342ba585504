package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/queryapi"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// shape is one query of the benchmark, as URL parameters of
// GET /v1/streams/audit/entries (without order, limit and after).
type shape struct {
	name   string
	params string
}

// queriedStream is the fixture's largest stream (90 % of the entries).
const queriedStream = "audit"

// shapes lists the filters over the fixture's workload (fixture.go):
// mid is the middle of the fixture's time span.
func shapes(mid time.Time) []shape {
	t := func(x time.Time) string { return url.QueryEscape(wire.FormatTime(x)) }
	return []shape{
		{"all", ""},
		{"type exact (db.grant, 1.9 %)", "type=db.grant"},
		{"type exact (auth.login, 26 %)", "type=auth.login"},
		{"type prefix (auth.*, 6 types)", "type=auth.*"},
		{"producer (1/64)", "producer=host-07.example.net"},
		{"producer + type prefix (net.*)", "producer=host-07.example.net&type=net.*"},
		{"producer + type exact (0.03 %)", "producer=host-07.example.net&type=db.grant"},
		{"severity ≥ warning (4 %)", "severity=warning"},
		{"severity ≥ alert (0.2 %)", "severity=alert"},
		{"severity emergency (0.05 %)", "severity=emergency"},
		{"type prefix + severity ≥ error", "type=auth.*&severity=error"},
		{"time range (1 h in the middle)", "since=" + t(mid) + "&until=" + t(mid.Add(time.Hour))},
		{"type prefix + since (middle)", "type=net.*&since=" + t(mid)},
	}
}

// result is the latency distribution of one shape and order.
type result struct {
	lat   []time.Duration
	cpu   time.Duration
	short int // pages with fewer rows than the limit
	load1 float64
}

func (r *result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(math.Ceil(p*float64(len(r.lat))))-1)]
}

func (r *result) mean() time.Duration {
	var sum time.Duration
	for _, d := range r.lat {
		sum += d
	}
	return sum / time.Duration(max(1, len(r.lat)))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs every shape in both orders: queries alternate page 1, page
// 2 (from page 1's cursor) and two pages at random cursors inside the
// filter's time bounds, away from the ends so each page is full.
func measure(ctx context.Context, st store.Store, m marker, n, limit int, api bool, only string) error {
	start, err := wire.ParseTime(m.Start)
	if err != nil {
		return fmt.Errorf("fixture start %q: %w", m.Start, err)
	}
	end, err := wire.ParseTime(m.End)
	if err != nil {
		return fmt.Errorf("fixture end %q: %w", m.End, err)
	}
	mid := start.Add(end.Sub(start) / 2)
	var h *queryapi.Handler
	if api {
		if h, err = queryapi.New(queryapi.Config{Store: st, Now: func() time.Time { return end }}); err != nil {
			return err
		}
		defer h.Close()
	}
	count, err := store.CountEntries(ctx, st, queriedStream)
	if err != nil {
		return err
	}
	fmt.Printf("\nstream %q: %d of %d entries, %s … %s; %d queries per row, %d rows per page\n\n", queriedStream, count, m.Entries, m.Start, m.End, n, limit)
	fmt.Println("| query | order | via | p50 ms | p99 ms | max ms | mean ms | CPU ms/query | short pages | load avg (1 min) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	rng := rand.New(rand.NewPCG(7, 7))
	for _, sh := range shapes(mid) {
		if only != "" && !strings.Contains(sh.name, only) {
			continue
		}
		for _, order := range []string{"newest", "oldest"} {
			params := strings.TrimPrefix(sh.params+"&order="+order+"&limit="+fmt.Sprint(limit), "&")
			v, err := url.ParseQuery(params)
			if err != nil {
				return err
			}
			f, err := query.Parse(queriedStream, v, end)
			if err != nil {
				return fmt.Errorf("%s: %w", sh.name, err)
			}
			first, _, err := store.QueryEntries(ctx, st, f)
			if err != nil {
				return fmt.Errorf("%s: %w", sh.name, err)
			}
			if len(first) < limit {
				return fmt.Errorf("%s, %s: page 1 has %d rows, want %d", sh.name, order, len(first), limit)
			}
			cursors := cursorSource{f: f, page2: query.Key(first[len(first)-1]), rng: rng, lo: start.UnixNano(), hi: end.UnixNano()}
			if f.HasSince {
				cursors.lo = f.Since
			}
			if f.HasUntil {
				cursors.hi = f.Until
			}
			r, err := runStore(ctx, st, f, n, limit, &cursors)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", sh.name, order, err)
			}
			printRow(sh.name, order, "store", r)
			if h == nil {
				continue
			}
			r, err = runAPI(h, params, f, n, limit, &cursors)
			if err != nil {
				return fmt.Errorf("%s, %s, API: %w", sh.name, order, err)
			}
			printRow(sh.name, order, "HTTP API", r)
		}
	}
	return nil
}

func printRow(name, order, via string, r *result) {
	cpu := time.Duration(int64(r.cpu) / int64(max(1, len(r.lat))))
	fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %d | %.2f |\n", name, order, via,
		ms(r.pct(0.5)), ms(r.pct(0.99)), ms(r.lat[len(r.lat)-1]), ms(r.mean()), ms(cpu), r.short, r.load1)
}

// cursorSource yields the cursor of query i: none (page 1), page 1's last
// position (page 2), or a random position inside [lo, hi).
type cursorSource struct {
	f      query.Filter
	page2  query.Position
	rng    interface{ Float64() float64 }
	lo, hi int64
}

func (c *cursorSource) at(i int) (query.Position, bool) {
	switch i % 4 {
	case 0:
		return query.Position{}, false
	case 1:
		return c.page2, true
	}
	t := c.lo + int64((0.05+0.9*c.rng.Float64())*float64(c.hi-c.lo))
	if c.f.Order == query.Newest {
		return query.Position{Time: t, Seqno: math.MaxInt64}, true // above every seqno (SQLite's integers are signed)
	}
	return query.Position{Time: t}, true
}

func runStore(ctx context.Context, st store.Store, f query.Filter, n, limit int, cs *cursorSource) (*result, error) {
	for i := range 8 { // warm-up
		g := f
		g.After, g.HasAfter = cs.at(i)
		if _, _, err := store.QueryEntries(ctx, st, g); err != nil {
			return nil, err
		}
	}
	r := &result{lat: make([]time.Duration, 0, n)}
	c0 := cpuTime()
	for i := range n {
		g := f
		g.After, g.HasAfter = cs.at(i)
		t0 := time.Now()
		rows, _, err := store.QueryEntries(ctx, st, g)
		r.lat = append(r.lat, time.Since(t0))
		if err != nil {
			return nil, err
		}
		if len(rows) < limit {
			r.short++
		}
	}
	r.cpu = cpuTime() - c0
	r.load1 = load1()
	slices.Sort(r.lat)
	return r, nil
}

func runAPI(h http.Handler, params string, f query.Filter, n, limit int, cs *cursorSource) (*result, error) {
	base := "/v1/streams/" + queriedStream + "/entries?" + params
	get := func(i int) (*httptest.ResponseRecorder, time.Duration) {
		u := base
		if p, ok := cs.at(i); ok {
			u += "&after=" + f.Cursor(p)
		}
		req := httptest.NewRequest(http.MethodGet, u, nil)
		w := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(w, req)
		return w, time.Since(t0)
	}
	for i := range 8 {
		if w, _ := get(i); w.Code != http.StatusOK {
			return nil, fmt.Errorf("status %d: %s", w.Code, w.Body.String())
		}
	}
	r := &result{lat: make([]time.Duration, 0, n)}
	c0 := cpuTime()
	for i := range n {
		w, d := get(i)
		r.lat = append(r.lat, d)
		if w.Code != http.StatusOK {
			return nil, fmt.Errorf("status %d: %s", w.Code, w.Body.String())
		}
		if strings.Count(w.Body.String(), `"seqno":`) < limit {
			r.short++
		}
	}
	r.cpu = cpuTime() - c0
	r.load1 = load1()
	slices.Sort(r.lat)
	return r, nil
}
