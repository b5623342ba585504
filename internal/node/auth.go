package node

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/secretfile"
	"github.com/securelog/securelog/pkg/wire"
)

// `securelog up` is authenticated by default (issue 9 item 3): at first
// start it generates, in DATA/auth (0700, every file 0600),
//
//	<role>.nk      the nkey seed of the NATS user of each Role (the embedded
//	               nats-server knows only the public keys and each role's
//	               subject permissions, RolePermissions)
//	reader.token   bearer token of the store RPC's reader role (HTTP)
//	writer.token   bearer token of the store RPC's writer role (HTTP)
//
// The in-process workers connect as their roles; `publish` and the client
// commands find the files in the data directory (or take --creds FILE /
// --token-file FILE). `up --insecure` keeps the listeners open.

// The NATS roles of `securelog up`.
const (
	// RoleProducer publishes events (securelog.in.>, append requests,
	// commit lookups), reads its receipts and checkpoints and may read the
	// store (the read-only RPC subject); it cannot reach the mutating store
	// RPC.
	RoleProducer = "producer"
	// RoleIngester is the store's single writer: it consumes SECURELOG_IN
	// and serves appends, closes, commit lookups and the store RPC.
	RoleIngester = "ingester"
	// RoleSealer asks the ingester to close segments and reads the store.
	RoleSealer = "sealer"
	// RoleSigner signs segments (writer on the store RPC), submits to
	// witnesses and publishes checkpoints and alerts.
	RoleSigner = "signer"
	// RoleWitness serves witness submissions and reads the store.
	RoleWitness = "witness"
	// RoleReader reads the store and watches checkpoints, receipts and
	// alerts (auditors, dashboards).
	RoleReader = "reader"
	// RoleAdmin is the operator's client commands on the host: the writer
	// role of the store RPC, publishing, and every event subject.
	RoleAdmin = "admin"
)

// Roles lists every NATS role, in the order up generates them.
var Roles = []string{RoleProducer, RoleIngester, RoleSealer, RoleSigner, RoleWitness, RoleReader, RoleAdmin}

// AuthDir returns the credentials directory of a data directory.
func AuthDir(dataDir string) string { return filepath.Join(dataDir, "auth") }

// NKeyFile returns the nkey seed file of role in a data directory.
func NKeyFile(dataDir, role string) string { return filepath.Join(AuthDir(dataDir), role+".nk") }

// TokenFile returns the store RPC bearer token file of an RPC role
// (rpcserver.RoleReader or RoleWriter) in a data directory.
func TokenFile(dataDir string, role rpcserver.Role) string {
	return filepath.Join(AuthDir(dataDir), string(role)+".token")
}

// requestSubjects may be subscribed to only by the processes that serve
// them: a request (and any header it carries) is visible to its
// subscribers. Every partition's request subjects are included
// (securelog.p.*.…).
var requestSubjects = []string{"securelog.rpc", "securelog.rpc.>", "securelog.append.>", "securelog.close.>",
	"securelog.lookup.>", "securelog.witness.submit", wire.TlogLatestSubject, wire.TlogHeadSubject, wire.TlogTileSubject,
	"securelog.p.*.rpc", "securelog.p.*.rpc.>", "securelog.p.*.append.>", "securelog.p.*.close.>", "securelog.p.*.lookup.>",
	"securelog.p.*.tlog.latest", "securelog.p.*.tlog.head", "securelog.p.*.tlog.tile"}

// partitionMapRead is what a client needs to read the partition map (the
// KV bucket partition.Bucket): bind, get (direct, and through the leader
// for a key a replica does not have yet), and list (an ordered consumer).
var partitionMapRead = []string{"$JS.API.INFO", "$JS.API.STREAM.INFO.KV_" + partition.Bucket, "$JS.API.DIRECT.GET.KV_" + partition.Bucket + ".>",
	"$JS.API.STREAM.MSG.GET.KV_" + partition.Bucket,
	"$JS.API.CONSUMER.CREATE.KV_" + partition.Bucket + ".>", "$JS.API.CONSUMER.DELETE.KV_" + partition.Bucket + ".>", "$JS.FC.KV_" + partition.Bucket + ".>"}

