package auditevent

import (
	"context"
	"sync"
	"time"
)

// MaxPeersPerInterval bounds the refusal events of one interval: refusals
// from further peers are counted under the peer "other", so a flood from
// any number of addresses yields at most (MaxPeersPerInterval+1) events per
// outcome and reason per interval.
const MaxPeersPerInterval = 100

// OtherPeers is the client.address of refusals beyond MaxPeersPerInterval.
const OtherPeers = "other"

// Tally counts refusals by outcome, reason and peer, and emits one
// CredentialRefused event per key each interval.
type Tally struct {
	bus       *Bus
	component string

	mu    sync.Mutex
	start time.Time
	peers map[string]struct{}
	count map[tallyKey]int64
}

type tallyKey struct{ outcome, reason, peer string }

// NewTally tallies for bus; Run emits.
func NewTally(bus *Bus, component string) *Tally {
	return &Tally{bus: bus, component: component, start: time.Now(), peers: map[string]struct{}{}, count: map[tallyKey]int64{}}
}

// Active says whether a refusal counted now reaches anyone (callers skip
// finding the peer otherwise).
func (t *Tally) Active() bool { return t.bus.Active() }

// Add counts one refusal, when someone listens.
func (t *Tally) Add(outcome, reason, peer string) {
	if !t.bus.Active() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.peers[peer]; !ok {
		if len(t.peers) >= MaxPeersPerInterval {
			peer = OtherPeers
		} else {
			t.peers[peer] = struct{}{}
		}
	}
	t.count[tallyKey{outcome, reason, peer}]++
}

// Run emits the tally every interval, and once more when ctx ends.
func (t *Tally) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.Flush()
			return
		case <-tick.C:
			t.Flush()
		}
	}
}

// Flush emits what was counted since the last flush.
func (t *Tally) Flush() {
	t.mu.Lock()
	count, start := t.count, t.start
	t.count, t.peers, t.start = map[tallyKey]int64{}, map[string]struct{}{}, time.Now()
	t.mu.Unlock()
	for k, n := range count {
		attrs := []Attr{
			String(Component, t.component), String(RefusalOutcome, k.outcome), String(RefusalReason, k.reason),
			Int(RefusalCount, n), String(IntervalStart, start.UTC().Format(time.RFC3339Nano)),
		}
		if k.peer != "" {
			attrs = append(attrs, String(ClientAddress, k.peer))
		}
		t.bus.Emit(Event{Name: CredentialRefused, Warn: true, Attrs: attrs})
	}
}
