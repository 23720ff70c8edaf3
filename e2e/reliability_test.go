package e2e

import (
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Vault out of reach when the collector starts, back after 30s: the
// collector is up the whole time, nothing is exported without a token or
// stamped without an identity (the sidecar refuses with a retryable error,
// so the workload's exporter keeps the data and retries), and everything
// sent during the outage arrives once Vault is back.
func TestVaultDownAtStart(t *testing.T) {
	const outage = 30 * time.Second
	v := vaulttest.Start(t)
	v.EnableFileAudit(t) // the sidecar stamps its own token's audit HMAC
	proxy := vaulttest.NewProxy(t, v.HostPort())
	testbed.ConfigureVault(t, v, proxy.Addr)
	testbed.TokenWriter(t, v)("ls-token-v1")
	sink := testbed.StartSink(t)
	standIn := testbed.StartStandIn(t, sink, "ls-token-v1")
	creds := testbed.AppRoleCredentials(t, v, "otel-sidecar")

	proxy.SetDown(true)
	down := time.Now()
	// StartCollector waits for the health endpoint: the collector starts without Vault.
	sidecar := testbed.StartCollector(t, "sidecar", testbed.Example("sidecar.yaml"), map[string]string{
		"VAULT_ADDR": proxy.Addr, "VAULT_ROLE_ID_FILE": creds.RoleIDFile, "VAULT_SECRET_ID_FILE": creds.SecretIDFile,
		"LIGHTSTEP_ENDPOINT": standIn.OTLPGRPC, "LIGHTSTEP_INSECURE": "true",
	})
	sender := testbed.NewSender(t, "payments", 0, sidecar.OTLPGRPC)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the workload keeps sending; each request retries until taken
		defer wg.Done()
		for i := 0; i < 120 && time.Since(down) < outage; i++ { // bounded
			sender.Send(batch)
			time.Sleep(500 * time.Millisecond)
		}
	}()
	for time.Since(down) < outage {
		require.True(t, sidecar.Healthy(), "the sidecar went unhealthy while Vault was down")
		time.Sleep(500 * time.Millisecond)
	}
	assert.Zero(t, sink.Count(), "something was exported without a token")

	proxy.SetDown(false)
	up := time.Now()
	wg.Wait()
	require.Eventually(t, func() bool { return len(sink.Missing(sender.Sent())) == 0 }, eventually, poll,
		"spans sent during the outage were lost\n%s", sidecar.LogTail(20))
	assert.Zero(t, sender.Errors(), "a request was given up")
	assert.NotEmpty(t, sender.Sent())
	logs := sidecar.Logs()
	assert.Equal(t, 1, strings.Count(logs, "Vault login failing"), "one warning for the outage")
	assert.Equal(t, 1, strings.Count(logs, "Vault login recovered"))
	t.Logf("Vault down at start for %s: %d spans sent during it, all arrived %s after Vault came back",
		outage, len(sender.Sent()), time.Since(up).Round(time.Millisecond))
}