// RolePermissions returns the subject permissions of a role (nil for an
// unknown role) in the default partition and in each of parts (issue 14:
// a partition's subjects and JetStream names are its own, wire.Partition).
// Request subjects are subscribable only by their servers (ingester:
// store RPC, appends, closes, lookups; witness: submissions), which answer
// through allow_responses. Every role but the witness may read the
// partition map; the ingester claims streams in it.
func RolePermissions(role string, parts ...wire.Partition) *server.Permissions {
	if role == RoleAdmin {
		return &server.Permissions{Publish: &server.SubjectPermission{Allow: []string{">"}},
			Subscribe: &server.SubjectPermission{Allow: []string{">"}, Deny: requestSubjects}}
	}
	var pub, sub []string
	seen := map[string]bool{}
	for _, p := range append([]wire.Partition{{}}, parts...) {
		if seen[p.Name()] {
			continue
		}
		seen[p.Name()] = true
		pp, ps := rolePartition(role, p)
		if pp == nil && ps == nil {
			return nil
		}
		pub, sub = append(pub, pp...), append(sub, ps...)
	}
	var deny []string
	switch role {
	case RoleIngester:
		pub = append(pub, "securelog.committed.>", "securelog.alert.>", "securelog.dlq.>", "$JS.API.>", "$KV."+partition.Bucket+".>", pipeline.MarkSubjects, "_INBOX.>")
		sub = append(sub, "securelog.alert.>", "securelog.committed.>", "_INBOX.>") // alerts and receipts: the query API
	case RoleWitness:
		pub = append(pub, "securelog.alert.>")
		sub = append(sub, "securelog.witness.submit", "_INBOX.>")
	case RoleProducer:
		pub = append(pub, partitionMapRead...)
		sub, deny = append(sub, "securelog.committed.>", "_INBOX.>"), requestSubjects
	case RoleSealer:
		pub = append(pub, partitionMapRead...)
		sub, deny = append(sub, "_INBOX.>"), requestSubjects
	case RoleSigner:
		pub = append(pub, append([]string{"securelog.alert.>", "securelog.witness.submit"}, partitionMapRead...)...)
		// The checkpointer serves tlog.latest: the signer may read those
		// requests (they carry nothing but the ask), no other.
		sub, deny = append(sub, "_INBOX.>"), without(requestSubjects, wire.TlogLatestSubject, "securelog.p.*.tlog.latest")
	case RoleReader:
		pub = append(pub, partitionMapRead...)
		sub = append(sub, "securelog.committed.>", "securelog.alert.>", "securelog.dlq.>", "_INBOX.>")
		deny = requestSubjects
	}
	perm := &server.Permissions{Publish: &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub, Deny: deny}}
	if role == RoleIngester || role == RoleWitness || role == RoleSigner {
		perm.Response = &server.ResponsePermission{MaxMsgs: 1}
	}
	return perm
}

// rolePartition returns the subjects role publishes and subscribes to in
// partition p (nil, nil for an unknown role or one without any).
func rolePartition(role string, p wire.Partition) (pub, sub []string) {
	rpc, rpcRead := p.RPCSubject(), p.RPCSubject()+".read"
	switch role {
	case RoleProducer:
		return []string{p.Wildcard(wire.KindIn), p.Wildcard(wire.KindAppend), p.CommitLookupSubject(), rpcRead, p.Tlog(wire.TlogLatestSubject),
				"$JS.API.STREAM.INFO." + p.InStream()},
			[]string{p.Wildcard(wire.KindCheckpoint), p.Tlog(wire.TlogCheckpointSubject)}
	case RoleIngester:
		return []string{p.Wildcard(wire.KindAppended), p.Wildcard(wire.KindSealed), p.Tlog(wire.TlogCheckpointSubject), "$JS.ACK." + p.InStream() + ".>"},
			[]string{p.Wildcard(wire.KindAppend), p.Wildcard(wire.KindClose), p.CommitLookupSubject(), rpc, rpcRead,
				p.Tlog(wire.TlogLatestSubject), p.Tlog(wire.TlogHeadSubject), p.Tlog(wire.TlogTileSubject)}
	case RoleSealer:
		return append([]string{p.Wildcard(wire.KindClose), rpcRead}, durableConsumer(p.AppendedStream())...),
			[]string{p.Wildcard(wire.KindAppended)}
	case RoleSigner:
		return append([]string{rpc, rpcRead, p.Wildcard(wire.KindCheckpoint),
				p.Tlog(wire.TlogCheckpointSubject), p.Tlog(wire.TlogHeadSubject), p.Tlog(wire.TlogTileSubject)},
				durableConsumer(p.SealedStream())...),
			// A split signer runs the C2SP checkpointer, which answers
			// tlog.latest (`up` runs it under the ingester role).
			[]string{p.Wildcard(wire.KindSealed), p.Tlog(wire.TlogLatestSubject)}
	case RoleWitness:
		return []string{rpcRead}, []string{}
	case RoleReader:
		return []string{rpcRead, p.CommitLookupSubject(), p.Tlog(wire.TlogLatestSubject)},
			[]string{p.Wildcard(wire.KindCheckpoint), p.Tlog(wire.TlogCheckpointSubject), p.Wildcard(wire.KindSealed)}
	}
	return nil, nil
}

// without returns list without the subjects in drop (a new slice).
func without(list []string, drop ...string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if !slices.Contains(drop, s) {
			out = append(out, s)
		}
	}
	return out
}

