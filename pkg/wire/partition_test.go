package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultPartitionKeepsV1Subjects(t *testing.T) {
	var zero Partition
	for _, p := range []Partition{zero, MustPartition(""), MustPartition(DefaultPartition)} {
		if !p.IsDefault() || p.Name() != DefaultPartition {
			t.Fatalf("%#v: want the default partition", p)
		}
		for kind, want := range map[string]string{
			KindIn: "securelog.in.s", KindAppend: "securelog.append.s", KindClose: "securelog.close.s",
			KindAppended: "securelog.appended.s", KindSealed: "securelog.sealed.s", KindCheckpoint: "securelog.checkpoint.s",
			KindCommitted: "securelog.committed.s", KindAlert: "securelog.alert.s", KindDLQ: "securelog.dlq.s",
		} {
			if got := p.Subject(kind, "s"); got != want || got != SubjectFor(kind, "s") {
				t.Errorf("default %s: %q, want %q", kind, got, want)
			}
		}
		if p.RPCSubject() != "securelog.rpc" || p.RPCSubject() != DefaultNATSSubject {
			t.Errorf("rpc subject %q", p.RPCSubject())
		}
		if p.CommitLookupSubject() != CommitLookupSubject || p.InStream() != InStream || p.InSubjects() != InSubjects {
			t.Errorf("lookup %q, in stream %q, in subjects %q", p.CommitLookupSubject(), p.InStream(), p.InSubjects())
		}
		if p.Durable("securelog-ingester") != "securelog-ingester" {
			t.Errorf("durable %q", p.Durable("securelog-ingester"))
		}
	}
}

func TestPartitionSubjects(t *testing.T) {
	p := MustPartition("eu-1")
	for kind, want := range map[string]string{
		KindIn: "securelog.p.eu-1.in.s", KindAppend: "securelog.p.eu-1.append.s", KindClose: "securelog.p.eu-1.close.s",
		KindAppended: "securelog.p.eu-1.appended.s", KindSealed: "securelog.p.eu-1.sealed.s",
		KindCheckpoint: "securelog.p.eu-1.checkpoint.s",
		// Named by the stream alone: never partitioned.
		KindCommitted: "securelog.committed.s", KindAlert: "securelog.alert.s", KindDLQ: "securelog.dlq.s",
	} {
		if got := p.Subject(kind, "s"); got != want {
			t.Errorf("%s: %q, want %q", kind, got, want)
		}
		if st, ok := p.StreamOf(kind, want); !ok || st != "s" {
			t.Errorf("StreamOf(%s, %q) = %q, %v", kind, want, st, ok)
		}
	}
	if got := p.Wildcard(KindSealed); got != "securelog.p.eu-1.sealed.>" {
		t.Errorf("wildcard %q", got)
	}
	if p.RPCSubject() != "securelog.p.eu-1.rpc" || p.CommitLookupSubject() != "securelog.p.eu-1.lookup.commit" {
		t.Errorf("rpc %q lookup %q", p.RPCSubject(), p.CommitLookupSubject())
	}
	if p.Tlog(TlogHeadSubject) != "securelog.p.eu-1.tlog.head" || (Partition{}).Tlog(TlogHeadSubject) != TlogHeadSubject {
		t.Errorf("tlog subject %q", p.Tlog(TlogHeadSubject))
	}
	if p.AppendedStream() != "SECURELOG_APPENDED_eu-1" || p.SealedStream() != "SECURELOG_SEALED_eu-1" ||
		(Partition{}).AppendedStream() != AppendedStream || (Partition{}).SealedStream() != SealedStream {
		t.Errorf("announcement streams %q %q", p.AppendedStream(), p.SealedStream())
	}
	if p.InStream() != "SECURELOG_IN_eu-1" || p.InSubjects() != "securelog.p.eu-1.in.>" || p.Durable("d") != "d-eu-1" {
		t.Errorf("in stream %q subjects %q durable %q", p.InStream(), p.InSubjects(), p.Durable("d"))
	}
	// A partition's subjects are never matched by another partition's
	// wildcards (that was issue 14's defect: one queue group for all).
	def := Partition{}
	for _, kind := range []string{KindIn, KindAppend, KindClose, KindAppended, KindSealed, KindCheckpoint} {
		if _, ok := def.StreamOf(kind, p.Subject(kind, "s")); ok {
			t.Errorf("default partition's %s matches %q", kind, p.Subject(kind, "s"))
		}
		if _, ok := p.StreamOf(kind, def.Subject(kind, "s")); ok {
			t.Errorf("partition eu-1's %s matches %q", kind, def.Subject(kind, "s"))
		}
		if _, ok := p.StreamOf(kind, MustPartition("eu-2").Subject(kind, "s")); ok {
			t.Errorf("partition eu-1's %s matches eu-2's subject", kind)
		}
		if strings.HasPrefix(p.Subject(kind, "s"), strings.TrimSuffix(def.Wildcard(kind), ">")) {
			t.Errorf("default wildcard %q covers %q", def.Wildcard(kind), p.Subject(kind, "s"))
		}
	}
}

func TestPartitionNames(t *testing.T) {
	for _, ok := range []string{"a", "eu-1", "P_2", strings.Repeat("x", 32)} {
		if err := CheckPartitionName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a.b", "a b", "a*", "a>", "é", "a/b", strings.Repeat("x", 33)} {
		err := CheckPartitionName(bad)
		var inv *InvalidError
		if !errors.As(err, &inv) {
			t.Errorf("%q: want *InvalidError, got %v", bad, err)
		}
		if bad != "" {
			if _, err := NewPartition(bad); err == nil {
				t.Errorf("NewPartition(%q) accepted", bad)
			}
		}
	}
}

func TestPartitionErrors(t *testing.T) {
	u := &UnknownPartitionError{Name: "p9", Known: []string{"default", "p1"}}
	if msg := u.Error(); !strings.Contains(msg, `"p9"`) || !strings.Contains(msg, "default, p1") {
		t.Errorf("unknown: %s", msg)
	}
	c := &PartitionConflictError{Stream: "s", Owner: "p1", Want: "p2"}
	if msg := c.Error(); !strings.Contains(msg, `partition "p1"`) || !strings.Contains(msg, `"p2"`) {
		t.Errorf("conflict: %s", msg)
	}
}

func TestPartitionOf(t *testing.T) {
	for subject, want := range map[string][2]string{
		"securelog.in.s":               {"default", "s"},
		"securelog.p.eu-1.in.s":        {"eu-1", "s"},
		"securelog.p.default.in.s":     {"", ""}, // the default partition has no p. form
		"securelog.p.eu-1.append.s":    {"", ""}, // wrong kind
		"securelog.p.bad*name.in.s":    {"", ""},
		"securelog.p.eu-1.in.s.t":      {"", ""},
		"securelog.committed.s":        {"", ""},
		"securelog.p.eu-1.committed.s": {"", ""},
	} {
		p, s, ok := PartitionOf(KindIn, subject)
		if ok != (want[0] != "") || ok && (p.Name() != want[0] || s != want[1]) {
			t.Errorf("PartitionOf(in, %q) = %v, %q, %v; want %v", subject, p, s, ok, want)
		}
	}
}