// The gateway killed (SIGKILL) while spans flow, and restarted: its
// persistent queue and the agents' retries deliver everything.
func TestGatewayKilledMidRun(t *testing.T) {
	e := testbed.Start(t, testbed.Options{})
	var stop atomic.Bool
	var wg sync.WaitGroup
	t.Cleanup(func() { stop.Store(true); wg.Wait() })
	for _, s := range e.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000 && !stop.Load(); i++ { // bounded
				s.Send(batch)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	before := e.Sink.Count()
	require.Eventually(t, func() bool { return e.Sink.Count() > before+500 }, eventually, poll)
	e.Gateway.Kill()
	killed := time.Now()
	require.False(t, e.Gateway.Healthy(), "the gateway still answers after SIGKILL")
	e.Gateway.Restart()
	restarted := time.Since(killed)
	after := e.Sink.Count()
	require.Eventually(t, func() bool { return e.Sink.Count() > after+500 }, eventually, poll, "nothing flows after the restart")
	stop.Store(true)
	wg.Wait()
	sent := awaitAll(t, e)
	t.Logf("gateway SIGKILLed and back in %s: %d spans sent, 0 lost, %d delivered twice",
		restarted.Round(time.Millisecond), sent, e.Sink.Duplicates())
}

// With debug logs, through a rotation, a Vault outage and a gateway that
// loses Vault: no Lightstep token, Vault token, AppRole credential or
// identity JWT appears in any collector's output, internal metrics or zpages.
func TestNoSecretsInCollectorOutput(t *testing.T) {
	e := testbed.Start(t, testbed.Options{GatewayOverlay: testbed.Testdata("overlays/debug-gateway.yaml"), AgentOverlay: testbed.Testdata("overlays/debug-agent.yaml")})
	sendEach(t, e, 5)
	e.StandIn.Accept("ls-token-v1", "ls-token-v2")
	e.Rotate("ls-token-v2")
	require.Eventually(t, func() bool { v, _ := e.Gateway.Metric("otelcol_vaultauth_secret_version"); return v == 2 }, eventually, poll)
	sendEach(t, e, 5)
	e.Proxy.SetDown(true)
	require.Eventually(t, func() bool { n, _ := e.Gateway.Metric("otelcol_vaultauth_vault_request_failures"); return n > 0 }, eventually, poll)
	sendEach(t, e, 5)
	e.Proxy.SetDown(false)
	awaitAll(t, e)

	secrets := map[string]string{
		"Lightstep token v1": "ls-token-v1", "Lightstep token v2": "ls-token-v2",
		"a Vault service token": "hvs.", "an identity JWT": "eyJhbGciOi", "the root token": e.Vault.RootToken,
	}
	for _, w := range e.Workloads {
		secrets[w.Name+" role id"] = w.RoleID
		secrets[w.Name+" secret id"] = testbed.ReadFile(t, w.SecretIDFile)
	}
	var collected strings.Builder
	var debugLines int
	for _, c := range append([]*testbed.Collector{e.Gateway, e.StandIn.Collector}, e.Agents...) {
		logs := c.Logs()
		debugLines += strings.Count(logs, "\tdebug\t")
		collected.WriteString(logs)
		collected.WriteString(c.MetricsText(""))
		for _, page := range []string{"servicez", "pipelinez", "extensionz", "featurez", "tracez"} {
			collected.WriteString(c.Get("http://" + c.ZPages + "/debug/" + page))
		}
	}
	require.Positive(t, debugLines, "debug logging was not on: the check proves little")
	out := collected.String()
	require.Contains(t, out, "vaultauth", "zpages and metrics were not collected")
	for what, s := range secrets {
		assert.NotContains(t, out, s, "%s appears in collector output", what)
	}
	t.Logf("checked %d bytes of logs (%d debug lines), metrics and zpages from %d collectors",
		len(out), debugLines, 2+len(e.Agents))
}

// print-config shows secrets in the config as [REDACTED].
func TestPrintConfigRedactsSecrets(t *testing.T) {
	const secret = "hvs.printed-config-secret"
	cmd := exec.Command(testbed.CollectorBinary(t), "print-config", "--config", "file:"+testbed.Example("gateway.yaml"),
		"--set", "extensions::vaultauth/lightstep::auth::secret_id="+secret,
		"--set", "extensions::vaultauth/lightstep::auth::secret_id_file=",
		"--set", "extensions::vaultauth/agents::auth::token="+secret)
	cmd.Env = []string{"VAULT_ADDR=http://127.0.0.1:8200", "VAULT_ROLE_ID_FILE=/r", "VAULT_SECRET_ID_FILE=/s",
		"AGENT_AUDIENCE=aud", "QUEUE_DIR=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), secret)
	assert.Contains(t, string(out), "secret_id: '[REDACTED]'")
}

// The health endpoint (healthcheckv2 with component status, as the
// examples configure it) says when the credential can no longer be kept:
// healthy through a Vault outage the last good value bridges, unhealthy once
// Vault is still unreachable and that value (here a 4 s identity token) has
// expired, healthy again once Vault is back.
func TestHealthFollowsTheCredential(t *testing.T) {
	const ttl = 4 * time.Second
	v := vaulttest.Start(t)
	proxy := vaulttest.NewProxy(t, v.HostPort())
	testbed.ConfigureVault(t, v, proxy.Addr)
	v.Write(t, "identity/oidc/role/otel-agent", map[string]any{"key": "otel", "ttl": ttl.String(),
		"template": `{"entity_name": {{identity.entity.name}}}`})
	w := testbed.NewWorkload(t, v, "payments")
	agent := testbed.StartCollector(t, "agent", testbed.Example("agent.yaml"), map[string]string{
		"VAULT_ADDR": proxy.Addr, "VAULT_ROLE_ID_FILE": w.RoleIDFile, "VAULT_SECRET_ID_FILE": w.SecretIDFile,
		"GATEWAY_ENDPOINT": testbed.FreeAddr(t), "GATEWAY_INSECURE": "true", "HEALTH_RECOVERY_DURATION": ttl.String(),
	})
	available := func() float64 { n, _ := agent.Metric("otelcol_vaultauth_credential_available"); return n }
	require.Eventually(t, func() bool { return available() == 1 }, eventually, poll)
	require.True(t, agent.Healthy())

	proxy.SetDown(true)
	down := time.Now()
	require.Eventually(t, func() bool { return !agent.Healthy() }, eventually, poll, "never unhealthy")
	unhealthy := time.Since(down)
	assert.Zero(t, available(), "unhealthy while the last good identity token was still valid")
	proxy.SetDown(false)
	require.Eventually(t, agent.Healthy, eventually, poll, "not healthy again after Vault came back")
	t.Logf("Vault cut: unhealthy after %s (identity token TTL and recovery_duration %s), healthy again once Vault was back",
		unhealthy.Round(time.Millisecond), ttl)
}