// durableConsumer is what a worker needs to consume the JetStream stream
// with its durable pull consumer (any durable name).
func durableConsumer(stream string) []string {
	return []string{"$JS.API.STREAM.INFO." + stream, "$JS.API.CONSUMER.INFO." + stream + ".>",
		"$JS.API.CONSUMER.CREATE." + stream + ".>", "$JS.API.CONSUMER.DURABLE.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + stream + ".>", "$JS.ACK." + stream + ".>"}
}

// Credentials are the generated credentials of a data directory.
type Credentials struct {
	// Dir is DATA/auth.
	Dir     string
	dataDir string
	public  map[string]string // role → nkey public key
	// ReaderToken and WriterToken are the store RPC's bearer tokens.
	ReaderToken, WriterToken string
}

// EnsureCredentials loads the credentials of dataDir, generating whatever
// is missing (first start): DATA/auth with mode 0700, one nkey seed per
// role and the reader and writer tokens, each 0600. A credentials file
// other users can read is refused unless p allows it. created lists the
// files it wrote.
func EnsureCredentials(dataDir string, p secretfile.Policy) (c *Credentials, created []string, err error) {
	c = &Credentials{Dir: AuthDir(dataDir), dataDir: dataDir, public: map[string]string{}}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("credentials directory: %w", err)
	}
	if st, err := os.Stat(c.Dir); err != nil {
		return nil, nil, fmt.Errorf("credentials directory: %w", err)
	} else if err := secretfile.Check("credentials directory", c.Dir, st.Mode(), p); err != nil {
		return nil, nil, err
	}
	for _, role := range Roles {
		path := NKeyFile(dataDir, role)
		kp, made, err := loadOrCreate(path, p, func() ([]byte, error) {
			kp, err := nkeys.CreateUser()
			if err != nil {
				return nil, err
			}
			seed, err := kp.Seed()
			if err != nil {
				return nil, err
			}
			return append(seed, '\n'), nil
		})
		if err != nil {
			return nil, nil, err
		}
		if made {
			created = append(created, path)
		}
		k, err := parseSeed(path, kp)
		if err != nil {
			return nil, nil, err
		}
		pub, err := k.PublicKey()
		if err != nil {
			return nil, nil, fmt.Errorf("nkey %s: %w", path, err)
		}
		c.public[role] = pub
	}
	for _, t := range []struct {
		role rpcserver.Role
		dst  *string
	}{{rpcserver.RoleReader, &c.ReaderToken}, {rpcserver.RoleWriter, &c.WriterToken}} {
		path := TokenFile(dataDir, t.role)
		b, made, err := loadOrCreate(path, p, func() ([]byte, error) {
			r := make([]byte, 32)
			if _, err := rand.Read(r); err != nil {
				return nil, err
			}
			return []byte(string(t.role) + "-" + hex.EncodeToString(r) + "\n"), nil
		})
		if err != nil {
			return nil, nil, err
		}
		if made {
			created = append(created, path)
		}
		if *t.dst = strings.TrimSpace(string(b)); *t.dst == "" {
			return nil, nil, fmt.Errorf("token file %s is empty (delete it to generate a new token)", path)
		}
	}
	return c, created, nil
}

// loadOrCreate reads the secret file path, creating it with gen's content
// (mode 0600) if it does not exist.
func loadOrCreate(path string, p secretfile.Policy, gen func() ([]byte, error)) (data []byte, created bool, err error) {
	data, err = secretfile.Read("credentials file", path, p)
	if err == nil {
		return data, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if data, err = gen(); err != nil {
		return nil, false, fmt.Errorf("generate %s: %w", path, err)
	}
	if err := secretfile.WriteNew(path, data); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process made it first
			data, err = secretfile.Read("credentials file", path, p)
			return data, false, err
		}
		return nil, false, fmt.Errorf("write %s: %w", path, err)
	}
	return data, true, nil
}

// parseSeed parses an nkey seed file's content.
func parseSeed(path string, data []byte) (nkeys.KeyPair, error) {
	kp, err := nkeys.ParseDecoratedNKey(data)
	if err != nil {
		return nil, fmt.Errorf("nkey seed file %s: %w", path, err)
	}
	return kp, nil
}

// NkeyUsers returns the embedded server's users: every role's public key
// with its permissions in the default partition and in parts.
func (c *Credentials) NkeyUsers(parts ...wire.Partition) []*server.NkeyUser {
	users := make([]*server.NkeyUser, 0, len(Roles))
	for _, role := range Roles {
		users = append(users, &server.NkeyUser{Nkey: c.public[role], Permissions: RolePermissions(role, parts...)})
	}
	return users
}

// Client returns how role connects to server s (in-process).
func (c *Credentials) Client(role string, s *server.Server) NATSClient {
	return NATSClient{Server: s, NKeyFile: NKeyFile(c.dataDir, role)}
}

// Tokens returns the store RPC's tokens (reader and writer).
func (c *Credentials) Tokens() []rpcserver.TokenEntry {
	return []rpcserver.TokenEntry{{Token: c.ReaderToken, Role: rpcserver.RoleReader}, {Token: c.WriterToken, Role: rpcserver.RoleWriter}}
}

// IsNATSCredsFile reports whether data is a NATS credentials file (a user
// JWT with its nkey seed) rather than a bare nkey seed.
func IsNATSCredsFile(data []byte) bool {
	return bytes.Contains(data, []byte("BEGIN NATS USER JWT"))
}
