package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/queryapi"
	"github.com/securelog/securelog/pkg/wire"
)

// The query API and the console across partitions (issue 14 item 4):
// every partition's HTTP listener serves its own store and registers its
// address in the partition map (partition.Map.SetHTTP). A query API
// request that names a stream of another partition is forwarded to that
// partition's listener; GET /v1/streams asks every partition and merges
// the lists. So one listener (and the console on it) shows every stream.

// RoutedHeader marks a query API request forwarded by another partition:
// it is answered locally, never forwarded again.
const RoutedHeader = "Securelog-Routed"

// PartialHeader lists the partitions a merged GET /v1/streams could not
// reach ("name: error"; their streams are missing from the answer).
const PartialHeader = "Securelog-Partial"

// queryRouter routes query API requests to the partition that owns their
// stream.
type queryRouter struct {
	own    wire.Partition
	local  http.Handler // this partition's query API
	nc     *nats.Conn
	log    *slog.Logger
	client *http.Client

	// plainHTTP allows forwarding callers' credentials to another
	// partition's listener advertised at a plain http:// URL that is not
	// a loopback address (IngesterConfig.ForwardPlainHTTP).
	plainHTTP bool

	mu    sync.Mutex
	m     *partition.Map
	mapAt time.Time
}

func newQueryRouter(own wire.Partition, local http.Handler, nc *nats.Conn, m *partition.Map, log *slog.Logger, plainHTTP bool) *queryRouter {
	q := &queryRouter{own: own, local: local, nc: nc, log: log, client: &http.Client{Timeout: queryForwardTimeout}, plainHTTP: plainHTTP}
	if m != nil && m.HasBucket() {
		q.m = m
	}
	return q
}

// queryForwardTimeout bounds one forwarded request of a merged listing.
const queryForwardTimeout = 30 * time.Second

// Wrap serves the query API's requests and passes the rest to next.
func (q *queryRouter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if queryapi.Handles(r) {
			q.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// partitionMap returns the map (nil while there is no bucket: one
// partition, everything is local), opening it on first use.
func (q *queryRouter) partitionMap(ctx context.Context) *partition.Map {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.m != nil || time.Since(q.mapAt) < 5*time.Second {
		return q.m
	}
	q.mapAt = time.Now()
	js, err := jetstream.New(q.nc)
	if err != nil {
		return nil
	}
	m, err := partition.Open(ctx, js, partition.OpenConfig{})
	if err != nil || !m.HasBucket() {
		return nil
	}
	q.m = m
	return m
}

func (q *queryRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(RoutedHeader) != "" {
		q.local.ServeHTTP(w, r)
		return
	}
	m := q.partitionMap(r.Context())
	if m == nil {
		q.local.ServeHTTP(w, r)
		return
	}
	if r.Method == http.MethodGet && strings.TrimSuffix(r.URL.Path, "/") == "/v1/streams" {
		q.streams(w, r, m)
		return
	}
	if seqno, ok := entryOfPath(r.URL.Path); ok && r.Method == http.MethodGet {
		q.entry(w, r, m, seqno)
		return
	}
	stream, ok := streamOfPath(r.URL.Path)
	if !ok {
		q.local.ServeHTTP(w, r)
		return
	}
	p, err := m.Route(r.Context(), stream)
	if err != nil {
		queryError(w, http.StatusBadGateway, fmt.Sprintf("route stream %q: %v", stream, err))
		return
	}
	if p.Name() == q.own.Name() {
		q.local.ServeHTTP(w, r)
		return
	}
	q.forward(w, r, m, p, nil)
}

// forward proxies r to partition p's listener; modify, if set, may change
// the answer.
func (q *queryRouter) forward(w http.ResponseWriter, r *http.Request, m *partition.Map, p wire.Partition, modify func(*http.Response) error) {
	base, err := q.address(r.Context(), m, p.Name())
	if err != nil {
		queryError(w, http.StatusBadGateway, err.Error())
		return
	}
	if err := q.mayForward(r, p.Name(), base); err != nil {
		queryErrorCode(w, http.StatusForbidden, "forward-refused", err.Error())
		return
	}
	rp := &httputil.ReverseProxy{
		ModifyResponse: modify,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.URL.Path, pr.Out.URL.RawPath = r.URL.Path, r.URL.RawPath
			pr.Out.Header.Set(RoutedHeader, q.own.Name())
		},
		Transport:     q.client.Transport, // nil: http.DefaultTransport
		FlushInterval: -1,                 // follow (server-sent events) streams through
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			queryError(w, http.StatusBadGateway, fmt.Sprintf("partition %s (%s): %v", p.Name(), base, err))
		},
	}
	rp.ServeHTTP(w, r)
}

// streamOfPath returns the stream of /v1/streams/{stream}/….
func streamOfPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/v1/streams/")
	if !ok {
		return "", false
	}
	stream, _, _ := strings.Cut(rest, "/")
	if s, err := url.PathUnescape(stream); err == nil {
		stream = s
	}
	return stream, stream != ""
}

// address returns the registered HTTP address of partition name.
func (q *queryRouter) address(ctx context.Context, m *partition.Map, name string) (*url.URL, error) {
	raw, ok, err := m.HTTP(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("partition %s: %w", name, err)
	}
	if !ok {
		return nil, fmt.Errorf("partition %s has no HTTP listener registered in the partition map (start its ingester with --listen)", name)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("partition %s: HTTP address %q: %w", name, raw, err)
	}
	return u, nil
}

