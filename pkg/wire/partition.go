package wire

import (
	"fmt"
	"strings"
)

// Partitions (DESIGN.md "Partitions", docs/scaling.md). A partition owns a
// set of audit streams and has its own store, ingester, sealer and signer.
// Every subject that is request/reply or an announcement of one partition
// carries the partition's name, so two partitions on one NATS system never
// answer each other's requests or act on each other's segments:
//
//	subject kind          partition "default" (v1 names)   partition P
//	in (JetStream)        securelog.in.<stream>            securelog.p.P.in.<stream>
//	store RPC             securelog.rpc                    securelog.p.P.rpc
//	append                securelog.append.<stream>        securelog.p.P.append.<stream>
//	close                 securelog.close.<stream>         securelog.p.P.close.<stream>
//	commit lookup         securelog.lookup.commit          securelog.p.P.lookup.commit
//	appended              securelog.appended.<stream>      securelog.p.P.appended.<stream>
//	sealed                securelog.sealed.<stream>        securelog.p.P.sealed.<stream>
//	checkpoint            securelog.checkpoint.<stream>    securelog.p.P.checkpoint.<stream>
//	tlog (head, tile, …)  securelog.tlog.head              securelog.p.P.tlog.head
//
// The default partition keeps today's names, so a single-node setup and a
// v1 JSON-RPC client on securelog.rpc work unchanged. Subjects named by the
// stream alone — committed receipts, alerts and dead letters — are not
// partitioned: a stream belongs to exactly one partition, so they cannot
// collide. Partition P's events live in their own JetStream stream
// (SECURELOG_IN_P), a Raft group of its own that the cluster can place on
// other servers: partitions scale JetStream as well as the ingesters.
const (
	// DefaultPartition is the partition of single-node setups and of every
	// stream that was never assigned elsewhere.
	DefaultPartition = "default"
	// PartitionSubjectPrefix starts every subject of a non-default partition.
	PartitionSubjectPrefix = "securelog.p."
	// maxPartitionName bounds a partition name (it is part of subjects,
	// JetStream stream names and consumer names).
	maxPartitionName = 32
)

// CheckPartitionName reports whether name can name a partition: 1 to 32
// characters of [A-Za-z0-9_-] (one NATS token, a valid JetStream stream
// name suffix and KV key).
func CheckPartitionName(name string) error {
	if name == "" {
		return Invalidf("partition name is empty")
	}
	if len(name) > maxPartitionName {
		return Invalidf("partition name %q is longer than %d characters", name, maxPartitionName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return Invalidf("partition name %q may only contain letters, digits, '_' and '-'", name)
		}
	}
	return nil
}

// Partition gives every subject and JetStream name of one partition. Its
// zero value is the default partition.
type Partition struct {
	name string // "" = DefaultPartition
}

// NewPartition returns the partition called name ("" = DefaultPartition).
// An invalid name is an *InvalidError.
func NewPartition(name string) (Partition, error) {
	if name == "" || name == DefaultPartition {
		return Partition{}, nil
	}
	if err := CheckPartitionName(name); err != nil {
		return Partition{}, err
	}
	return Partition{name: name}, nil
}

// MustPartition is NewPartition for names known to be valid; it panics on
// an invalid one.
func MustPartition(name string) Partition {
	p, err := NewPartition(name)
	if err != nil {
		panic(err)
	}
	return p
}

// Name returns the partition's name (DefaultPartition for the default one).
func (p Partition) Name() string {
	if p.name == "" {
		return DefaultPartition
	}
	return p.name
}

// String returns the partition's name.
func (p Partition) String() string { return p.Name() }

// IsDefault reports whether p is the default partition.
func (p Partition) IsDefault() bool { return p.name == "" }

// Partitioned reports whether subjects of kind carry the partition (all
// kinds but committed, alert and dead-letter, which the stream alone names).
func Partitioned(kind string) bool {
	switch kind {
	case KindCommitted, KindAlert, KindDLQ:
		return false
	}
	return true
}

// Kind returns the subject prefix of kind (a Kind* constant) in p:
// "securelog.append." in the default partition, "securelog.p.P.append." in
// partition P; kinds that are not Partitioned are returned unchanged.
func (p Partition) Kind(kind string) string {
	if p.name == "" || !Partitioned(kind) {
		return kind
	}
	return PartitionSubjectPrefix + p.name + "." + strings.TrimPrefix(kind, "securelog.")
}

