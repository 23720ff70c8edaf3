package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
)

// One gateway (examples/gateway-multitenant.yaml), three teams with two
// workloads each, a Lightstep stand-in with one project per team accepting
// only its own token: every span must land in its own team's project, only.

func teams(withTokenC bool) []testbed.Team {
	c := testbed.Team{Name: "team-c", Workloads: []string{"c1", "c2"}}
	if withTokenC {
		c.Token = "ls-c-v1"
	}
	return []testbed.Team{
		{Name: "team-a", Workloads: []string{"a1", "a2"}, Token: "ls-a-v1"},
		{Name: "team-b", Workloads: []string{"b1", "b2"}, Token: "ls-b-v1"},
		c,
	}
}

// forgedTenantHeaders makes every agent send headers naming another tenant,
// as a compromised agent could: they must change nothing.
var forgedTenantHeaders = testbed.Testdata("overlays/agent-forged-tenant.yaml")

// load sends from every workload until stopped (bounded), each request
// retried by the workload's exporter until its agent takes it.
func load(t *testing.T, d *testbed.Deployment) (stop func()) {
	t.Helper()
	var halt atomic.Bool
	var wg sync.WaitGroup
	for _, s := range d.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3000 && !halt.Load(); i++ {
				s.Send(batch)
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	var once sync.Once
	stop = func() { once.Do(func() { halt.Store(true); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// isolation checks every span sent by the workloads of the listed teams:
// it landed exactly once, in its own team's project, stamped with its own
// team. It returns how many it checked.
func isolation(t *testing.T, d *testbed.Deployment, teams ...string) int {
	t.Helper()
	checked, dups := isolationAllowingRedelivery(t, d, teams...)
	require.Zero(t, dups, "spans delivered more than once")
	return checked
}

// isolationAllowingRedelivery is isolation where a span may land more than
// once (a persistent queue redelivers the batch a SIGKILL interrupted
// between its export and the queue's record of it), but only ever in its
// own team's project. It returns the spans checked and the extra deliveries.
func isolationAllowingRedelivery(t *testing.T, d *testbed.Deployment, teams ...string) (checked, dups int) {
	t.Helper()
	for i, s := range d.Senders {
		team := d.TeamOf[i]
		if !contains(teams, team) {
			continue
		}
		for _, id := range s.Sent() {
			landed := d.Projects.Landed(id)
			require.NotEmpty(t, landed, "%s span %s never landed", s.Workload, id)
			for _, project := range landed {
				require.Equal(t, team, project, "%s span %s landed in another team's project", s.Workload, id)
			}
			dups += len(landed) - 1
			span, _ := d.Projects.Span(id)
			require.Equal(t, []string{team}, span.Resource.Values("vault.tenant"), "%s span: stamped tenant", s.Workload)
			require.Equal(t, []string{d.Workloads[i].EntityID}, span.Resource.Values("vault.entity.id"), "%s span", s.Workload)
			require.Empty(t, span.Span.Values("vault.tenant"), "%s span: the forged tenant survived", s.Workload)
			onlyStamped(t, span, "vault.entity.id", "vault.entity.name", "vault.namespace", "vault.tenant", "vault.credential.hmac")
			checked++
		}
	}
	return checked, dups
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// awaitTeams waits until every span the teams' workloads sent has landed.
func awaitTeams(t *testing.T, d *testbed.Deployment, teams ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for i, s := range d.Senders {
			if !contains(teams, d.TeamOf[i]) {
				continue
			}
			for _, id := range s.Sent() {
				if len(d.Projects.Landed(id)) == 0 {
					return false
				}
			}
		}
		return true
	}, eventually, poll, "spans of %v never landed\ngateway log:\n%s", teams, d.Gateway.LogTail(30))
}

func TestTenantsEndToEnd(t *testing.T) {
	d := testbed.Start(t, testbed.Options{Teams: teams(false), AgentOverlay: forgedTenantHeaders})
	stop := load(t, d)

	// Teams a and b flow; team c, without a token, is held at its agents
	// (the gateway refuses it with a retryable error at the door), and does
	// not stall the others: before tenant_credentials, its retries took every
	// consumer of the gateway's queue and all teams stopped within 4 s.
	require.Eventually(t, func() bool { return d.Projects.Count() > 300 }, eventually, poll)
	require.Eventually(t, func() bool { n, _ := d.Gateway.Metric("otelcol_vaultidentity_requests_held"); return n > 0 }, eventually, poll,
		"team-c's requests are not held at the door\n%s", d.Gateway.LogTail(20))
	var windows []int
	for range 3 {
		before := d.Projects.Count()
		time.Sleep(2 * time.Second)
		windows = append(windows, d.Projects.Count()-before)
		require.Greater(t, windows[len(windows)-1], 500, "teams a and b stalled while team-c waits for its token: %v spans per 2 s", windows)
	}
	held, _ := d.Gateway.MetricWhere("otelcol_vaultauth_credential_available", `tenant="team-c"`)
	assert.Zero(t, held, "team-c has a credential?")
	for i, s := range d.Senders {
		if d.TeamOf[i] == "team-c" {
			for _, id := range s.Sent() {
				require.Empty(t, d.Projects.Landed(id), "team-c's data left without a token of its own")
			}
		}
	}

	// Team c's token is written: its held data flows, with no restart.
	d.Projects.Accept("team-c", "ls-c-v1")
	written := time.Now()
	d.TeamWrite["team-c"]("ls-c-v1")
	require.Eventually(t, func() bool {
		v, _ := d.Gateway.MetricWhere("otelcol_vaultauth_credential_available", `tenant="team-c"`)
		return v == 1
	}, eventually, poll)
	pickedUp := time.Since(written)
	require.Eventually(t, func() bool {
		for i, s := range d.Senders {
			if d.TeamOf[i] == "team-c" {
				for _, id := range s.Sent() {
					if len(d.Projects.Landed(id)) > 0 {
						return true
					}
				}
			}
		}
		return false
	}, eventually, poll)
	firstFlowed := time.Since(written)
	stop()
	awaitTeams(t, d, "team-a", "team-b", "team-c")
	flowed := time.Since(written)
	n := isolation(t, d, "team-a", "team-b", "team-c")

	failed, _ := d.Gateway.Metric("otelcol_exporter_send_failed_spans")
	assert.Zero(t, failed, "an export was refused by a project")
	t.Logf("tenants: %d spans from 3 teams (6 workloads, forged tenant headers and attributes), 0 cross-tenant, 0 duplicates; "+
		"teams a and b kept flowing while team-c was held (%v spans per 2 s); team-c's token picked up %s after it was written, "+
		"its first span landed %s after, all its held data within %s (refresh_interval 500ms, agents' retry interval up to 5s)",
		n, windows, pickedUp.Round(time.Millisecond), firstFlowed.Round(time.Millisecond), flowed.Round(time.Millisecond))
	assert.Less(t, pickedUp, time.Second, "the new tenant's token is read within refresh_interval (500ms, and Vault's answer)")
	assert.Less(t, firstFlowed, 7*time.Second, "team-c's data flows within refresh_interval and one retry of its agents (at most 5s)")
}

func TestTenantsGatewayKilledMidRun(t *testing.T) {
	d := testbed.Start(t, testbed.Options{Teams: teams(true)})
	stop := load(t, d)
	require.Eventually(t, func() bool { return d.Projects.Count() > 300 }, eventually, poll)
	d.Gateway.Kill()
	require.False(t, d.Gateway.Healthy(), "the gateway still answers after SIGKILL")
	d.Gateway.Restart()
	after := d.Projects.Count()
	require.Eventually(t, func() bool { return d.Projects.Count() > after+300 }, eventually, poll, "nothing flows after the restart")
	stop()
	awaitTeams(t, d, "team-a", "team-b", "team-c")
	n, dups := isolationAllowingRedelivery(t, d, "team-a", "team-b", "team-c")
	t.Logf("gateway SIGKILLed mid-run: %d spans from 3 teams, 0 lost, 0 cross-tenant, %d delivered twice (to their own project: "+
		"the queue redelivers a batch the kill caught between its export and its record)", n, dups)
}

func TestTenantRotationUnderLoad(t *testing.T) {
	bin := buildRotateCommand(t)
	d := testbed.Start(t, testbed.Options{Teams: teams(true)})
	// team-a's writer: an entity with metadata team=team-a under the
	// templated lightstep-team-writer policy.
	w := testbed.AppRoleCredentials(t, d.Vault, "lightstep-writer-team-a")
	login := []string{"--approle-role-id-file", w.RoleIDFile, "--approle-secret-id-file", w.SecretIDFile}
	rotate := func(tenant, token string) rotRun {
		return runRotCommand(t, bin, map[string]string{"VAULT_ADDR": d.Vault.Addr}, nil, append([]string{"rotate",
			"--path", "secret/data/lightstep/teams/{tenant}", "--tenant", tenant, "--token-file", rotTokenFile(t, token),
			"--collectors", rotMetricsURL(d.Gateway), "--interval", "200ms", "--timeout", "1m"}, login...)...)
	}
	stop := load(t, d)
	require.Eventually(t, func() bool { return d.Projects.Count() > 300 }, eventually, poll)

	// team-a's writer cannot rotate team-b's token.
	denied := rotate("team-b", "ls-b-FORGED")
	assert.NotZero(t, denied.code, "%s", denied)
	_, wrote := denied.line("wrote version ")
	assert.False(t, wrote, "a version was written to another team's path: %s", denied)
	assert.Contains(t, denied.stderr, "permission denied", "%s", denied)

	d.Projects.Accept("team-a", "ls-a-v1", "ls-a-v2")
	run := rotate("team-a", "ls-a-v2")
	require.Equal(t, 0, run.code, "%s", run)
	version, writtenAt := rotWrittenVersion(t, run)
	require.Equal(t, 2, version)
	last := run.lines[len(run.lines)-1]
	require.Equal(t, "all 1 collectors send version 2: the old token can be deactivated", last.text, "%s", run)
	v, _ := d.Gateway.MetricWhere("otelcol_vaultauth_secret_version", `tenant="team-a"`)
	require.EqualValues(t, 2, v, "the command said safe before the gateway sent team-a's new token")
	d.Projects.Accept("team-a", "ls-a-v2") // end of the overlap
	before := d.Projects.Count()
	require.Eventually(t, func() bool { return d.Projects.Count() > before+300 }, eventually, poll)
	stop()
	awaitTeams(t, d, "team-a", "team-b", "team-c")
	n := isolation(t, d, "team-a", "team-b", "team-c")

	failed, _ := d.Gateway.Metric("otelcol_exporter_send_failed_spans")
	assert.Zero(t, failed, "an export failed during the rotation")
	for _, team := range []string{"team-b", "team-c"} {
		v, _ := d.Gateway.MetricWhere("otelcol_vaultauth_secret_version", fmt.Sprintf(`tenant=%q`, team))
		assert.EqualValues(t, 1, v, "%s's token moved", team)
		r, _ := d.Gateway.MetricWhere("otelcol_vaultauth_rotations", fmt.Sprintf(`tenant=%q`, team))
		assert.Zero(t, r, "%s rotated", team)
	}
	assert.NotContains(t, run.String()+denied.String(), "ls-a-v", "the command printed a Lightstep token")
	t.Logf("team-a rotated under load with `vaultlightstep rotate --tenant team-a`: safe %s after the write; %d spans, 0 failed exports, 0 lost, "+
		"other teams untouched; team-a's writer refused on team-b's path (exit %d)",
		last.at.Sub(writtenAt).Round(time.Millisecond), n, denied.code)
}

// A queue that batches without partitioning by tenant would mix teams: the
// gateway refuses to start, saying which key to add.
func TestTenantBatchingWithoutPartitionStopsTheGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbed.CollectorBinary(t), "--config", "file:"+testbed.Example("gateway-multitenant.yaml"),
		"--set", "exporters::otlp_grpc/lightstep::sending_queue::batch::partition::metadata_keys=[]",
		"--set", "receivers::otlp::protocols::grpc::endpoint="+testbed.FreeAddr(t),
		"--set", "receivers::otlp::protocols::http::endpoint="+testbed.FreeAddr(t),
		"--set", "extensions::healthcheckv2::http::endpoint="+testbed.FreeAddr(t),
		"--set", "service::telemetry::metrics::level=none")
	cmd.Env = []string{"VAULT_ADDR=http://127.0.0.1:1", "VAULT_ROLE_ID_FILE=/r", "VAULT_SECRET_ID_FILE=/s",
		"AGENT_AUDIENCE=aud", "QUEUE_DIR=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the gateway started: %s", out)
	assert.Contains(t, string(out), `exporter "otlp_grpc/lightstep" batches in its sending queue without partitioning by tenant: add "vault:tenant" to exporters::otlp_grpc/lightstep::sending_queue::batch::partition::metadata_keys`)
}
