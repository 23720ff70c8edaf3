package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/racedetect"
)

// The verdict cache, without Vault: a verdict holds until its deadline and
// not after; the cache never holds more than its size (plus one per shard
// while a shard evicts); a credential's expiry caps cache_ttl.
func TestVerdictCache(t *testing.T) {
	c := newExpiringCache[verdict](64)
	now := time.Now().UnixNano()
	k := KeyOf("a")
	c.put(k, verdict{expires: now + int64(time.Second)}, now+int64(time.Second), now)
	_, ok := c.get(k, now)
	assert.True(t, ok, "before its deadline")
	_, ok = c.get(k, now+int64(time.Second))
	assert.False(t, ok, "at its deadline")
	_, ok = c.get(KeyOf("b"), now)
	assert.False(t, ok, "another credential")

	for i := range 10000 {
		c.put(KeyOf(fmt.Sprint("flood-", i)), verdict{}, now+int64(time.Hour), now)
	}
	assert.LessOrEqual(t, c.len(), 64+cacheShards, "bounded by its size")

	id := identity.New("e", "root")
	v := &verdicts{accepted: newExpiringCache[verdict](10), refused: newExpiringCache[verdict](10), ttl: time.Hour, negativeTTL: 0}
	soon := time.Now().Add(time.Minute)
	vd := v.accept(KeyOf("jwt"), id, soon, nil)
	assert.Equal(t, soon.UnixNano(), vd.expires, "never past the credential's own expiry")
	v.refuse(KeyOf("garbage"))
	assert.Zero(t, v.refused.len(), "negative_cache_ttl 0 remembers no refusal")
}

// Keys differ per credential and never are the credential.
func TestKeyOf(t *testing.T) {
	assert.Equal(t, KeyOf("hvs.x"), KeyOf("hvs.x"))
	assert.NotEqual(t, KeyOf("hvs.x"), KeyOf("hvs.y"))
	if racedetect.Enabled {
		return // the race detector's sync.Pool drops keyers at random
	}
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = KeyOf("eyJ0eXAiOiJKV1QifQ.payload.signature") }), "allocations per key")
}