// streams serves GET /v1/streams: this partition's list merged with every
// other partition's, sorted by name.
func (q *queryRouter) streams(w http.ResponseWriter, r *http.Request, m *partition.Map) {
	names, err := m.Partitions(r.Context())
	if err != nil {
		queryError(w, http.StatusBadGateway, err.Error())
		return
	}
	if len(names) <= 1 {
		q.local.ServeHTTP(w, r) // one partition: its own answer as is
		return
	}
	rec := &bufferedResponse{header: http.Header{}}
	q.local.ServeHTTP(rec, r)
	if rec.status != http.StatusOK {
		rec.copyTo(w)
		return
	}
	var merged queryapi.Streams
	if err := json.Unmarshal(rec.body.Bytes(), &merged); err != nil {
		queryError(w, http.StatusInternalServerError, fmt.Sprintf("streams of partition %s: %v", q.own.Name(), err))
		return
	}
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		partial []string
	)
	for _, name := range names {
		if name == q.own.Name() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := q.remoteStreams(r, m, name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				partial = append(partial, name+": "+err.Error())
				return
			}
			merged.Streams = append(merged.Streams, got...)
		}()
	}
	wg.Wait()
	slices.SortFunc(merged.Streams, func(a, b queryapi.Stream) int { return strings.Compare(a.Name, b.Name) })
	if len(partial) > 0 {
		slices.Sort(partial)
		w.Header().Set(PartialHeader, strings.Join(partial, "; "))
		q.log.Warn("query api: streams of some partitions are missing from the merged list", "partitions", partial)
	}
	for k, v := range rec.header {
		w.Header()[k] = v // the local answer's headers (content type, caching)
	}
	w.Header().Del("Content-Length")
	_ = json.NewEncoder(w).Encode(merged)
}

// remoteStreams asks partition name for its GET /v1/streams with the
// caller's credentials.
func (q *queryRouter) remoteStreams(r *http.Request, m *partition.Map, name string) ([]queryapi.Stream, error) {
	base, err := q.address(r.Context(), m, name)
	if err != nil {
		return nil, err
	}
	if err := q.mayForward(r, name, base); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, base.JoinPath("/v1/streams").String(), nil)
	if err != nil {
		return nil, err
	}
	if a := r.Header.Get(wire.AuthorizationHeader); a != "" {
		req.Header.Set(wire.AuthorizationHeader, a)
	}
	req.Header.Set(RoutedHeader, q.own.Name())
	resp, err := q.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var s queryapi.Streams
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, err
	}
	return s.Streams, nil
}

// bufferedResponse records a response.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedResponse) WriteHeader(code int) { b.status = code }

func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}

// mayForward refuses to send r's credentials (Authorization, cookies) to
// partition name's listener at base over plain HTTP off the machine: a
// bearer token sent in clear text to an advertised address can be read on
// the network. https:// and loopback addresses are allowed, any address
// with plainHTTP (--forward-plain-http, for a trusted network), and any
// request without credentials.
func (q *queryRouter) mayForward(r *http.Request, name string, base *url.URL) error {
	if q.plainHTTP || strings.EqualFold(base.Scheme, "https") || isLoopbackHost(base.Hostname()) {
		return nil
	}
	if r.Header.Get(wire.AuthorizationHeader) == "" && r.Header.Get("Cookie") == "" {
		return nil
	}
	return fmt.Errorf("refusing to forward the request's credentials to partition %s at %s over plain HTTP: "+
		"advertise its listener with an https:// URL (--advertise), ask that partition's listener directly, "+
		"or allow plain HTTP on a trusted network with --forward-plain-http", name, base.Redacted())
}

// isLoopbackHost reports whether host is localhost or a loopback IP.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// queryError answers a routing failure in the query API's error shape.
func queryError(w http.ResponseWriter, status int, msg string) {
	queryErrorCode(w, status, "partition-unreachable", msg)
}

// queryErrorCode answers in the query API's error shape with code.
func queryErrorCode(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(queryapi.ErrorBody{Error: queryapi.ErrorInfo{Status: status, Code: code, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// advertiseHTTP returns the URL other partitions reach the listener at
// addr by: advertise if set, else http://addr, with the host name of the
// machine for an unspecified address (0.0.0.0, ::).
func advertiseHTTP(advertise, addr string) (string, error) {
	if advertise != "" {
		return advertise, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			return "", err
		}
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// registerHTTP records the partition's HTTP address in the partition map
// once the ingester runs (it creates the map's bucket). A failure is
// logged: the partition works, only other partitions cannot forward to
// it.
func registerHTTP(ctx context.Context, in *pipeline.Ingester, nc *nats.Conn, p wire.Partition, url string, log *slog.Logger) {
	select {
	case <-in.Started():
	case <-ctx.Done():
		return
	}
	js, err := jetstream.New(nc)
	if err == nil {
		var m *partition.Map
		if m, err = partition.Open(ctx, js, partition.OpenConfig{}); err == nil {
			err = m.SetHTTP(ctx, p.Name(), url)
		}
	}
	if err != nil && ctx.Err() == nil {
		log.Warn("the HTTP address is not in the partition map: other partitions' query API cannot forward to this one", "url", url, "err", err)
		return
	}
	log.Debug("HTTP address recorded in the partition map", "partition", p.Name(), "url", url)
}
