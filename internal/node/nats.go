package node

import (
	"fmt"
	neturl "net/url"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATSClient says how a part connects to NATS.
type NATSClient struct {
	// URL is the server URL(s), comma separated (nats.DefaultURL if empty).
	URL string
	// Creds is a NATS credentials file (JWT + nkey seed).
	Creds string
	// User and Password authenticate with a user of the server's config.
	User, Password string
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

func (c NATSClient) options(name string) []nats.Option {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Server != nil {
		opts = append(opts, nats.InProcessServer(c.Server))
	}
	return opts
}

// Connect dials NATS as client name.
func (c NATSClient) Connect(name string) (*nats.Conn, error) {
	url := c.url()
	if c.Server != nil {
		url = ""
	}
	nc, err := nats.Connect(url, c.options(name)...)
	if err != nil {
		if c.Server != nil {
			return nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
		}
		return nil, fmt.Errorf("connect to NATS %s: %w", c.Redacted(), err)
	}
	return nc, nil
}