// Subject returns the subject of kind for stream in p.
func (p Partition) Subject(kind, stream string) string { return p.Kind(kind) + stream }

// Wildcard returns the subscription filter of kind over all of p's streams.
func (p Partition) Wildcard(kind string) string { return p.Kind(kind) + ">" }

// StreamOf returns the stream token of a subject of kind in p, or false if
// the subject is not of that kind in p or its stream is not one valid token.
func (p Partition) StreamOf(kind, subject string) (string, bool) {
	return StreamOf(p.Kind(kind), subject)
}

// RPCSubject returns the request subject of p's store RPC
// (DefaultNATSSubject in the default partition).
func (p Partition) RPCSubject() string {
	if p.name == "" {
		return DefaultNATSSubject
	}
	return PartitionSubjectPrefix + p.name + ".rpc"
}

// CommitLookupSubject returns the subject of p's commit lookups
// (CommitLookupSubject in the default partition).
func (p Partition) CommitLookupSubject() string {
	if p.name == "" {
		return CommitLookupSubject
	}
	return PartitionSubjectPrefix + p.name + ".lookup.commit"
}

// InStream returns the JetStream stream holding p's incoming events
// (InStream in the default partition, SECURELOG_IN_P otherwise).
func (p Partition) InStream() string {
	return p.suffixed(InStream)
}

// AppendedStream returns the JetStream work queue of p's appended
// announcements (AppendedStream in the default partition); its subjects
// are p.Wildcard(KindAppended).
func (p Partition) AppendedStream() string { return p.suffixed(AppendedStream) }

// SealedStream returns the JetStream work queue of p's sealed
// announcements (SealedStream in the default partition); its subjects are
// p.Wildcard(KindSealed).
func (p Partition) SealedStream() string { return p.suffixed(SealedStream) }

func (p Partition) suffixed(name string) string {
	if p.name == "" {
		return name
	}
	return name + "_" + p.name
}

// Tlog returns p's form of a transparency-log subject (TlogHeadSubject,
// TlogTileSubject, TlogLatestSubject, TlogCheckpointSubject): unchanged
// in the default partition, securelog.p.P.tlog.… in partition P, whose
// tree and checkpoints are its own.
func (p Partition) Tlog(subject string) string {
	if p.name == "" {
		return subject
	}
	return PartitionSubjectPrefix + p.name + "." + strings.TrimPrefix(subject, "securelog.")
}

// InSubjects returns the subject filter of p's JetStream stream
// (InSubjects in the default partition).
func (p Partition) InSubjects() string { return p.Wildcard(KindIn) }

// Durable returns the name of p's durable consumer or queue group called
// base: base itself in the default partition, base-P otherwise.
func (p Partition) Durable(base string) string {
	if p.name == "" {
		return base
	}
	return base + "-" + p.name
}

// UnknownPartitionError is a partition name that is not in the partition
// map; Known lists the partitions that are.
type UnknownPartitionError struct {
	Name  string
	Known []string
}

func (e *UnknownPartitionError) Error() string {
	return fmt.Sprintf("unknown partition %q (known partitions: %s; add one with 'securelog partitions add NAME')",
		e.Name, strings.Join(e.Known, ", "))
}

// PartitionConflictError refuses to assign a stream that already belongs
// to another partition: a stream's chain cannot be split.
type PartitionConflictError struct {
	Stream string
	Owner  string
	Want   string
}

func (e *PartitionConflictError) Error() string {
	return fmt.Sprintf("stream %q belongs to partition %q: it cannot be assigned to %q (a stream stays in one partition for life)",
		e.Stream, e.Owner, e.Want)
}

// PartitionOf returns the partition and stream of a subject of kind in any
// partition ("securelog.append.s" → default, "s";
// "securelog.p.P.append.s" → P, "s"), or false if it is neither.
func PartitionOf(kind, subject string) (Partition, string, bool) {
	if rest, ok := strings.CutPrefix(subject, PartitionSubjectPrefix); ok && Partitioned(kind) {
		name, _, found := strings.Cut(rest, ".")
		p, err := NewPartition(name)
		if !found || err != nil || p.IsDefault() {
			return Partition{}, "", false
		}
		s, ok := p.StreamOf(kind, subject)
		return p, s, ok
	}
	s, ok := StreamOf(kind, subject)
	return Partition{}, s, ok
}
