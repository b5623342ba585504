package transport

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// Drain stops NATS subscriptions gracefully, all at once: no new messages
// are delivered, the ones already received are still handled, and Drain
// returns when every subscription is closed (its handlers returned) or ctx
// ends. A subscription that cannot drain (its connection is gone) is
// unsubscribed. Errors name the subjects.
func Drain(ctx context.Context, subs ...*nats.Subscription) error {
	var errs []error
	var waits []<-chan nats.SubStatus
	var waiting []*nats.Subscription
	for _, s := range subs {
		if s == nil {
			continue
		}
		closed := s.StatusChanged(nats.SubscriptionClosed)
		if err := s.Drain(); err != nil {
			_ = s.Unsubscribe()
			if !errors.Is(err, nats.ErrBadSubscription) && !errors.Is(err, nats.ErrConnectionClosed) {
				errs = append(errs, fmt.Errorf("drain %s: %w", s.Subject, err))
			}
			continue
		}
		waits, waiting = append(waits, closed), append(waiting, s)
	}
	for i, closed := range waits {
		select {
		case <-closed:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("drain %s: %w", waiting[i].Subject, ctx.Err()))
			return errors.Join(errs...)
		}
	}
	return errors.Join(errs...)
}
