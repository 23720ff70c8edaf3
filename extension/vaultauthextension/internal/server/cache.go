package server

import (
	"crypto/sha256"
	"hash"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// Key identifies a credential in the caches by its SHA-256, so the caches
// never hold a credential itself.
type Key [sha256.Size]byte

// keyer hashes credentials: a SHA-256 state, a buffer the credential's
// bytes are copied into (hashing a string otherwise copies it to the heap
// each time), and the sum. Pooled, so a request allocates none of them.
type keyer struct {
	h   hash.Hash
	in  []byte
	sum Key
}

var keyers = sync.Pool{New: func() any { return &keyer{h: sha256.New()} }}

// KeyOf is credential's key.
func KeyOf(credential string) Key {
	k := keyers.Get().(*keyer)
	k.in = append(k.in[:0], credential...)
	k.h.Reset()
	_, _ = k.h.Write(k.in)
	k.h.Sum(k.sum[:0])
	clear(k.in) // no credential left in the pool
	key := k.sum
	keyers.Put(k)
	return key
}

const cacheShards = 16

// expiringCache remembers values by credential key until a deadline:
// verdicts on credentials, and their audit HMACs. It is bounded: when a
// shard is full, expired entries go first, then random ones. Hits take
// only a shard's read lock, which writers hold for a map assignment, so
// work on one shard never blocks hits on the others.
type expiringCache[V any] struct {
	shards   [cacheShards]cacheShard[V]
	perShard int
}

type cacheShard[V any] struct {
	mu sync.RWMutex
	m  map[Key]expiring[V]
}

type expiring[V any] struct {
	value   V
	expires int64 // unix nanoseconds
}

type verdict struct {
	auth     client.AuthData // nil for a rejection
	expires  int64           // unix nanoseconds
	tenant   string          // the identity's tenant, when tenants are configured
	metadata client.Metadata // {vault:tenant: tenant}, built once
	about    *acceptance     // what the audit event of its acceptance says
}

// Credential kinds, as audit events name them.
const (
	KindIdentityToken = "identity_token"
	KindToken         = "token"
)

// acceptance is what the verification of one credential learned beyond
// the identity, for its audit event.
type acceptance struct {
	kind     string
	expires  time.Time // the credential's own expiry; zero if none
	issuer   string    // identity_token
	keyID    string    // identity_token
	policies []string  // token
}

func newExpiringCache[V any](size int) *expiringCache[V] {
	c := &expiringCache[V]{perShard: max(1, (size+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[Key]expiring[V])
	}
	return c
}

func (c *expiringCache[V]) get(k Key, now int64) (V, bool) {
	s := &c.shards[k[0]%cacheShards]
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	if !ok || now >= e.expires {
		var zero V
		return zero, false
	}
	return e.value, true
}

func (c *expiringCache[V]) put(k Key, v V, expires, now int64) {
	s := &c.shards[k[0]%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.m[k]; !exists && len(s.m) >= c.perShard {
		s.evict(now, c.perShard)
	}
	s.m[k] = expiring[V]{value: v, expires: expires}
}

// evict frees at least one slot: expired entries first (a bounded scan), then
// whichever entry map iteration yields first (random in Go).
func (s *cacheShard[V]) evict(now int64, limit int) {
	scanned := 0
	for k, e := range s.m {
		if now >= e.expires {
			delete(s.m, k)
		}
		if scanned++; scanned >= 64 {
			break
		}
	}
	for k := range s.m {
		if len(s.m) < limit {
			return
		}
		delete(s.m, k)
	}
}

// len counts the entries (for tests and telemetry).
func (c *expiringCache[V]) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// verdicts remembers accepted and refused credentials, in separate caches so
// garbage cannot evict valid senders. Both verifiers record into it, from
// wherever the verdict is reached (a token lookup records it even when the
// request that started it has gone).
type verdicts struct {
	accepted    *expiringCache[verdict]
	refused     *expiringCache[verdict]
	ttl         time.Duration
	negativeTTL time.Duration
}

func newVerdicts(s Settings) *verdicts {
	return &verdicts{
		accepted: newExpiringCache[verdict](s.CacheSize), refused: newExpiringCache[verdict](s.CacheSize),
		ttl: s.CacheTTL, negativeTTL: s.NegativeCacheTTL,
	}
}

// accept remembers an identity until cache_ttl, never past the
// credential's expiry, and returns the verdict.
func (v *verdicts) accept(key Key, id *identity.Identity, credentialExpiry time.Time, about *acceptance) verdict {
	now := time.Now()
	vd := verdict{auth: identity.AuthData{Identity: id}, expires: deadline(now, v.ttl, credentialExpiry), about: about}
	if tenant, ok := id.Get(identity.Tenant); ok {
		vd.tenant = tenant
		vd.metadata = identity.TenantMetadata(tenant)
	}
	v.accepted.put(key, vd, vd.expires, now.UnixNano())
	return vd
}

// refuse remembers a checked refusal for negative_cache_ttl.
func (v *verdicts) refuse(key Key) {
	if v.negativeTTL <= 0 {
		return
	}
	now := time.Now()
	until := now.Add(v.negativeTTL).UnixNano()
	v.refused.put(key, verdict{expires: until}, until, now.UnixNano())
}

func deadline(now time.Time, ttl time.Duration, credentialExpiry time.Time) int64 {
	d := now.Add(ttl)
	if !credentialExpiry.IsZero() && credentialExpiry.Before(d) {
		d = credentialExpiry
	}
	return d.UnixNano()
}
