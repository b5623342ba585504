package sqlitestore

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/query"
)

// TestQueryPlansUseIndexes: every query shape is answered from one of the
// migration 7 indexes in the requested order, without sorting the stream.
func TestQueryPlansUseIndexes(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	if _, err := s.db.Exec(`ANALYZE`); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, qs := range []string{"", "order=oldest", "type=auth.login", "producer=sshd", "since=1h&until=10m",
		"type=auth.login&severity=error", "producer=sshd&order=oldest&severity=warning"} {
		v, _ := url.ParseQuery(qs)
		f, err := query.Parse("default", v, now)
		if err != nil {
			t.Fatal(err)
		}
		f.HasAfter, f.After = true, query.Position{Time: now.UnixNano(), Seqno: 5}
		stmt, args, err := querySQL(f)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.db.Query(`EXPLAIN QUERY PLAN `+stmt, args...)
		if err != nil {
			t.Fatalf("%q: %v", qs, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "_time") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%q: plan %q does not walk a stream/time index in order", qs, p)
		}
	}
}

// TestSeverityQueriesUseTheUrgentIndex: a minimum severity of warning or
// more (alone, with a type prefix or with time bounds) walks the urgent
// partial index of migration 10 in the requested order — not the stream's
// time index, which reads every info and debug entry in between.
func TestSeverityQueriesUseTheUrgentIndex(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "q.db"))
	if _, err := s.db.Exec(`ANALYZE`); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, qs := range []string{"severity=alert", "severity=warning&order=oldest", "severity=emergency&since=2h&until=1h",
		"type=auth.*&severity=error", "type=*&severity=critical&order=oldest"} {
		for _, cursor := range []bool{false, true} {
			v, _ := url.ParseQuery(qs)
			f, err := query.Parse("default", v, now)
			if err != nil {
				t.Fatal(err)
			}
			if cursor {
				f.HasAfter, f.After = true, query.Position{Time: now.Add(-90 * time.Minute).UnixNano(), Seqno: 5}
			}
			p := queryPlan(t, s, f)
			if !strings.Contains(p, "idx_secure_log_stream_urgent_time_severity") || strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("%q (cursor %t): plan %q does not walk the urgent index in order", qs, cursor, p)
			}
		}
	}
}

// queryPlan is SQLite's plan of the filter's SELECT.
func queryPlan(t *testing.T, s *Store, f query.Filter) string {
	t.Helper()
	stmt, args, err := querySQL(f)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.Query(`EXPLAIN QUERY PLAN `+stmt, args...)
	if err != nil {
		t.Fatalf("%+v: %v", f, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}
