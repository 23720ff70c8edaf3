package vaultidentityprocessor

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// fairShare keeps one tenant's data volume from crowding out the others'
// when the pipeline after this processor cannot take everything: the
// exporter's queue is full and refuses, retryably. Under that pressure
// each tenant may pass at most a level of items per window: the level at
// which the tenants' demands (what each offered in the last window) fill
// what the pipeline took (max-min fairness: a tenant below it passes
// everything, the rest is shared out equally). A tenant above its share is
// told to retry (Unavailable), as a tenant without a token is, and its
// data waits at its senders. Each window without a refusal raises the level
// by a tenth, until nobody is held back; then nothing is limited. Without
// pressure, a request costs a map read and an addition under a short lock.
type fairShare struct {
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	start time.Time // of the current window
	level float64   // items per tenant per window; +Inf: no limit
	// capacity is what the pipeline is believed to take per window while a
	// level is in force (see nextLevel).
	capacity float64
	took     int64 // items the pipeline took in this window
	refused  bool  // the pipeline refused, retryably, in this window
	tenants  map[string]*tenantLoad
}

// tenantLoad is one tenant's items in the current window, and its credit:
// items it may still pass, refilled by the level each window (deficit
// round robin), so a tenant whose requests are larger than its share
// still passes one now and then, and one with small requests passes its
// share exactly.
type tenantLoad struct {
	offered, admitted int64
	credit            float64
	largest           int // its largest request yet
}

func newFairShare(window time.Duration) *fairShare {
	return &fairShare{window: window, now: time.Now, level: math.Inf(1), tenants: map[string]*tenantLoad{}}
}

// admit says whether tenant's request of n items may pass now: always
// without a level; with one, while the tenant has credit for it.
func (f *fairShare) admit(tenant string, n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roll()
	t := f.tenants[tenant]
	if t == nil {
		t = &tenantLoad{credit: f.level}
		f.tenants[tenant] = t
	}
	t.offered += int64(n)
	t.largest = max(t.largest, n)
	if !math.IsInf(f.level, 1) {
		if t.credit < float64(n) {
			return false
		}
		t.credit -= float64(n)
	}
	t.admitted += int64(n)
	return true
}

// done records what the pipeline did with an admitted request: took it,
// or refused it retryably (pressure).
func (f *fairShare) done(tenant string, n int, retryableRefusal bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roll()
	if !retryableRefusal {
		f.took += int64(n)
		return
	}
	f.refused = true
	if t := f.tenants[tenant]; t != nil {
		t.admitted = max(0, t.admitted-int64(n))
		t.credit += float64(n) // not taken: not spent
	}
}

// currentLevel is the level in force (+Inf: none).
func (f *fairShare) currentLevel() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.level
}

// limited says whether a level is in force (for telemetry and tests).
func (f *fairShare) limited() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !math.IsInf(f.level, 1)
}

// roll ends the current window when its time is up and sets the next
// window's level from it.
func (f *fairShare) roll() {
	now := f.now()
	if now.Sub(f.start) < f.window {
		return
	}
	if now.Sub(f.start) >= 3*f.window {
		// Idle for windows: what was learnt no longer holds.
		f.level = math.Inf(1)
	} else {
		f.level, f.capacity = nextLevel(f.level, f.capacity, f.refused, f.took, f.tenants)
	}
	for name, t := range f.tenants {
		if t.offered == 0 {
			delete(f.tenants, name)
			continue
		}
		// Unspent credit carries over up to two windows' worth (or two of
		// its largest requests), so a tenant sending big requests saves up.
		credit := min(t.credit+f.level, 2*max(f.level, float64(t.largest)))
		if math.IsInf(f.level, 1) {
			credit = 0
		}
		*t = tenantLoad{credit: credit, largest: t.largest}
	}
	f.start, f.took, f.refused = now, 0, false
}

// nextLevel is the next window's level and capacity: after a refusal,
// 85% of what the pipeline took (or of the estimate, if less: a refusal
// while limited means the estimate was too high); without one, 2% more
// when it took nearly all of it (probing for room). Multiplicative
// decrease, additive increase: refusals, which cost every tenant's senders
// a retry, stay rare. The level shares the capacity out max-min fairly
// among this window's demands; it lifts (+Inf) once every demand fits.
func nextLevel(level, capacity float64, refused bool, took int64, tenants map[string]*tenantLoad) (float64, float64) {
	switch {
	case refused && math.IsInf(level, 1):
		// First pressure: what it took this window (an overestimate when
		// its queue also filled, corrected by the refusals that follow).
		capacity = 0.85 * float64(took)
	case refused:
		capacity = 0.85 * min(capacity, float64(took))
	case math.IsInf(level, 1):
		return level, 0
	case float64(took) >= 0.9*capacity:
		capacity *= 1.02 // all of it used, nothing refused: there may be more
	}
	demands := make([]int64, 0, len(tenants))
	for _, t := range tenants {
		demands = append(demands, t.offered)
	}
	if len(demands) < 2 {
		return math.Inf(1), capacity // one sender alone: nobody to share with
	}
	slices.Sort(demands)
	// A twentieth kept free, so probing rarely makes the pipeline refuse
	// the tenants below the level.
	return waterLevel(demands, int64(0.95*capacity)), capacity
}

// waterLevel is the level L at which sum(min(demand, L)) = capacity, for
// demands sorted ascending; +Inf when every demand fits.
func waterLevel(demands []int64, capacity int64) float64 {
	left := float64(capacity)
	for i, d := range demands {
		share := left / float64(len(demands)-i)
		if float64(d) > share {
			return max(share, 1)
		}
		left -= float64(d)
	}
	return math.Inf(1)
}

// shareKey is what a share is kept for: the tenant, or without tenants the
// sender's entity.
func shareKey(id *identity.Identity) string {
	if t, ok := id.Get(identity.Tenant); ok {
		return t
	}
	return id.EntityID()
}

// observed tells the fair share what the pipeline did with a request.
func (s *stamper) observed(ctx context.Context, n int, err error) {
	id, ok := identity.FromAuth(client.FromContext(ctx).Auth, s.cfg.Attributes)
	if !ok {
		return
	}
	s.fair.done(shareKey(id), n, err != nil && !consumererror.IsPermanent(err))
}

// The next consumers, watched: a retryable refusal (the exporter's queue
// is full) is the pressure fair share acts on.
func (s *stamper) observeTraces(next consumer.Traces) consumer.Traces {
	if s.fair == nil {
		return next
	}
	c, _ := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		n := td.SpanCount()
		err := next.ConsumeTraces(ctx, td)
		s.observed(ctx, n, err)
		return err
	}, consumer.WithCapabilities(next.Capabilities()))
	return c
}

func (s *stamper) observeLogs(next consumer.Logs) consumer.Logs {
	if s.fair == nil {
		return next
	}
	c, _ := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		n := ld.LogRecordCount()
		err := next.ConsumeLogs(ctx, ld)
		s.observed(ctx, n, err)
		return err
	}, consumer.WithCapabilities(next.Capabilities()))
	return c
}

func (s *stamper) observeMetrics(next consumer.Metrics) consumer.Metrics {
	if s.fair == nil {
		return next
	}
	c, _ := consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
		n := md.DataPointCount()
		err := next.ConsumeMetrics(ctx, md)
		s.observed(ctx, n, err)
		return err
	}, consumer.WithCapabilities(next.Capabilities()))
	return c
}
