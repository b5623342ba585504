package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/queryapi"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func init() { extraCommands = append(extraCommands, (*app).queryCmd, (*app).tailCmd) }

// entrySource answers entry queries from a local store or a remote query
// API listener.
type entrySource interface {
	// page returns one page of the query in v (query.Parse parameters).
	page(ctx context.Context, stream string, v url.Values) (queryapi.Page, error)
	// follow calls fn for each entry after seqno from that passes v's
	// type/producer/severity, until ctx ends.
	follow(ctx context.Context, stream string, v url.Values, from uint64, fn func(queryapi.Entry) error) error
}

// localSource reads the --store directly (sealed payloads opened with --kek).
type localSource struct {
	l      *securelog.Log
	st     store.Store
	canOpn bool
	poll   time.Duration
}

func (s *localSource) render(ctx context.Context, row wire.EntryRow) queryapi.Entry {
	e := queryapi.EntryOf(row)
	if e.Sealed && s.canOpn {
		if pt, err := s.l.OpenPayload(ctx, row.Seqno); err == nil {
			e.Payload, e.Opened = query.RenderPayload(pt), true
		}
	}
	return e
}

func (s *localSource) page(ctx context.Context, stream string, v url.Values) (queryapi.Page, error) {
	if _, ok, err := s.st.StreamGet(ctx, stream); err != nil {
		return queryapi.Page{}, err
	} else if !ok {
		return queryapi.Page{}, &wire.StreamNotFoundError{Stream: stream}
	}
	f, err := query.Parse(stream, v, time.Now())
	if err != nil {
		return queryapi.Page{}, usageErr("%v", err)
	}
	rows, more, err := store.QueryEntries(ctx, s.st, f)
	if err != nil {
		return queryapi.Page{}, err
	}
	p := queryapi.Page{Stream: stream, Order: f.Order.String(), Limit: f.PageSize(), Entries: make([]queryapi.Entry, len(rows))}
	for i, r := range rows {
		p.Entries[i] = s.render(ctx, r)
	}
	if more && len(rows) > 0 {
		next := f.Cursor(query.Key(rows[len(rows)-1]))
		p.Next = &next
	}
	return p, nil
}

// follow polls the store (another process may be writing it).
func (s *localSource) follow(ctx context.Context, stream string, v url.Values, from uint64, fn func(queryapi.Entry) error) error {
	f, err := query.Parse(stream, v, time.Now())
	if err != nil {
		return usageErr("%v", err)
	}
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		head, ok, err := s.st.GlobalHead(ctx)
		if err != nil {
			return err
		}
		if ok && head > from {
			rows, err := s.st.Range(ctx, stream, from+1, head)
			if err != nil {
				return err
			}
			for _, r := range rows {
				if f.MatchFields(r) {
					if err := fn(s.render(ctx, r)); err != nil {
						return err
					}
				}
			}
			from = head
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// remoteSource calls a query API listener.
type remoteSource struct{ c *queryapi.Client }

func (s *remoteSource) page(ctx context.Context, stream string, v url.Values) (queryapi.Page, error) {
	p, err := s.c.Entries(ctx, stream, v)
	return p, apiErr(err)
}

func (s *remoteSource) follow(ctx context.Context, stream string, v url.Values, from uint64, fn func(queryapi.Entry) error) error {
	err := s.c.Follow(ctx, stream, v, from, fn)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return apiErr(err)
}

// apiErr maps a query API error to the CLI contract: a bad filter is a
// usage error (exit 2), an unknown stream not_found.
func apiErr(err error) error {
	var ae *queryapi.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Status {
	case 400:
		return usageErr("%s", ae.Message)
	case 404:
		return failure(CodeNotFound, errors.New(ae.Message))
	}
	return failure(CodeFailed, err)
}

// queryFlags are the filters shared by query and tail.
type queryFlags struct {
	since, until, typ, producer, severity, remote string
}

func (q *queryFlags) add(c *cobra.Command, times bool) {
	f := c.Flags()
	if times {
		f.StringVar(&q.since, "since", "", "only entries at or after this RFC 3339 time, or this long ago (90m, 24h)")
		f.StringVar(&q.until, "until", "", "only entries before this RFC 3339 time, or this long ago")
	}
	f.StringVar(&q.typ, "type", "", "event type: exact, or a prefix ending in * (auth.*)")
	f.StringVar(&q.producer, "producer", "", "exact producer")
	f.StringVar(&q.severity, "severity", "", "minimum severity (warning keeps emergency … warning)")
	f.StringVar(&q.remote, "url", "", "query API of a running node (http://HOST:PORT of up --http / serve-rpc); token from --token-file or SECURELOG_RPC_TOKEN. Default: read --store")
}

func (q *queryFlags) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"since": q.since, "until": q.until, "type": q.typ, "producer": q.producer, "severity": q.severity} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// source opens the local store or the remote client; close releases it.
func (a *app) entrySource(ctx context.Context, q *queryFlags) (entrySource, func(), error) {
	if q.remote != "" {
		u, err := url.Parse(q.remote)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, usageErr("--url %q: want http(s)://HOST:PORT", q.remote)
		}
		tok, err := a.rpcToken()
		if err != nil {
			return nil, nil, err
		}
		return &remoteSource{c: &queryapi.Client{BaseURL: q.remote, Token: tok}}, func() {}, nil
	}
	l, closeFn, err := a.openLog(ctx, openOpts{kek: true})
	if err != nil {
		return nil, nil, err
	}
	return &localSource{l: l, st: l.Store(), canOpn: a.kekFile != "", poll: 500 * time.Millisecond}, closeFn, nil
}

