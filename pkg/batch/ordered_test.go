package batch_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/batch"
)

type unit struct{ in, out int }

func TestOrdered(t *testing.T) {
	errProduce := errors.New("produce failed")
	errConsume := errors.New("consume failed")
	tests := []struct {
		name        string
		workers, n  int
		produceErr  error // returned by produce after sending n units
		failAt      int   // consume fails at this input (-1: never)
		wantErr     error
		wantConsume int // units consumed (including the failing one)
	}{
		{"sequential", 1, 100, nil, -1, nil, 100},
		{"parallel", 4, 1000, nil, -1, nil, 1000},
		{"more workers than units", 16, 3, nil, -1, nil, 3},
		{"empty", 4, 0, nil, -1, nil, 0},
		{"produce error after all sent", 4, 50, errProduce, -1, errProduce, 50},
		{"consume error stops", 4, 1000, nil, 10, errConsume, 11},
		{"consume error wins over produce error", 3, 1000, errProduce, 5, errConsume, 6},
		{"sequential consume error", 1, 100, nil, 7, errConsume, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var worked atomic.Int64
			next := 0
			consumed := 0
			err := batch.Ordered(context.Background(), tt.workers, func(send func(*unit) bool) error {
				for i := range tt.n {
					if !send(&unit{in: i}) {
						return nil
					}
				}
				return tt.produceErr
			}, func(u *unit) {
				if u.in%7 == 0 {
					time.Sleep(time.Millisecond) // finish out of order
				}
				u.out = u.in * 2
				worked.Add(1)
			}, func(u *unit) error {
				consumed++
				if u.in != next || u.out != 2*u.in {
					return fmt.Errorf("got unit %d (out %d), want %d: out of order or not worked", u.in, u.out, next)
				}
				next++
				if u.in == tt.failAt {
					return errConsume
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if consumed != tt.wantConsume {
				t.Fatalf("consumed %d units, want %d", consumed, tt.wantConsume)
			}
		})
	}
}

func TestOrderedContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sent := 0
	err := batch.Ordered(ctx, 2, func(send func(int) bool) error {
		for i := 0; ; i++ {
			if i == 5 {
				cancel()
			}
			if !send(i) {
				return nil
			}
			sent++
			if sent > 10_000 {
				return errors.New("send kept accepting after cancel")
			}
		}
	}, func(int) {}, func(int) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestOrderedBoundsInFlight: a slow consumer holds back the producer.
func TestOrderedBoundsInFlight(t *testing.T) {
	const workers = 2
	var sent, consumed atomic.Int64
	var maxAhead int64
	err := batch.Ordered(context.Background(), workers, func(send func(int) bool) error {
		for i := range 200 {
			if ahead := sent.Load() - consumed.Load(); ahead > maxAhead {
				maxAhead = ahead
			}
			if !send(i) {
				return nil
			}
			sent.Add(1)
		}
		return nil
	}, func(int) {}, func(int) error {
		time.Sleep(100 * time.Microsecond)
		consumed.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 2×workers queued, one being consumed, one blocked in send.
	if maxAhead > 2*workers+2 {
		t.Fatalf("producer ran %d units ahead of the consumer, want at most %d", maxAhead, 2*workers+2)
	}
}
