package queryapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// APIError is an error answer of the query API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Error returns the server's message with the status.
func (e *APIError) Error() string { return fmt.Sprintf("query API: %d %s", e.Status, e.Message) }

// Client calls a query API listener (the base URL of up's, the ingester's
// or serve-rpc's HTTP listener) with a bearer token.
type Client struct {
	// BaseURL is e.g. http://127.0.0.1:8700 (no /v1/).
	BaseURL string
	// Token is the bearer token ("" = none).
	Token string
	// HTTP is the client (default http.DefaultClient).
	HTTP *http.Client
}

func (c *Client) do(ctx context.Context, path string, v url.Values) (*http.Response, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("query API: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error.Message != "" {
			return nil, &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return nil, &APIError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	return resp, nil
}

// Entries fetches one page of GET /v1/streams/{stream}/entries.
func (c *Client) Entries(ctx context.Context, stream string, v url.Values) (Page, error) {
	resp, err := c.do(ctx, "/v1/streams/"+url.PathEscape(stream)+"/entries", v)
	if err != nil {
		return Page{}, err
	}
	defer resp.Body.Close()
	var p Page
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return Page{}, fmt.Errorf("query API: decode page: %w", err)
	}
	return p, nil
}

// Follow streams GET /v1/streams/{stream}/follow (filters in v; from is
// the last seqno already seen, 0 = only new entries) and calls fn per
// entry until ctx ends, the server closes the stream or fn fails.
func (c *Client) Follow(ctx context.Context, stream string, v url.Values, from uint64, fn func(Entry) error) error {
	q := url.Values{}
	for k, vs := range v {
		q[k] = vs
	}
	if from > 0 {
		q.Set("from", strconv.FormatUint(from, 10))
	}
	resp, err := c.do(ctx, "/v1/streams/"+url.PathEscape(stream)+"/follow", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var e Entry
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			return fmt.Errorf("query API: decode followed entry: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("query API: follow: %w", err)
	}
	return nil
}
