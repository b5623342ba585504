package batch

import (
	"context"
	"errors"
	"sync"
)

// errStopped is the cancellation cause when consume failed.
var errStopped = errors.New("batch: ordered pipeline stopped")

// Ordered runs a three-stage pipeline: produce sends units of work in
// order, work processes each on one of workers goroutines (in any order,
// concurrently), and consume receives every processed unit on the calling
// goroutine in the order they were sent. At most 2×workers units are in
// flight, so memory is bounded by the unit size.
//
// send reports false once the pipeline stops (consume failed or ctx was
// cancelled); produce should then return. The first error of consume, of
// produce, or ctx's error is returned, in that order of precedence. With
// workers ≤ 1 everything runs on the calling goroutine, in order.
func Ordered[T any](ctx context.Context, workers int, produce func(send func(T) bool) error, work func(T), consume func(T) error) error {
	if workers <= 1 {
		var cerr error
		perr := produce(func(v T) bool {
			if cerr != nil || ctx.Err() != nil {
				return false
			}
			work(v)
			cerr = consume(v)
			return cerr == nil
		})
		if cerr != nil {
			return cerr
		}
		if perr != nil {
			return perr
		}
		return ctx.Err()
	}
	type unit struct {
		v    T
		done chan struct{}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan *unit, workers)
	order := make(chan *unit, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range jobs {
				work(u.v)
				close(u.done)
			}
		}()
	}
	var perr error
	go func() {
		defer close(order)
		defer close(jobs)
		perr = produce(func(v T) bool {
			u := &unit{v: v, done: make(chan struct{})}
			select {
			case order <- u:
			case <-ctx.Done():
				return false
			}
			jobs <- u // never blocks for long: workers only ever close done
			return true
		})
	}()
	var cerr error
	for u := range order {
		<-u.done
		if cerr == nil {
			if cerr = consume(u.v); cerr != nil {
				cancel(errStopped)
			}
		}
	}
	wg.Wait()
	if cerr != nil {
		return cerr
	}
	if perr != nil {
		return perr
	}
	return ctx.Err()
}
