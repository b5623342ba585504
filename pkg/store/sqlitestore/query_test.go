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