// printEntries prints entries as a table, or JSON lines with --json.
func (a *app) printEntries(entries []queryapi.Entry, header bool) error {
	if a.jsonOut {
		for _, e := range entries {
			if err := a.printJSON(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "SEQNO\tTIMESTAMP\tSEVERITY\tTYPE\tPRODUCER\tPAYLOAD")
	}
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seqno, e.Timestamp, e.Severity, e.EventType, e.Producer, payloadCell(e))
	}
	return tw.Flush()
}

// payloadCell is a one-line, shortened payload for the table.
func payloadCell(e queryapi.Entry) string {
	s := ""
	switch {
	case e.Payload.Text != nil:
		s = strconv.Quote(*e.Payload.Text)
	case e.Payload.Base64 != nil:
		s = "base64:" + *e.Payload.Base64
	}
	if e.Sealed && !e.Opened {
		s = "(sealed) " + s
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func (a *app) queryCmd() *cobra.Command {
	var q queryFlags
	var limit int
	var order, after string
	var all bool
	c := &cobra.Command{
		Use:   "query STREAM [--since T] [--until T] [--type T] [--producer P] [--severity S] [--limit N] [--order newest|oldest] [--all] [--url URL]",
		Short: "Search a stream's entries by time, type, producer and severity",
		Long: `Print the stream's entries that pass the filters, newest first (--order oldest
for oldest first), as a table or, with --json, one JSON object per line (the
entry shape of docs/query.md: hashes hex, payload text or base64).

Reads the local --store, or with --url the query API of a running node
(securelog up --listen ADDR) with the token of --token-file or
SECURELOG_RPC_TOKEN. One page holds --limit entries (at most 1000); the
table ends with the --after token of the next page, and --all prints every
page.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return usageErr("--limit %d: want 1 or more", limit)
			}
			src, closeFn, err := a.entrySource(cmd.Context(), &q)
			if err != nil {
				return err
			}
			defer closeFn()
			v := q.values()
			v.Set("limit", strconv.Itoa(min(limit, query.MaxLimit)))
			v.Set("order", order)
			if after != "" {
				v.Set("after", after)
			}
			left := limit
			for first := true; ; first = false {
				p, err := src.page(cmd.Context(), args[0], v)
				if err != nil {
					return err
				}
				if len(p.Entries) > left {
					p.Entries = p.Entries[:left]
				}
				left -= len(p.Entries)
				if err := a.printEntries(p.Entries, first); err != nil {
					return err
				}
				if p.Next == nil {
					return nil
				}
				if !all && left == 0 {
					if !a.jsonOut {
						fmt.Fprintf(a.stderr, "more entries: add --after %s\n", *p.Next)
					}
					return nil
				}
				if all {
					left = math.MaxInt
				}
				v.Set("after", *p.Next)
			}
		},
	}
	q.add(c, true)
	c.Flags().IntVar(&limit, "limit", query.DefaultLimit, "entries to print (pages of at most 1000 are fetched)")
	c.Flags().StringVar(&order, "order", "newest", "newest or oldest first")
	c.Flags().StringVar(&after, "after", "", "continue after this token (printed at the end of a page)")
	c.Flags().BoolVar(&all, "all", false, "print every matching entry, page by page")
	return c
}

func (a *app) tailCmd() *cobra.Command {
	var q queryFlags
	var n int
	var follow bool
	c := &cobra.Command{
		Use:   "tail STREAM [-n N] [-f] [--type T] [--producer P] [--severity S] [--url URL]",
		Short: "Print a stream's newest entries, and with -f follow new ones",
		Long: `Print the stream's last -n entries (oldest of them first); with -f keep
printing entries as they are committed until interrupted. Locally (--store)
-f polls the store; with --url it follows the node's Server-Sent Events
(GET /v1/streams/STREAM/follow), resuming after the last entry printed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 0 {
				return usageErr("-n %d: want 0 or more", n)
			}
			src, closeFn, err := a.entrySource(cmd.Context(), &q)
			if err != nil {
				return err
			}
			defer closeFn()
			v := q.values()
			var last uint64
			if n > 0 || follow {
				pv := url.Values{}
				for k, vs := range v {
					pv[k] = vs
				}
				pv.Set("limit", strconv.Itoa(max(1, min(n, query.MaxLimit))))
				p, err := src.page(cmd.Context(), args[0], pv)
				if err != nil {
					return err
				}
				es := p.Entries
				if n == 0 {
					es = nil
				}
				for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
					es[i], es[j] = es[j], es[i]
				}
				if err := a.printEntries(es, !follow || len(es) > 0); err != nil {
					return err
				}
				for _, e := range p.Entries {
					last = max(last, e.Seqno)
				}
			}
			if !follow {
				return nil
			}
			if last == 0 {
				// Nothing matched yet: follow from the current head.
				if ls, ok := src.(*localSource); ok {
					last, _, _ = ls.st.GlobalHead(cmd.Context())
				}
			}
			return src.follow(cmd.Context(), args[0], v, last, func(e queryapi.Entry) error {
				if err := a.printEntries([]queryapi.Entry{e}, false); err != nil {
					return err
				}
				if f, ok := a.stdout.(interface{ Sync() error }); ok {
					_ = f.Sync()
				}
				return nil
			})
		},
	}
	q.add(c, false)
	c.Flags().IntVarP(&n, "lines", "n", 10, "how many of the newest entries to print first")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing newly committed entries")
	return c
}
