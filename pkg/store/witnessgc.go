package store

import (
	"fmt"
	"time"

	"github.com/securelog/securelog/pkg/wire"
)

// WitnessGCPolicy is the witness-log GC rule of SPEC §15.5 with DECISIONS 18,
// as pure logic every backend applies to its rows: per stream, the
// KeepLatest newest rows (by id) are kept (0 keeps none); with no rows kept
// and no cutoff nothing is deleted; otherwise every other row is deleted,
// or, with a cutoff, every other row received strictly before it (times
// compared parsed; a row whose received_at does not parse is never older).
type WitnessGCPolicy struct {
	KeepLatest int
	// Cutoff is the parsed older_than; HasCutoff says whether one was given.
	Cutoff    time.Time
	HasCutoff bool
}

// NewWitnessGCPolicy builds the policy from WitnessGC's arguments. An
// older_than that is not RFC 3339 is an error (nothing may be deleted then).
func NewWitnessGCPolicy(keepLatest *uint32, olderThan *string) (WitnessGCPolicy, error) {
	var p WitnessGCPolicy
	if keepLatest != nil {
		p.KeepLatest = int(*keepLatest)
	}
	if olderThan != nil {
		t, err := wire.ParseTime(*olderThan)
		if err != nil {
			return WitnessGCPolicy{}, fmt.Errorf("witness gc: older_than %q is not an RFC 3339 time: %w", *olderThan, err)
		}
		p.Cutoff, p.HasCutoff = t, true
	}
	return p, nil
}

// DeletesNothing reports whether the policy deletes no row of any stream
// (nothing kept and no cutoff, SPEC §15.5 step 2), so a backend can skip
// reading rows.
func (p WitnessGCPolicy) DeletesNothing() bool { return p.KeepLatest <= 0 && !p.HasCutoff }

// Victims returns the ids to delete among one stream's rows, which must be
// given in ascending id order.
func (p WitnessGCPolicy) Victims(rows []wire.WitnessRow) []int64 {
	if p.DeletesNothing() {
		return nil
	}
	keep := min(max(p.KeepLatest, 0), len(rows))
	var out []int64
	for _, r := range rows[:len(rows)-keep] {
		if p.HasCutoff && !p.Older(r.ReceivedAt) {
			continue
		}
		out = append(out, r.ID)
	}
	return out
}

// Older reports whether receivedAt parses and is strictly before the cutoff.
func (p WitnessGCPolicy) Older(receivedAt string) bool {
	t, err := wire.ParseTime(receivedAt)
	return err == nil && t.Before(p.Cutoff)
}
