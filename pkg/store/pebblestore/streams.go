package pebblestore

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// putNewStream adds a stream row that does not exist yet to b at the next
// creation-order position and advances s.lastStream (the caller restores it
// if the batch does not commit).
func (s *Store) putNewStream(b *pebble.Batch, row wire.StreamRow) error {
	order := s.lastStream + 1
	for _, op := range []struct{ k, v []byte }{
		{key(prefixStream, be64(order)), encodeStream(row)},
		{key(prefixStreamByName, []byte(row.Name)), be64(order)},
		{keyStreamCounter, be64(order)},
	} {
		if err := b.Set(op.k, op.v, nil); err != nil {
			return err
		}
	}
	s.lastStream = order
	return nil
}

// streamOrder returns the creation-order position of the named stream.
func streamOrder(db pebble.Reader, name string) (uint64, bool, error) {
	v, found, err := get(db, key(prefixStreamByName, []byte(name)))
	if err != nil || !found {
		return 0, false, err
	}
	order, err := u64(v)
	if err != nil {
		return 0, false, fmt.Errorf("stream %q order: %w", name, err)
	}
	return order, true, nil
}

func (s *Store) streamAt(db pebble.Reader, order uint64, name string) (wire.StreamRow, error) {
	v, found, err := get(db, key(prefixStream, be64(order)))
	if err != nil {
		return wire.StreamRow{}, err
	}
	if !found {
		return wire.StreamRow{}, fmt.Errorf("pebble store %q: stream %q indexed at %d but missing", s.dir, name, order)
	}
	row, err := decodeStream(v)
	if err != nil {
		return wire.StreamRow{}, fmt.Errorf("stream %q: %w", name, err)
	}
	return row, nil
}

// StreamUpsert inserts the row, or replaces every field of the existing row
// with that name while keeping its creation-order position.
func (s *Store) StreamUpsert(ctx context.Context, row wire.StreamRow) error {
	db, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	order, found, err := streamOrder(db, row.Name)
	if err != nil {
		return err
	}
	b := db.NewBatch()
	defer b.Close()
	prev := s.lastStream
	if found {
		err = b.Set(key(prefixStream, be64(order)), encodeStream(row), nil)
	} else {
		err = s.putNewStream(b, row)
	}
	if err == nil {
		err = s.commit(b, fmt.Sprintf("upsert stream %q", row.Name))
	}
	s.cacheStream(row.Name, row, err == nil)
	if err != nil {
		s.lastStream = prev
		return err
	}
	return nil
}

// StreamGet returns the stream row by name.
func (s *Store) StreamGet(ctx context.Context, name string) (wire.StreamRow, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return wire.StreamRow{}, false, err
	}
	defer s.release()
	s.smu.Lock()
	row, ok := s.streams[name]
	s.smu.Unlock()
	if ok {
		return row.Clone(), true, nil
	}
	s.wmu.Lock() // no stream write between the read and the fill
	defer s.wmu.Unlock()
	order, found, err := streamOrder(db, name)
	if err != nil || !found {
		return wire.StreamRow{}, false, err
	}
	row, err = s.streamAt(db, order, name)
	if err != nil {
		return wire.StreamRow{}, false, err
	}
	s.cacheStream(name, row, true)
	return row.Clone(), true, nil
}

// maxCachedStreams bounds the stream rows the store caches.
const maxCachedStreams = 4096

// cacheStream records row as the stored row of stream name (as stored:
// encoded and decoded), or forgets the stream when stored is false (a
// write that failed may or may not have committed). The caller holds wmu.
func (s *Store) cacheStream(name string, row wire.StreamRow, stored bool) {
	if stored {
		var err error
		if row, err = decodeStream(encodeStream(row)); err != nil {
			stored = false
		}
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	if !stored {
		delete(s.streams, name)
		return
	}
	if len(s.streams) >= maxCachedStreams {
		clear(s.streams)
	}
	s.streams[name] = row
}

// StreamList returns all stream rows in creation order.
func (s *Store) StreamList(ctx context.Context) ([]wire.StreamRow, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release()
	p := []byte(prefixStream)
	out := []wire.StreamRow{}
	err = scan(db, p, upperBound(p), false, func(k, v []byte) (bool, error) {
		row, err := decodeStream(v)
		if err != nil {
			return false, fmt.Errorf("stream %x: %w", k, err)
		}
		out = append(out, row)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StreamSetTier sets the stream's tier.
func (s *Store) StreamSetTier(ctx context.Context, name, tier string) error {
	return s.updateStream(ctx, name, func(r *wire.StreamRow) { r.Tier = tier })
}

// StreamDeprecate sets the stream's deprecated_at.
func (s *Store) StreamDeprecate(ctx context.Context, name, deprecatedAt string) error {
	return s.updateStream(ctx, name, func(r *wire.StreamRow) { r.DeprecatedAt = &deprecatedAt })
}

func (s *Store) updateStream(ctx context.Context, name string, f func(*wire.StreamRow)) error {
	db, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	order, found, err := streamOrder(db, name)
	if err != nil {
		return err
	}
	if !found {
		return &store.StreamNotFoundError{Name: name}
	}
	row, err := s.streamAt(db, order, name)
	if err != nil {
		return err
	}
	f(&row)
	b := db.NewBatch()
	defer b.Close()
	if err := b.Set(key(prefixStream, be64(order)), encodeStream(row), nil); err != nil {
		return err
	}
	err = s.commit(b, fmt.Sprintf("update stream %q", name))
	s.cacheStream(name, row, err == nil)
	return err
}
