package e2e

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
)

// Availability isolation (issue 19): nothing about one tenant (a missing,
// empty or refused token, its project throttling or refusing, its queued
// backlog, its data volume) lowers another tenant's delivered rate by more than 10%, and
// the faulty tenant's data arrives in full once its fault ends. Each test
// measures teams a and b in the same run, before the fault (the control)
// and during it, while team c is the faulty one.

const (
	isolationWindow = 3 * time.Second
	healthyTeams    = 2 // team-a and team-b
)

var allTeams = []string{"team-a", "team-b", "team-c"}

// loadFor sends from every workload, each request retried until its agent
// takes it, until stopped or limit passes (bounded in count too).
func loadFor(t *testing.T, d *testbed.Deployment, limit time.Duration) (stop func()) {
	t.Helper()
	var halt atomic.Bool
	var wg sync.WaitGroup
	end := time.Now().Add(limit)
	for _, s := range d.Senders {
		wg.Go(func() {
			for i := 0; i < 20000 && !halt.Load() && time.Now().Before(end); i++ {
				s.Send(batch)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	var once sync.Once
	stop = func() { once.Do(func() { halt.Store(true); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// landedPerWindow counts the spans that land in the teams' projects in
// each of n windows.
func landedPerWindow(d *testbed.Deployment, n int, teams ...string) []int {
	count := func() int {
		total := 0
		for _, team := range teams {
			total += d.Projects.CountIn(team)
		}
		return total
	}
	out := make([]int, 0, n)
	for range n {
		before := count()
		time.Sleep(isolationWindow)
		out = append(out, count()-before)
	}
	return out
}

func median(xs []int) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// isolated is one isolation run: the deployment with three teams under
// load, and team a's and b's rate before the fault.
type isolated struct {
	d       *testbed.Deployment
	stop    func()
	control []int
}

// startIsolated starts the deployment (gatewayOverlay: a config file laid
// over the gateway's, or "") and its usual load for limit.
func startIsolated(t *testing.T, limit time.Duration, gatewayOverlay string) *isolated {
	t.Helper()
	d := testbed.Start(t, testbed.Options{Teams: teams(true), GatewayOverlay: gatewayOverlay})
	stop := loadFor(t, d, limit)
	require.Eventually(t, func() bool { return d.Projects.Count() > 1000 }, eventually, poll)
	return &isolated{d: d, stop: stop, control: landedPerWindow(d, 3, "team-a", "team-b")}
}

// during measures teams a and b over n windows and checks them against the control.
func (r *isolated) during(t *testing.T, what string, n int) []int {
	t.Helper()
	got := landedPerWindow(r.d, n, "team-a", "team-b")
	ratio := float64(median(got)) / float64(median(r.control))
	t.Logf("%s: teams a and b landed %v spans per %s (median %d), control %v (median %d): %.1f%%",
		what, got, isolationWindow, median(got), r.control, median(r.control), 100*ratio)
	assert.GreaterOrEqual(t, ratio, 0.9, "%s: teams a and b slowed by team c's fault", what)
	return got
}

// parked is team c's parked exports now, and whether the gateway says so.
func (r *isolated) parked(t *testing.T) float64 {
	t.Helper()
	n, _ := r.d.Gateway.MetricWhere("otelcol_vaultauth_park_exports", `tenant="team-c"`)
	return n
}

// finish ends the load, lets team c's data flow, and checks every span of
// every team landed, in its own project only (a SIGKILL may make the queue
// deliver a batch twice, to its own project).
func (r *isolated) finish(t *testing.T) (checked, dups int) {
	t.Helper()
	r.stop()
	awaitTeams(t, r.d, allTeams...)
	checked, dups = isolationAllowingRedelivery(t, r.d, allTeams...)
	for _, a := range r.d.Agents {
		n, _ := a.Metric("otelcol_exporter_send_failed_spans")
		assert.Zero(t, n, "%s dropped spans", a.Name)
	}
	return checked, dups
}

// A backlog (the projects down for 3 s), then team c's own writer empties
// its token, or an admin deletes its secret (offboarding), then a routine
// restart: team c's exports wait in its park; teams a and b flow.
func TestIsolationTokenGoneWithBacklogAndRestart(t *testing.T) {
	for name, fault := range map[string]func(d *testbed.Deployment){
		"empty token":    func(d *testbed.Deployment) { d.TeamWrite["team-c"]("") },
		"secret deleted": func(d *testbed.Deployment) { d.Vault.Delete(t, "secret/metadata/lightstep/teams/team-c") },
	} {
		t.Run(name, func(t *testing.T) {
			r := startIsolated(t, 3*time.Minute, "")
			d := r.d
			for _, team := range allTeams {
				d.Projects.Fail(team, codes.Unavailable)
			}
			time.Sleep(3 * time.Second)
			require.Positive(t, r.parked(t), "no backlog was parked")
			fault(d)
			d.Gateway.Kill()
			for _, team := range allTeams {
				d.Projects.Heal(team)
			}
			d.Gateway.Restart()
			after := d.Projects.CountIn("team-a")
			require.Eventually(t, func() bool { return d.Projects.CountIn("team-a") > after+500 }, eventually, poll,
				"team a does not flow after the restart\n%s", d.Gateway.LogTail(30))
			r.during(t, name+", after the restart", 4)
			assert.Positive(t, r.parked(t), "team c's backlog is not parked")
			held, _ := d.Gateway.Metric("otelcol_vaultidentity_requests_held")
			assert.Positive(t, held, "team c's new requests are not held at the door")
			assert.True(t, d.Gateway.Healthy(), "one team's missing token took the gateway's health down")
			assert.Contains(t, d.Gateway.Logs(), `"tenant": "team-c"`, "no log line names team c")

			d.Projects.Accept("team-c", "ls-c-v2")
			fixed := time.Now()
			d.TeamWrite["team-c"]("ls-c-v2")
			checked, dups := r.finish(t)
			t.Logf("%s: team c's token fixed, all its data landed %s later; %d spans checked, 0 lost, 0 cross-tenant, %d delivered twice",
				name, time.Since(fixed).Round(time.Millisecond), checked, dups)
		})
	}
}

// Team c's project throttles (Unavailable) for 60 s: teams a and b flow
// meanwhile; team c's exports are parked and land once it takes data again.
func TestIsolationProjectThrottling(t *testing.T) {
	r := startIsolated(t, 3*time.Minute, "")
	d := r.d
	d.Projects.Fail("team-c", codes.Unavailable)
	throttled := time.Now()
	time.Sleep(isolationWindow)
	r.during(t, "team c's project throttling", 19) // the rest of the 60 s
	require.Positive(t, r.parked(t), "team c's exports are not parked")
	d.Projects.Heal("team-c")
	t.Logf("team c throttled for %s", time.Since(throttled).Round(time.Second))
	checked, dups := r.finish(t)
	t.Logf("%d spans checked, 0 lost, 0 cross-tenant, %d delivered twice", checked, dups)
}

// Team c's project refuses its token (401, Unauthenticated): teams a and b
// flow; team c's data is parked, never sent with another token, and lands
// once its writer rotates to a token the project takes.
func TestIsolationProjectRefusesToken(t *testing.T) {
	r := startIsolated(t, 2*time.Minute, "")
	d := r.d
	d.Projects.Accept("team-c") // its token deactivated in Lightstep
	time.Sleep(isolationWindow)
	r.during(t, "team c's token refused", 4)
	require.Positive(t, r.parked(t), "team c's exports are not parked")
	rejected, _ := d.Gateway.MetricWhere("otelcol_vaultauth_parked_exports", `tenant="team-c"`, `reason="credential_rejected"`)
	assert.Positive(t, rejected, "not parked as refused")
	d.Projects.Accept("team-c", "ls-c-v2")
	d.TeamWrite["team-c"]("ls-c-v2")
	checked, dups := r.finish(t)
	t.Logf("%d spans checked, 0 lost, 0 cross-tenant (team c's only in its project, sent with its own token), %d delivered twice", checked, dups)
}

// Team c sends over ten times what teams a and b send together: through its
// agents, or straight to the gateway with its workloads' identity tokens
// (an agent that ignores backpressure, or anyone holding such a token).
// Against its own project's limit (every project throttled to
// projectRate) its excess is parked, then held at its senders. Against
// capacity every team shares (one limit for all projects, met downstream;
// or, its project taking everything, the gateway's own CPU) the gateway's
// tenant_limits holds it to doorRate at the door, while its senders
// retry every floodEvery, ignoring backoff. Teams a and b flow meanwhile,
// from the flood's first second; team c's data lands in full, in its own
// project, once the flood ends.
func TestIsolationDataVolume(t *testing.T) {
	const (
		ownLimit    = iota // each project projectRate
		sharedLimit        // one sharedRate for every project
		cUnlimited         // team c's project takes everything
	)
	for _, c := range []struct {
		name   string
		direct bool
		limit  int
	}{
		{"through its agents, its project throttled", false, ownLimit},
		{"straight to the gateway, its project throttled", true, ownLimit},
		{"straight to the gateway, one limit for every project, tenant_limits", true, sharedLimit},
		{"straight to the gateway, its project taking it all, tenant_limits", true, cUnlimited},
	} {
		t.Run(c.name, func(t *testing.T) {
			atDoor := c.limit != ownLimit
			overlay := ""
			if atDoor {
				overlay = testbed.Testdata("overlays/gateway-tenant-limits.yaml")
			}
			r := startIsolated(t, 3*time.Minute, overlay)
			d := r.d
			switch c.limit {
			case sharedLimit:
				d.Projects.ThrottleTogether(sharedRate, allTeams...)
			default:
				for _, team := range allTeams {
					if c.limit == ownLimit || team != "team-c" {
						d.Projects.Throttle(team, projectRate)
					}
				}
			}
			flooders := floodersOf(t, d, "team-c", c.direct)
			if atDoor {
				for _, f := range flooders {
					f.MaxBackoff = floodEvery // a sender that ignores backoff
				}
			}
			stopFlood := flood(t, flooders)
			cBefore := d.Projects.CountIn("team-c")
			windows := r.during(t, "team c flooding "+c.name, 10)
			stopFlood()
			cDuring := d.Projects.CountIn("team-c") - cBefore
			for _, team := range allTeams {
				d.Projects.Throttle(team, 0) // the backlog drains at once, to keep the test short
			}
			taken := 0
			for _, s := range flooders {
				taken += len(s.Sent())
				require.Zero(t, s.Refused(), "%s: flood requests refused for good: the flood did not happen", s.Workload)
			}
			// The flood happened, and met the limit it was meant to.
			if atDoor {
				over, _ := d.Gateway.Metric("otelcol_vaultidentity_requests_over_limit")
				require.Positive(t, over, "team c's flood never met its tenant_limits")
				require.GreaterOrEqual(t, taken, doorRate*floodSeconds/2, "team c got less than half its limit")
				// Its flood shares the limit with its agents' load: more than
				// the limit (plus the time around the windows) means it did
				// not hold. Without it the flood is taken in full.
				require.LessOrEqual(t, taken, doorRate*(floodSeconds+3), "team c passed more than its limit")
				t.Logf("%.0f requests of team c refused over its limit", over)
			} else {
				require.GreaterOrEqual(t, taken, floodPlanned/2, "team c's flood was not taken")
				parked, _ := d.Gateway.MetricWhere("otelcol_vaultauth_parked_exports", `tenant="team-c"`)
				require.Positive(t, parked, "team c was never throttled: none of its exports parked")
			}
			t.Logf("teams a and b: lowest window %.1f%% of the control's median; team c: %d spans of its flood taken, %d of its spans landed during it",
				100*float64(slices.Min(windows))/float64(median(r.control)), taken, cDuring)
			checked, dups := r.finish(t)
			require.Eventually(t, func() bool { return allLanded(d, flooders) }, eventually, poll, "team c's flood never landed")
			for _, s := range flooders {
				for _, id := range s.Sent() {
					for _, project := range d.Projects.Landed(id) {
						require.Equal(t, "team-c", project, "a flood span landed in another project")
					}
				}
				checked += len(s.Sent())
			}
			t.Logf("%d spans checked, 0 lost, 0 cross-tenant, %d delivered twice", checked, dups)
		})
	}
}

// flood sends from each of senders floodStreams streams of a request of
// floodBatch spans every floodEvery, for at most 45 s, until stopped.
func flood(t *testing.T, senders []*testbed.Flooder) (stop func()) {
	var halt atomic.Bool
	var wg sync.WaitGroup
	end := time.Now().Add(45 * time.Second)
	for _, s := range senders {
		for range floodStreams {
			wg.Go(func() {
				tick := time.NewTicker(floodEvery)
				defer tick.Stop()
				for i := 0; i < 5000 && !halt.Load() && time.Now().Before(end); i++ {
					s.Send()
					<-tick.C
				}
			})
		}
	}
	var once sync.Once
	stop = func() { once.Do(func() { halt.Store(true); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// Team c's flood: floodStreams streams per workload, each a request of
// floodBatch spans every floodEvery: 20,000 spans/s from its two
// workloads, over ten times teams a and b together, 6.7 times projectRate.
const (
	projectRate  = 3000
	sharedRate   = 4500 // teams a and b send about 1,200 spans/s of it
	doorRate     = 2500 // tenant_limits in overlays/gateway-tenant-limits.yaml
	floodBatch   = 500
	floodStreams = 2
	floodEvery   = 100 * time.Millisecond
	// floodPlanned is what team c sends while teams a and b are measured.
	floodPlanned = 2 * floodStreams * floodBatch * int(10*isolationWindow/floodEvery)
	floodSeconds = int(10 * isolationWindow / time.Second)
)

// floodersOf are the senders of team's flood, one per workload of the
// team: through the workload's agent, or straight to the gateway with the
// workload's identity token. They cost the test process little, so that
// what the flood costs lands on the collectors.
func floodersOf(t *testing.T, d *testbed.Deployment, team string, direct bool) []*testbed.Flooder {
	t.Helper()
	var out []*testbed.Flooder
	for i, w := range d.Workloads {
		if d.TeamOf[i] != team {
			continue
		}
		endpoint, token := d.Agents[i].OTLPGRPC, ""
		if direct {
			endpoint, token = d.Gateway.OTLPGRPC, w.IdentityToken(t, d.Vault)
		}
		out = append(out, testbed.NewFlooder(t, w.Name, 100+i, endpoint, token, floodBatch))
	}
	return out
}

func allLanded(d *testbed.Deployment, senders []*testbed.Flooder) bool {
	for _, s := range senders {
		for _, id := range s.Sent() {
			if len(d.Projects.Landed(id)) == 0 {
				return false
			}
		}
	}
	return true
}
