// Package partition keeps the partition map of a securelog deployment:
// which partition owns each audit stream, and which partitions exist. The
// map lives in a JetStream KV bucket (Bucket) so that every client and
// worker routes the same way (issue 14, docs/scaling.md).
//
// Rules: the default partition always exists; a stream that was never
// assigned belongs to the default partition (the default rule) until an
// ingester claims it at its first event; an assignment or claim is
// permanent (a stream's chain cannot be split between stores), so
// assigning a stream that already belongs elsewhere is refused with its
// owner's name.
package partition

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/securelog/securelog/pkg/wire"
)

// Bucket is the JetStream KV bucket of the partition map.
const Bucket = "SECURELOG_PARTITIONS"

// Key layout of the bucket:
//
//	partition.<name>   a registered partition (value: its name)
//	stream.<name>      stream → owning partition, for stream names of [A-Za-z0-9_-]
//	streamx.<b64>      the same for any other stream name (unpadded base64url of its bytes)
//	http.<name>        the URL of the partition's HTTP listener (http.go)
const (
	partitionPrefix = "partition."
	streamPrefix    = "stream."
	streamXPrefix   = "streamx."
)

// PartitionKey returns the bucket key registering partition name.
func PartitionKey(name string) string { return partitionPrefix + name }

// StreamKey returns the bucket key of stream's owner. KV keys allow only
// [-/_=.a-zA-Z0-9], so other stream names are base64url-encoded.
func StreamKey(stream string) string {
	if plainToken(stream) {
		return streamPrefix + stream
	}
	return streamXPrefix + base64.RawURLEncoding.EncodeToString([]byte(stream))
}

// ParseKey returns the stream or partition a bucket key names.
func ParseKey(key string) (stream, partition string, err error) {
	switch {
	case strings.HasPrefix(key, partitionPrefix):
		return "", strings.TrimPrefix(key, partitionPrefix), nil
	case strings.HasPrefix(key, streamPrefix):
		return strings.TrimPrefix(key, streamPrefix), "", nil
	case strings.HasPrefix(key, streamXPrefix):
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(key, streamXPrefix))
		if err != nil {
			return "", "", fmt.Errorf("partition map key %q: %w", key, err)
		}
		return string(b), "", nil
	}
	return "", "", fmt.Errorf("partition map key %q is neither partition.<name> nor stream.<name>", key)
}

func plainToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Snapshot is the whole partition map at one moment.
type Snapshot struct {
	// Partitions are the known partitions, DefaultPartition first, then by name.
	Partitions []string
	// Owners maps every assigned or claimed stream to its partition.
	Owners map[string]string
}

// Owner returns stream's partition under the default rule, and whether
// it was assigned (false: it goes to the default partition).
func (s Snapshot) Owner(stream string) (string, bool) {
	if p, ok := s.Owners[stream]; ok {
		return p, true
	}
	return wire.DefaultPartition, false
}

// Streams returns the streams assigned to partition, sorted.
func (s Snapshot) Streams(partition string) []string {
	var out []string
	for st, p := range s.Owners {
		if p == partition {
			out = append(out, st)
		}
	}
	slices.Sort(out)
	return out
}

// sortPartitions orders names default first, then by name, without duplicates.
func sortPartitions(names []string) []string {
	seen := map[string]bool{wire.DefaultPartition: true}
	out := []string{wire.DefaultPartition}
	var rest []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}
