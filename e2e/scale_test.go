package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/deploy"
)

// The gateway tier scaled out: three gateway processes, four agents spread
// across them (the contrib loadbalancing exporter is not served by the
// module proxy at v0.165.1), one Vault.
func TestScaleOut(t *testing.T) {
	d := deploy.Start(t, deploy.Options{Gateways: 3, Workloads: []string{"w1", "w2", "w3", "w4"}})
	const window = 5 * time.Second

	// Vault calls over the same window at two request rates, 10x apart.
	calls := map[int]int{}
	for _, perSecond := range []int{4, 40} { // requests per second per workload, 10 spans each
		before := len(d.Proxy.Requests())
		sendFor(d, window, perSecond)
		calls[perSecond] = len(d.Proxy.Requests()) - before
	}
	t.Logf("Vault requests in %s from 3 gateways and 4 agents: %d at 160 spans/s, %d at 1,600 spans/s", window, calls[4], calls[40])
	assert.InDelta(t, calls[4], calls[40], float64(calls[4])/4+5, "Vault load grew with traffic")

	// A gateway killed mid-run loses nothing: its agents' retries and its
	// persistent queue carry everything through its restart.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sendFor(d, 4*time.Second, 20) }()
	time.Sleep(time.Second) // mid-run
	d.Gateways[1].Kill()
	require.False(t, d.Gateways[1].Healthy())
	d.Gateways[1].Restart()
	wg.Wait()
	sent := awaitAll(t, d)

	// Whatever gateway carried it, every span has its workload's identity, once.
	for i, s := range d.Senders {
		for _, id := range s.Sent() {
			span, _ := d.Sink.Span(id)
			require.Equal(t, []string{d.Workloads[i].EntityID}, span.Resource.Values("vault.entity.id"), "%s via gateway %d", s.Workload, i%3)
		}
	}
	t.Logf("scale-out: %d spans through 3 gateways (one SIGKILLed and restarted), 0 lost, %d duplicates, each stamped with its workload", sent, d.Sink.Duplicates())
}

// sendFor sends perSecond requests of 10 spans per second from every
// workload for d.
func sendFor(d *deploy.Deployment, dur time.Duration, perSecond int) {
	var wg sync.WaitGroup
	for _, s := range d.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second / time.Duration(perSecond))
			defer tick.Stop()
			for start := time.Now(); time.Since(start) < dur; {
				<-tick.C
				s.Send(batch)
			}
		}()
	}
	wg.Wait()
}
