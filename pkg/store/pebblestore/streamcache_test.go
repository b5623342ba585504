package pebblestore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

// StreamGet answers from a cache of stream rows: every write through the
// store shows at once, and a caller that changes a returned row does not
// change what the next StreamGet returns.
func TestStreamGetSeesEveryWrite(t *testing.T) {
	ctx := context.Background()
	s := pebblestore.New(quiet())
	if err := s.Init(ctx, filepath.Join(t.TempDir(), "db")); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func() wire.StreamRow {
		t.Helper()
		r, ok, err := s.StreamGet(ctx, "app")
		if err != nil || !ok {
			t.Fatalf("StreamGet: %v %v", ok, err)
		}
		return r
	}
	if _, ok, err := s.StreamGet(ctx, "app"); ok || err != nil {
		t.Fatalf("missing stream: %v %v", ok, err)
	}
	desc := "first"
	if err := s.StreamUpsert(ctx, wire.StreamRow{Name: "app", Tier: "public", Description: &desc, CreatedAt: "2026-11-30T00:00:00+00:00"}); err != nil {
		t.Fatal(err)
	}
	r := get()
	*r.Description = "changed by a caller"
	if got := get(); *got.Description != "first" {
		t.Fatalf("description %q after a caller changed its copy", *got.Description)
	}
	if err := s.StreamSetTier(ctx, "app", "protected"); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.Tier != "protected" {
		t.Fatalf("tier %q after StreamSetTier", got.Tier)
	}
	if err := s.StreamDeprecate(ctx, "app", "2026-11-30T01:00:00+00:00"); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.DeprecatedAt == nil || *got.DeprecatedAt != "2026-11-30T01:00:00+00:00" {
		t.Fatalf("deprecated_at %v after StreamDeprecate", got.DeprecatedAt)
	}
	second := "second"
	if err := s.StreamUpsert(ctx, wire.StreamRow{Name: "app", Tier: "public", Description: &second, CreatedAt: "2026-11-30T00:00:00+00:00"}); err != nil {
		t.Fatal(err)
	}
	if got := get(); got.Tier != "public" || got.DeprecatedAt != nil || *got.Description != "second" {
		t.Fatalf("after upsert: %+v", got)
	}
}
