package securelog

import (
	"context"

	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/wire"
)

// StreamInfo is the caller-facing stream (SPEC §3.5).
type StreamInfo struct {
	Name         string  `json:"name"`
	Tier         string  `json:"tier"`
	Description  *string `json:"description"`
	CreatedAt    string  `json:"created_at_rfc3339"`
	DeprecatedAt *uint64 `json:"deprecated_at"`
}

// CreateStream creates a stream with a tier (SPEC §14.12, DECISIONS 9):
// the same values again are a no-op; an unknown tier, a tier change on a
// stream with entries, or re-creating a deprecated stream is invalid.
func (l *Log) CreateStream(ctx context.Context, name, tier string, description *string) error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	// One stream-name rule everywhere: the pipeline's (a NATS subject
	// token without control, bidi or zero-width characters).
	if err := wire.CheckStreamToken(name); err != nil {
		return err
	}
	if !seal.ValidTierExact(tier) {
		return wire.Invalidf("unknown tier %q: expected public, protected or highly-restricted", tier)
	}
	if tier != seal.TierPublic {
		if err := seal.CheckStreamID(name); err != nil {
			return wire.Invalidf("%v", err)
		}
	}
	l.lockIdle()
	defer l.mu.Unlock()
	row, ok, err := l.st.StreamGet(ctx, name)
	if err != nil {
		return storageErr(err, "get stream %q", name)
	}
	if ok {
		if row.DeprecatedAt != nil {
			return wire.Invalidf("stream '%s' is deprecated (since %s) and cannot be re-created", name, *row.DeprecatedAt)
		}
		if row.Tier == tier && eqOpt(row.Description, description) {
			return nil
		}
		if row.Tier != tier {
			if _, has, err := l.st.Head(ctx, name); err != nil {
				return storageErr(err, "head of %q", name)
			} else if has {
				return wire.Invalidf("stream '%s' already has entries with tier %s; its tier cannot change to %s", name, row.Tier, tier)
			}
		}
		row.Tier, row.Description = tier, description
		return storageErr(l.st.StreamUpsert(ctx, row), "update stream %q", name)
	}
	row = wire.StreamRow{Name: name, Tier: tier, Description: description, CreatedAt: l.timestamp()}
	return storageErr(l.st.StreamUpsert(ctx, row), "create stream %q", name)
}

// DeprecateStream marks a stream deprecated (SPEC §14.14); an unknown stream
// is *wire.StreamNotFoundError (DECISIONS 14).
func (l *Log) DeprecateStream(ctx context.Context, name string) error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	l.lockIdle()
	defer l.mu.Unlock()
	if _, ok, err := l.st.StreamGet(ctx, name); err != nil {
		return storageErr(err, "get stream %q", name)
	} else if !ok {
		return &wire.StreamNotFoundError{Stream: name}
	}
	return storageErr(l.st.StreamDeprecate(ctx, name, l.timestamp()), "deprecate stream %q", name)
}

func eqOpt(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}
