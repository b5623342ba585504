package partition

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/jswait"
)

// JetStreamKV is the KV of a JetStream key-value bucket.
type JetStreamKV struct {
	KV jetstream.KeyValue
	// Conn, if set, confirms a key that KV.Get does not find with a read
	// through the bucket's stream leader: a replicated bucket answers
	// direct gets from any replica, and one that has not applied the
	// latest write yet misses a stream assigned a moment ago (its events
	// would go to the default partition and be dead-lettered).
	Conn *nats.Conn
	// OpTimeout bounds each operation (jswait.DefaultCallTimeout if 0):
	// a JetStream request can go unanswered while the bucket's stream
	// elects a leader, and the caller's context may have a long deadline
	// or none.
	OpTimeout time.Duration
}

// op bounds one operation's context.
func (k JetStreamKV) op(ctx context.Context) (context.Context, context.CancelFunc) {
	d := k.OpTimeout
	if d <= 0 {
		d = jswait.DefaultCallTimeout
	}
	return context.WithTimeout(ctx, d)
}

// Get implements KV.
func (k JetStreamKV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	get := func() (jetstream.KeyValueEntry, error) {
		ctx, cancel := k.op(ctx)
		defer cancel()
		return k.KV.Get(ctx, key)
	}
	e, err := get()
	// A bucket created a moment ago may have no replica answering direct
	// gets yet: retried for a while.
	for try := 0; errors.Is(err, nats.ErrNoResponders) && try < 50 && ctx.Err() == nil; try++ {
		time.Sleep(100 * time.Millisecond)
		e, err = get()
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		if k.Conn == nil {
			return nil, false, nil
		}
		return k.leaderGet(ctx, key)
	}
	if err != nil {
		return nil, false, err
	}
	return e.Value(), true, nil
}

// Put implements KV.
func (k JetStreamKV) Put(ctx context.Context, key string, value []byte) error {
	ctx, cancel := k.op(ctx)
	defer cancel()
	_, err := k.KV.Put(ctx, key, value)
	return err
}

// leaderGet reads key's latest value through the stream leader
// ($JS.API.STREAM.MSG.GET, not a direct get).
func (k JetStreamKV) leaderGet(ctx context.Context, key string) ([]byte, bool, error) {
	req, err := json.Marshal(map[string]string{"last_by_subj": "$KV." + Bucket + "." + key})
	if err != nil {
		return nil, false, err
	}
	rctx, cancel := context.WithTimeout(ctx, leaderGetTimeout)
	defer cancel()
	m, err := k.Conn.RequestWithContext(rctx, "$JS.API.STREAM.MSG.GET.KV_"+Bucket, req)
	if err != nil {
		return nil, false, fmt.Errorf("read %s from the partition map's leader: %w", key, err)
	}
	var r struct {
		Message *struct {
			Data   []byte `json:"data"`
			Header []byte `json:"hdrs"`
		} `json:"message"`
		Error *struct {
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return nil, false, fmt.Errorf("read %s from the partition map's leader: %w", key, err)
	}
	switch {
	case r.Error != nil && r.Error.ErrCode == msgNotFound:
		return nil, false, nil
	case r.Error != nil:
		return nil, false, fmt.Errorf("read %s from the partition map's leader: %s (%d)", key, r.Error.Description, r.Error.ErrCode)
	case r.Message == nil:
		return nil, false, fmt.Errorf("read %s from the partition map's leader: empty answer", key)
	case bytes.Contains(r.Message.Header, []byte("KV-Operation: DEL")), bytes.Contains(r.Message.Header, []byte("KV-Operation: PURGE")):
		return nil, false, nil
	}
	return r.Message.Data, true, nil
}

// msgNotFound is JetStream's error code for "no message found".
const msgNotFound = 10037

// leaderGetTimeout bounds one read through the leader.
const leaderGetTimeout = 5 * time.Second

// Create implements KV.
func (k JetStreamKV) Create(ctx context.Context, key string, value []byte) (bool, error) {
	ctx, cancel := k.op(ctx)
	defer cancel()
	_, err := k.KV.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	return err == nil, err
}

// All implements KV.
func (k JetStreamKV) All(ctx context.Context) (map[string][]byte, error) {
	ctx, cancel := k.op(ctx)
	defer cancel()
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
	// WaitForCluster retries (jswait.Do) while JetStream does not answer
	// or cannot place the bucket yet (a cluster without a meta leader, "no
	// suitable peers" right after a cluster starts), until ctx ends: for
	// workers, which cannot run without the map. Otherwise (clients) one
	// bounded attempt is made and its error returned. Create implies it.
	WaitForCluster bool
	// Wait bounds each JetStream request (also the Map's reads and
	// writes: CallTimeout) and says how Open waits (logger, status); see
	// jswait.
	Wait jswait.Config
}

// Open returns the map kept in the Bucket of js's JetStream.
func Open(ctx context.Context, js jetstream.JetStream, cfg OpenConfig) (*Map, error) {
	var kv jetstream.KeyValue
	attempt := func(ctx context.Context) error {
		var err error
		kv, err = bind(ctx, js, cfg)
		return err
	}
	var err error
	if cfg.Create || cfg.WaitForCluster {
		err = jswait.Do(ctx, cfg.Wait, "open the partition map (JetStream key-value bucket "+Bucket+")", attempt)
	} else {
		timeout := cfg.Wait.CallTimeout
		if timeout <= 0 {
			timeout = jswait.DefaultCallTimeout
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		err = attempt(actx)
		cancel()
	}
	if err != nil {
		return nil, err
	}
	if kv == nil {
		return New(nil), nil
	}
	return New(JetStreamKV{KV: kv, Conn: js.Conn(), OpTimeout: cfg.Wait.CallTimeout}), nil
}

func bind(ctx context.Context, js jetstream.JetStream, cfg OpenConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, Bucket)
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
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, History: 1, Replicas: replicas,
		Storage: jetstream.FileStorage, Description: "securelog partition map: stream -> partition"})
	if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		kv, err = js.KeyValue(ctx, Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("create partition map bucket %s: %w", Bucket, err)
	}
	return kv, nil
}
