package server

import (
	"context"
	"sync"
	"time"

	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// maxCachedEntities bounds the entity cache; entities are few, but a bound
// is never optional.
const maxCachedEntities = 100000

// entityCache remembers entities read for token_lookup, per entity, for
// cache_ttl. Only successful reads are kept: a failed read is retried by
// the next request, never remembered as an empty name.
type entityCache struct {
	ttl time.Duration

	mu sync.Mutex
	m  map[string]cachedEntity
}

type cachedEntity struct {
	e       vaultclient.Entity
	expires time.Time
	groups  bool // group names were read
}

func newEntityCache(ttl time.Duration) *entityCache {
	return &entityCache{ttl: ttl, m: map[string]cachedEntity{}}
}

func (c *entityCache) get(ctx context.Context, vault vaultclient.Logical, id string, groups bool) (vaultclient.Entity, error) {
	now := time.Now()
	c.mu.Lock()
	cached, ok := c.m[id]
	c.mu.Unlock()
	if ok && now.Before(cached.expires) && (cached.groups || !groups) {
		return cached.e, nil
	}
	e, err := vaultclient.ReadEntity(ctx, vault, id, groups)
	if err != nil {
		return vaultclient.Entity{}, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedEntities {
		clear(c.m)
	}
	c.m[id] = cachedEntity{e: e, expires: now.Add(c.ttl), groups: groups}
	c.mu.Unlock()
	return e, nil
}
