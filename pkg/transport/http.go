package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/securelog/securelog/pkg/wire"
)

// HTTP is the HTTP transport of SPEC §16.4: each call is one POST of the
// compact envelope {"method":…,"params":…} to the endpoint URL; a 2xx
// answer's body is the result JSON, any other status is a *StatusError
// "transport-http: server returned <status>: <body>".
type HTTP struct {
	url    string
	token  string
	client *http.Client
	cfg    Config
}

// NewHTTP returns an HTTP transport for cfg.URL; empty fields are filled
// from the environment and defaults as by New. An empty URL is the error
// "transport-http: SECURE_LOG_RPC_URL is not set"; the URL must be
// http:// or https:// with a host. The path defaults to "/".
func NewHTTP(cfg Config) (*HTTP, error) {
	cfg = cfg.withDefaults()
	if cfg.URL == "" {
		return nil, errors.New("transport-http: SECURE_LOG_RPC_URL is not set")
	}
	u, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = 64
	return &HTTP{url: u.String(), token: cfg.Token, client: &http.Client{Transport: tr}, cfg: cfg}, nil
}

// ParseURL checks an endpoint of the form scheme://authority[/path] with
// scheme http or https, and defaults the path to "/".
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("transport-http: invalid URL %q: %w", raw, err)
	}
	if u.Scheme == "" || !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("transport-http: URL %q has no scheme (want http://host[:port][/path])", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("transport-http: URL %q: unsupported scheme %q (want http or https)", raw, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("transport-http: URL %q has no host", raw)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// Call POSTs one request. Read methods are retried on network errors and
// 502/503/504 (package doc); mutating methods are sent once.
func (h *HTTP) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	body, err := wire.EncodeEnvelope(method, params)
	if err != nil {
		return nil, fmt.Errorf("transport-http: %w", err)
	}
	return withRetry(ctx, h.cfg, method, func(ctx context.Context) (json.RawMessage, error) {
		return h.attempt(ctx, body)
	})
}

func (h *HTTP) attempt(ctx context.Context, body []byte) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("transport-http: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if h.token != "" {
		req.Header.Set(wire.AuthorizationHeader, "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, &transientError{fmt.Errorf("transport-http: %w", err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &transientError{fmt.Errorf("transport-http: read response: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{Prefix: "transport-http", Status: resp.StatusCode, Body: string(data)}
	}
	return data, nil
}

// Close releases idle connections.
func (h *HTTP) Close() error {
	h.client.CloseIdleConnections()
	return nil
}
