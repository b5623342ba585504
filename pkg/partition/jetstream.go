package partition

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamKV is the KV of a JetStream key-value bucket.
type JetStreamKV struct{ KV jetstream.KeyValue }

// Get implements KV.
func (k JetStreamKV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	e, err := k.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return e.Value(), true, nil
}

// Create implements KV.
func (k JetStreamKV) Create(ctx context.Context, key string, value []byte) (bool, error) {
	_, err := k.KV.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	return err == nil, err
}

// All implements KV.
func (k JetStreamKV) All(ctx context.Context) (map[string][]byte, error) {
	w, err := k.KV.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	out := map[string][]byte{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watch of the partition map ended early")
			}
			if e == nil { // the initial values are all delivered
				return out, nil
			}
			out[e.Key()] = e.Value()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// OpenConfig says how Open finds the bucket.
type OpenConfig struct {
	// Create creates the bucket if it does not exist; otherwise a missing
	// bucket gives a Map without one (everything is default).
	Create bool
	// Replicas of a created bucket (1 if 0).
	Replicas int
}

// Open returns the map kept in the Bucket of js's JetStream. Creating a
// replicated bucket right after a cluster starts can fail with "no
// suitable peers": it is retried until ctx ends.
func Open(ctx context.Context, js jetstream.JetStream, cfg OpenConfig) (*Map, error) {
	for {
		kv, err := bind(ctx, js, cfg)
		if err == nil {
			if kv == nil {
				return New(nil), nil
			}
			return New(JetStreamKV{KV: kv}), nil
		}
		if !cfg.Create {
			return nil, err
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

func bind(ctx context.Context, js jetstream.JetStream, cfg OpenConfig) (jetstream.KeyValue, error) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(actx, Bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("partition map bucket %s: %w", Bucket, err)
	}
	if !cfg.Create {
		return nil, nil
	}
	replicas := max(cfg.Replicas, 1)
	kv, err = js.CreateKeyValue(actx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1, Replicas: replicas,
		Storage: jetstream.FileStorage, Description: "securelog partition map: stream -> partition"})
	if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		kv, err = js.KeyValue(actx, Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("create partition map bucket %s: %w", Bucket, err)
	}
	return kv, nil
}
