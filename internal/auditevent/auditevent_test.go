package auditevent

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBusFansOutUntilUnsubscribed(t *testing.T) {
	var b Bus
	b.Emit(Event{Name: Login}) // before any subscriber: kept for the first
	var mu sync.Mutex
	got := map[string]int{}
	un1 := b.Subscribe(func(e Event) { mu.Lock(); got["one"]++; mu.Unlock(); assert.False(t, e.Time.IsZero()) })
	un2 := b.Subscribe(func(Event) { mu.Lock(); got["two"]++; mu.Unlock() })
	b.Emit(Event{Name: Login})
	un1()
	b.Emit(Event{Name: Login})
	un2()
	b.Emit(Event{Name: Login})
	assert.Equal(t, map[string]int{"one": 2, "two": 2}, got, "one got the backlog")
	assert.False(t, b.Active())
}

// Events before the first subscription wait for it, bounded; after it,
// and once the backlog is full, the bus is inactive without subscribers.
func TestBusBacklogIsBounded(t *testing.T) {
	var b Bus
	for range 2 * maxBacklog {
		b.Emit(Event{Name: Login})
	}
	assert.False(t, b.Active(), "a full backlog takes no more")
	n := 0
	b.Subscribe(func(Event) { n++ })()
	assert.Equal(t, maxBacklog, n)
}

// A flood from more peers than MaxPeersPerInterval yields at most
// MaxPeersPerInterval+1 events per outcome and reason, and counts every
// refusal.
func TestTallyIsBoundedAndCountsEverything(t *testing.T) {
	var b Bus
	var events []Event
	defer b.Subscribe(func(e Event) { events = append(events, e) })()
	events = nil
	tally := NewTally(&b, "vaultauth/agents")
	for i := range 10000 {
		tally.Add("refused", "malformed", fmt.Sprintf("10.0.%d.%d", i/250, i%250))
	}
	tally.Add("unavailable", "vault_unavailable", "10.0.0.1")
	tally.Flush()
	require.Len(t, events, MaxPeersPerInterval+2)
	var total int64
	for _, e := range events {
		assert.Equal(t, CredentialRefused, e.Name)
		assert.True(t, e.Warn)
		for _, a := range e.Attrs {
			if a.Key == RefusalCount {
				total += a.Int
			}
		}
	}
	assert.Equal(t, int64(10001), total)
	events = nil
	tally.Flush()
	assert.Empty(t, events, "a flush with nothing counted emits nothing")
}

func TestTallyRunFlushesAtTheEnd(t *testing.T) {
	var b Bus
	var mu sync.Mutex
	n := 0
	defer b.Subscribe(func(Event) { mu.Lock(); n++; mu.Unlock() })()
	tally := NewTally(&b, "x")
	tally.Add("refused", "malformed", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tally.Run(ctx, time.Hour); close(done) }()
	cancel()
	<-done
	assert.Equal(t, 1, n)
}
