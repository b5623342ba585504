package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/queryapi"
	"github.com/securelog/securelog/pkg/wire"
)

// GET /v1/entries/{seqno} across partitions: seqnos are numbered per
// store, so each partition has its own entry 1, 2, …. The request names
// the entry's stream (?stream=S, routed by the map, as the console does)
// or its partition (?partition=P); without either, the listener's own
// partition answers. A 404 names the partition asked (and, without
// either parameter, lists the partitions).

// entryOfPath returns the seqno of /v1/entries/{seqno}.
func entryOfPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/v1/entries/")
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return "", false
	}
	return rest, true
}

// entry serves GET /v1/entries/{seqno}[?stream=S|?partition=P].
func (q *queryRouter) entry(w http.ResponseWriter, r *http.Request, m *partition.Map, seqno string) {
	ctx := r.Context()
	qs := r.URL.Query()
	stream, named := qs.Get("stream"), qs.Get("partition")
	target := q.own
	switch {
	case named != "":
		if err := m.Check(ctx, named); err != nil {
			var unknown *wire.UnknownPartitionError
			var bad *wire.InvalidError
			switch {
			case errors.As(err, &unknown):
				queryErrorCode(w, http.StatusNotFound, "partition_not_found", err.Error())
			case errors.As(err, &bad):
				queryErrorCode(w, http.StatusBadRequest, "bad_request", err.Error())
			default:
				queryError(w, http.StatusBadGateway, fmt.Sprintf("partition map: %v", err))
			}
			return
		}
		target = wire.MustPartition(named)
		if stream != "" {
			if p, err := m.Route(ctx, stream); err == nil && p.Name() != named {
				queryErrorCode(w, http.StatusNotFound, "entry_not_found",
					fmt.Sprintf("entry %s not found: stream %q is in partition %s, not %s", seqno, stream, p.Name(), named))
				return
			}
		}
	case stream != "":
		p, err := m.Route(ctx, stream)
		if err != nil {
			queryError(w, http.StatusBadGateway, fmt.Sprintf("route stream %q: %v", stream, err))
			return
		}
		target = p
	}
	hint := ""
	if named == "" && stream == "" {
		if names, err := m.Partitions(ctx); err == nil && len(names) > 1 {
			hint = fmt.Sprintf(" (seqnos are numbered per partition: name the entry's stream with ?stream= or its partition with ?partition=; partitions: %s)",
				strings.Join(names, ", "))
		}
	}
	// note names the partition asked in an "entry not found" answer (nil:
	// the answer stays as it is).
	note := func(status int, body []byte) []byte {
		var e queryapi.ErrorBody
		if status != http.StatusNotFound || json.Unmarshal(body, &e) != nil || e.Error.Code != "entry_not_found" {
			return nil
		}
		e.Error.Message += " in partition " + target.Name() + hint
		b, _ := json.Marshal(e)
		return append(b, '\n')
	}
	if target.Name() == q.own.Name() {
		rec := &bufferedResponse{header: http.Header{}}
		q.local.ServeHTTP(rec, r)
		if b := note(rec.status, rec.body.Bytes()); b != nil {
			rec.body.Reset()
			rec.body.Write(b)
			rec.header.Del("Content-Length")
		}
		rec.copyTo(w)
		return
	}
	q.forward(w, r, m, target, func(resp *http.Response) error {
		if resp.StatusCode != http.StatusNotFound {
			return nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		if b := note(resp.StatusCode, body); b != nil {
			body = b
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	})
}
