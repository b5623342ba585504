package witnessd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// DefaultClientTimeout bounds one submission when ctx has no deadline.
const DefaultClientTimeout = 30 * time.Second

// maxReplyBytes bounds a reply read by the client.
const maxReplyBytes = 1 << 20

// Client submits checkpoints to one witness over HTTP or NATS. It is safe
// for concurrent use.
type Client struct {
	where string
	send  func(ctx context.Context, body []byte) (int, []byte, error)
}

// NewHTTPClient returns a client of the witness at url: its base URL
// ("http://127.0.0.1:8081"), to which SubmitPath is appended, or the full
// submit URL.
func NewHTTPClient(url string) *Client {
	u := strings.TrimRight(url, "/")
	if !strings.HasSuffix(u, SubmitPath) {
		u += SubmitPath
	}
	hc := &http.Client{Timeout: DefaultClientTimeout}
	return &Client{where: u, send: func(ctx context.Context, body []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
		if err != nil {
			return 0, nil, fmt.Errorf("read reply: %w", err)
		}
		return resp.StatusCode, out, nil
	}}
}

// NewNATSClient returns a client of the witness answering on subject
// (DefaultSubject if empty) over nc, which the caller keeps open.
func NewNATSClient(nc *nats.Conn, subject string) *Client {
	if subject == "" {
		subject = DefaultSubject
	}
	return &Client{where: "nats:" + subject, send: func(ctx context.Context, body []byte) (int, []byte, error) {
		m := nats.NewMsg(subject)
		m.Data = body
		reply, err := nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return 0, nil, err
		}
		code, err := strconv.Atoi(reply.Header.Get(wire.NATSStatusHeader))
		if err != nil {
			return 0, nil, fmt.Errorf("reply without a valid %s header: %q", wire.NATSStatusHeader, reply.Header.Get(wire.NATSStatusHeader))
		}
		return code, reply.Data, nil
	}}
}

// Submit sends sub and returns the witness's receipt. A refusal (status
// 400, 403 or 409, see HTTPStatus) is a receipt with Accepted false and a
// nil error; a transport failure, another status or an undecodable reply is
// an error.
func (c *Client) Submit(ctx context.Context, sub witness.Submission) (witness.Receipt, error) {
	body, err := json.Marshal(sub)
	if err != nil {
		return witness.Receipt{}, fmt.Errorf("witness %s: encode submission: %w", c.where, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultClientTimeout)
		defer cancel()
	}
	code, out, err := c.send(ctx, body)
	if err != nil {
		return witness.Receipt{}, fmt.Errorf("witness %s: %w", c.where, err)
	}
	switch code {
	case http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusConflict:
	default:
		return witness.Receipt{}, fmt.Errorf("witness %s: status %d: %s", c.where, code, bytes.TrimSpace(out))
	}
	var rec witness.Receipt
	if err := json.Unmarshal(out, &rec); err != nil {
		return witness.Receipt{}, fmt.Errorf("witness %s: status %d: undecodable receipt %q: %w", c.where, code, out, err)
	}
	if rec.Accepted != (code == http.StatusOK) {
		return witness.Receipt{}, fmt.Errorf("witness %s: status %d disagrees with receipt accepted=%v (status %q)", c.where, code, rec.Accepted, rec.Status)
	}
	return rec, nil
}
