package node

import (
	"fmt"
	neturl "net/url"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/secretfile"
)

// NATSClient says how a part connects to NATS.
type NATSClient struct {
	// URL is the server URL(s), comma separated (nats.DefaultURL if empty).
	URL string
	// Creds is a NATS credentials file (JWT + nkey seed).
	Creds string
	// User and Password authenticate with a user of the server's config.
	User, Password string
	// NKeyFile holds an nkey seed (DATA/auth/<role>.nk of securelog up):
	// the client signs the server's nonce with it.
	NKeyFile string
	// Secrets says what to do with an NKeyFile other users can read
	// (refused by default).
	Secrets secretfile.Policy
	// Server, if set, is an embedded server reached in-process (URL is
	// then ignored).
	Server *server.Server
}

func (c NATSClient) url() string {
	if c.URL == "" {
		return nats.DefaultURL
	}
	return c.URL
}

// Redacted returns the server URL(s) for logs and errors: the password of
// any user:password@ part is replaced by "xxxxx" (as url.URL.Redacted does),
// and so is a token given as userinfo (nats://TOKEN@host).
func (c NATSClient) Redacted() string {
	parts := strings.Split(c.url(), ",")
	for i, p := range parts {
		u, err := neturl.Parse(strings.TrimSpace(p))
		if err != nil {
			if strings.Contains(p, "@") {
				parts[i] = "(unparseable URL with credentials)"
			}
			continue
		}
		if _, has := u.User.Password(); has {
			parts[i] = u.Redacted()
		} else if u.User != nil {
			// userinfo without a password is a token (nats://TOKEN@host).
			u.User = neturl.User("xxxxx")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

func (c NATSClient) options(name string) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.NKeyFile != "" {
		data, err := secretfile.Read("nkey seed file", c.NKeyFile, c.Secrets)
		if err != nil {
			return nil, err
		}
		kp, err := parseSeed(c.NKeyFile, data)
		if err != nil {
			return nil, err
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("nkey seed file %s: %w", c.NKeyFile, err)
		}
		opts = append(opts, nats.Nkey(pub, kp.Sign))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Server != nil {
		opts = append(opts, nats.InProcessServer(c.Server))
	}
	return opts, nil
}

// Options returns the connection options of client name (credentials,
// reconnects, the in-process server), for callers that dial themselves.
func (c NATSClient) Options(name string) ([]nats.Option, error) { return c.options(name) }

// Connect dials NATS as client name.
func (c NATSClient) Connect(name string) (*nats.Conn, error) {
	url := c.url()
	if c.Server != nil {
		url = ""
	}
	opts, err := c.options(name)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		if c.Server != nil {
			return nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
		}
		return nil, fmt.Errorf("connect to NATS %s: %w", c.Redacted(), err)
	}
	return nc, nil
}

// authenticates reports whether the client connects as a user.
func (c NATSClient) authenticates() bool {
	return c.Creds != "" || c.User != "" || c.NKeyFile != ""
}
