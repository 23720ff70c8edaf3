package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
)

// The gateway tier scaled out: three gateway processes behind a load
// balancer (where users put a Kubernetes Service or an L4 balancer; the
// contrib loadbalancing exporter is not served by the module proxy at
// v0.165.x), four agents sending to it, one Vault.
func TestScaleOut(t *testing.T) {
	d := testbed.Start(t, testbed.Options{Gateways: 3, Balanced: true, Workloads: []string{"w1", "w2", "w3", "w4"}})
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

	// A gateway killed mid-run: while it is down, its agents reconnect
	// through the balancer and retry to the other two, so everything sent
	// meanwhile arrives without it; what it had acknowledged waits in its
	// persistent queue and arrives once it is back. Nothing is lost.
	victim := d.Gateways[1]
	require.Positive(t, d.Balancer.Connections()[victim.OTLPGRPC], "no agent sends through %s", victim.Name)
	before := sentCounts(d)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sendFor(d, 4*time.Second, 20) }()
	time.Sleep(time.Second) // mid-run
	victim.Kill()
	require.False(t, victim.Healthy())
	killedAt := sentCounts(d)
	wg.Wait()
	var afterKill int
	require.Eventually(t, func() bool {
		all := true
		afterKill = 0
		for i, s := range d.Senders {
			for _, id := range s.Sent()[killedAt[i]:] {
				afterKill++
				_, ok := d.Sink.Span(id)
				all = all && ok
			}
		}
		return all
	}, eventually, poll, "spans sent while %s was down did not all arrive through the other gateways", victim.Name)
	require.False(t, victim.Healthy(), "the victim came back by itself?")
	conns := d.Balancer.Connections()
	victim.Restart()
	sent := awaitAll(t, d)

	// Whatever gateway carried it, every span has its workload's identity, once.
	for i, s := range d.Senders {
		for _, id := range s.Sent() {
			span, _ := d.Sink.Span(id)
			require.Equal(t, []string{d.Workloads[i].EntityID}, span.Resource.Values("vault.entity.id"), "%s", s.Workload)
			onlyStamped(t, span, "vault.entity.id", "vault.entity.name", "vault.namespace", "vault.credential.hmac")
		}
	}
	var duringRun int
	for i, s := range d.Senders {
		duringRun += len(s.Sent()) - before[i]
	}
	t.Logf("scale-out: %d spans through 3 gateways behind a balancer (connections handed out: %v); %s SIGKILLed mid-run: "+
		"%d of the run's %d spans sent while it was down, all arrived through the other two before it was restarted; "+
		"after its restart 0 lost overall, %d duplicates, each stamped with its workload",
		sent, conns, victim.Name, afterKill, duringRun, d.Sink.Duplicates())
}

// sentCounts is how many spans each sender has had accepted so far.
func sentCounts(d *testbed.Deployment) []int {
	out := make([]int, len(d.Senders))
	for i, s := range d.Senders {
		out[i] = len(s.Sent())
	}
	return out
}

// sendFor sends perSecond requests of 10 spans per second from every
// workload for d.
func sendFor(d *testbed.Deployment, dur time.Duration, perSecond int) {
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
