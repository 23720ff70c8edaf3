package vaultidentityprocessor

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestWaterLevel(t *testing.T) {
	for _, tc := range []struct {
		demands  []int64
		capacity int64
		want     float64
	}{
		{[]int64{1000, 1000, 20000}, 4000, 2000}, // the flood gets what the others leave
		{[]int64{500, 1000, 20000}, 4000, 2500},  // ... and what a light tenant does not use
		{[]int64{3000, 3000, 3000}, 3000, 1000},  // all over: equal shares
		{[]int64{100, 200}, 1000, math.Inf(1)},   // everything fits: no limit
		{[]int64{10, 10}, 0, 1},                  // nothing taken: one item each, never zero
	} {
		assert.Equal(t, tc.want, waterLevel(tc.demands, tc.capacity), "%v into %d", tc.demands, tc.capacity)
	}
}

// A pipeline that takes capacity items per window, refusing the rest, in
// front of two steady tenants and one flooding: under fair share the
// steady tenants pass everything they offer, window after window, while
// the flood gets the rest; once the flood stops, the limit lifts.
func TestFairShareKeepsSteadyTenantsWhole(t *testing.T) {
	const capacity, request = 4000, 100
	clock := time.Unix(0, 0)
	f := newFairShare(time.Second)
	f.now = func() time.Time { return clock }
	offered := map[string]int{"team-a": 1000, "team-b": 1000, "team-c": 20000}
	// Each tenant spreads its requests evenly over the window: the steady
	// ones one every 20 steps, the flood one every step.
	run := func(window int, flood bool) map[string]int {
		passed := map[string]int{}
		taken := 0
		const steps = 200
		retry := map[string]int{} // refused requests the steady tenants' agents send again
		for step := range steps {
			clock = time.Unix(0, 0).Add(time.Duration(window)*time.Second + time.Duration(step)*5*time.Millisecond)
			for _, tenant := range []string{"team-a", "team-b", "team-c"} {
				want := offered[tenant]
				if tenant == "team-c" && !flood {
					want = 1000
				}
				every := steps / (want / request)
				if step%every != 0 && retry[tenant] == 0 {
					continue
				}
				if step%every != 0 {
					retry[tenant]--
				}
				if !f.admit(tenant, request) {
					if tenant != "team-c" {
						retry[tenant]++
					}
					continue
				}
				refused := taken+request > capacity
				f.done(tenant, request, refused)
				if !refused {
					taken += request
					passed[tenant] += request
				} else if tenant != "team-c" {
					retry[tenant]++
				}
			}
		}
		return passed
	}
	for w := range 3 { // no flood: nothing limited
		got := run(w, false)
		assert.Equal(t, 1000, got["team-a"], "window %d", w)
	}
	assert.False(t, f.limited())
	var steady []int
	for w := 3; w < 13; w++ {
		got := run(w, true)
		if w >= 5 { // the window after the first refusal, on
			steady = append(steady, got["team-a"], got["team-b"])
			assert.Positive(t, got["team-c"], "window %d: the flooding tenant must still progress", w)
		}
	}
	for _, n := range steady {
		assert.GreaterOrEqual(t, n, 900, "a steady tenant lost more than 10%% under another's flood: %v", steady)
	}
	assert.True(t, f.limited())
	for w := 13; w < 60 && f.limited(); w++ {
		run(w, false)
	}
	assert.False(t, f.limited(), "the limit never lifted after the flood")
}

// A sender alone is never held back, however much the pipeline refuses:
// there is nobody to share with.
func TestFairShareAloneIsNeverLimited(t *testing.T) {
	clock := time.Unix(0, 0)
	f := newFairShare(time.Second)
	f.now = func() time.Time { return clock }
	for w := range 5 {
		clock = time.Unix(int64(w), 0)
		for range 50 {
			assert.True(t, f.admit("only", 100), "window %d", w)
			f.done("only", 100, true)
		}
	}
	assert.False(t, f.limited())
}
