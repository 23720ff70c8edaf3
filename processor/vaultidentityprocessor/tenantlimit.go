package vaultidentityprocessor

import (
	"sync"
	"time"
)

// tenantLimiter caps what each tenant may pass per second (tenant_limits):
// a token bucket per tenant, so one team's volume cannot use up capacity
// every team shares (a downstream limit, this gateway's CPU), whatever the
// pipeline says. A request over its tenant's limit is told to retry
// (Unavailable) and its data waits at its senders. A request costs a map
// read and a few float operations under a short lock.
type tenantLimiter struct {
	def     tenantRate
	tenants map[string]tenantRate
	now     func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

// tenantRate is a limit: items per second, and the bucket's size.
type tenantRate struct{ perSecond, burst float64 }

type bucket struct {
	tokens float64
	last   time.Time
}

// sweepEvery is how often buckets that have filled up again are forgotten
// (a forgotten bucket starts full: the same as keeping it).
const sweepEvery = time.Minute

func newTenantLimiter(cfg TenantLimitsConfig) *tenantLimiter {
	l := &tenantLimiter{def: rateOf(cfg.ItemsPerSecond, cfg.Burst), tenants: map[string]tenantRate{}, now: time.Now, buckets: map[string]*bucket{}}
	for name, t := range cfg.Tenants {
		l.tenants[name] = rateOf(t.ItemsPerSecond, t.Burst)
	}
	return l
}

// rateOf is a limit from its config; the bucket holds one second's worth
// unless burst says otherwise.
func rateOf(perSecond, burst int) tenantRate {
	if burst == 0 {
		burst = perSecond
	}
	return tenantRate{perSecond: float64(perSecond), burst: float64(burst)}
}

// limitOf is tenant's limit (perSecond 0: none).
func (l *tenantLimiter) limitOf(tenant string) tenantRate {
	if r, ok := l.tenants[tenant]; ok {
		return r
	}
	return l.def
}

// admit says whether tenant's request of n items may pass now. A request
// larger than the bucket passes when the bucket is full and leaves it in
// debt, so big batches are never refused for good and the tenant's rate
// over time is still its limit.
func (l *tenantLimiter) admit(tenant string, n int) bool {
	r := l.limitOf(tenant)
	if r.perSecond == 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweep(now)
	b := l.buckets[tenant]
	if b == nil {
		b = &bucket{tokens: r.burst, last: now}
		l.buckets[tenant] = b
	} else {
		b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.perSecond)
		b.last = now
	}
	if b.tokens < min(float64(n), r.burst) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// sweep forgets the buckets that are full again, at most every sweepEvery,
// so senders' entities that come and go do not pile up.
func (l *tenantLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	for name, b := range l.buckets {
		r := l.limitOf(name)
		if b.tokens+now.Sub(b.last).Seconds()*r.perSecond >= r.burst {
			delete(l.buckets, name)
		}
	}
}
