package e2e

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/deploy"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

const (
	eventually = 60 * time.Second
	poll       = 50 * time.Millisecond
	batch      = 10 // spans per request
)

// env is the running deployment: Vault (behind a proxy that can cut it
// off), a gateway, one agent per workload, the stand-in and its sink.
type env struct {
	vault     *vaulttest.Server
	proxy     *vaulttest.Proxy
	sink      *deploy.Sink
	standIn   *deploy.StandIn
	gateway   *deploy.Collector
	agents    []*deploy.Collector
	workloads []deploy.Workload
	senders   []*deploy.Sender
	rotate    func(token string) int
}

// startDeployment starts it all; gatewayOverlay and agentOverlay, when not
// empty, are merged over the example configs.
func startDeployment(t *testing.T, gatewayOverlay, agentOverlay string) *env {
	t.Helper()
	overlay := func(path string) []string {
		if path == "" {
			return nil
		}
		return []string{path}
	}
	e := &env{vault: vaulttest.Start(t)}
	e.proxy = vaulttest.NewProxy(t, e.vault.HostPort())
	audience := deploy.ConfigureVault(t, e.vault, e.proxy.Addr)
	e.rotate = deploy.TokenWriter(t, e.vault)
	require.Equal(t, 1, e.rotate("ls-token-v1"))

	e.sink = deploy.StartSink(t)
	e.standIn = deploy.StartStandIn(t, e.sink, "ls-token-v1")
	gw := deploy.AppRoleCredentials(t, e.vault, "otel-gateway")
	e.gateway = deploy.StartCollector(t, "gateway", deploy.Example("gateway.yaml"), map[string]string{
		"VAULT_ADDR":                 e.proxy.Addr,
		"VAULT_ROLE_ID_FILE":         gw.RoleIDFile,
		"VAULT_SECRET_ID_FILE":       gw.SecretIDFile,
		"AGENT_AUDIENCE":             audience,
		"QUEUE_DIR":                  filepath.Join(t.TempDir(), "queue"),
		"LIGHTSTEP_ENDPOINT":         e.standIn.OTLPGRPC,
		"LIGHTSTEP_INSECURE":         "true",
		"LIGHTSTEP_REFRESH_INTERVAL": "500ms",
	}, overlay(gatewayOverlay)...)
	for i, name := range []string{"payments", "checkout"} {
		w := deploy.NewWorkload(t, e.vault, name)
		agent := deploy.StartCollector(t, "agent-"+name, deploy.Example("agent.yaml"), map[string]string{
			"VAULT_ADDR":           e.proxy.Addr,
			"VAULT_ROLE_ID_FILE":   w.RoleIDFile,
			"VAULT_SECRET_ID_FILE": w.SecretIDFile,
			"GATEWAY_ENDPOINT":     e.gateway.OTLPGRPC,
			"GATEWAY_INSECURE":     "true",
		}, overlay(agentOverlay)...)
		e.agents = append(e.agents, agent)
		e.workloads = append(e.workloads, w)
		e.senders = append(e.senders, deploy.NewSender(t, name, i, agent.OTLPGRPC))
	}
	return e
}

// sendEach sends n requests from every workload.
func (e *env) sendEach(t *testing.T, n int) {
	t.Helper()
	for _, s := range e.senders {
		for range n {
			require.True(t, s.Send(batch), "%s: its agent refused spans", s.Workload)
		}
	}
}

// awaitAll waits until every span any workload sent has reached the sink.
func (e *env) awaitAll(t *testing.T) int {
	t.Helper()
	var sent int
	require.Eventually(t, func() bool {
		sent = 0
		for _, s := range e.senders {
			ids := s.Sent()
			sent += len(ids)
			if len(e.sink.Missing(ids)) > 0 {
				return false
			}
		}
		return true
	}, eventually, poll, "spans lost: %d sent, %d arrived\ngateway log:\n%s", sent, e.sink.Count(), e.gateway.LogTail(30))
	return sent
}

func TestEndToEnd(t *testing.T) {
	e := startDeployment(t, "", "")

	t.Run("every span arrives stamped with its own workload's identity", func(t *testing.T) {
		e.sendEach(t, 10)
		e.awaitAll(t)
		for i, s := range e.senders {
			w := e.workloads[i]
			for _, id := range s.Sent() {
				res, _ := e.sink.Resource(id)
				require.Equal(t, w.EntityID, res["vault.entity.id"], "%s span", w.Name)
				require.Equal(t, w.Name, res["vault.entity.name"], "%s span", w.Name)
				require.Equal(t, "root", res["vault.namespace"], "%s span", w.Name)
				require.NotContains(t, res, "span.vault.entity.id", "%s: the forged span attribute survived", w.Name)
			}
		}
	})

	t.Run("token rotation with overlap loses nothing", func(t *testing.T) {
		var stop atomic.Bool
		var wg sync.WaitGroup
		t.Cleanup(func() { stop.Store(true); wg.Wait() }) // also when an assertion fails
		for _, s := range e.senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 5000 && !stop.Load(); i++ { // bounded: stopped once the rotation is done
					s.Send(batch)
					time.Sleep(5 * time.Millisecond) // a steady rate, not a flood
				}
			}()
		}
		before := e.sink.Count()
		require.Eventually(t, func() bool { return e.sink.Count() > before+100 }, eventually, poll)

		// Lightstep accepts the new token first, then it is written to Vault.
		e.standIn.Accept("ls-token-v1", "ls-token-v2")
		rotatedAt := time.Now()
		require.Equal(t, 2, e.rotate("ls-token-v2"))
		require.Eventually(t, func() bool {
			v, _ := e.gateway.Metric("otelcol_vaultauth_secret_version")
			return v == 2
		}, eventually, poll, "the gateway never picked up version 2; its metrics:\n%s", e.gateway.MetricsText("otelcol_vaultauth"))
		pickedUp := time.Since(rotatedAt)
		// End of the overlap: only the new token is accepted.
		e.standIn.Accept("ls-token-v2")
		after := e.sink.Count()
		require.Eventually(t, func() bool { return e.sink.Count() > after+200 }, eventually, poll,
			"nothing arrives after the old token was withdrawn")
		stop.Store(true)
		wg.Wait()

		sent := e.awaitAll(t)
		exported, found := e.gateway.Metric("otelcol_exporter_sent_spans")
		require.True(t, found, "the gateway exports no exporter metrics:\n%s", e.gateway.MetricsText("otelcol_exporter"))
		assert.GreaterOrEqual(t, exported, float64(sent))
		failed, _ := e.gateway.Metric("otelcol_exporter_send_failed_spans")
		assert.Zero(t, failed, "the stand-in rejected some of the gateway's exports")
		for _, s := range e.senders {
			assert.Zero(t, s.Errors(), "%s: requests refused by its agent", s.Workload)
		}
		t.Logf("rotation: gateway picked up v2 after %s; %d spans sent in all, all arrived, %d duplicates",
			pickedUp.Round(time.Millisecond), sent, e.sink.Duplicates())
	})

	t.Run("Vault unreachable for a while loses nothing", func(t *testing.T) {
		failuresBefore, _ := e.gateway.Metric("otelcol_vaultauth_vault_request_failures")
		e.proxy.SetDown(true)
		// Wait until the gateway has noticed: its version checks fail.
		require.Eventually(t, func() bool {
			n, _ := e.gateway.Metric("otelcol_vaultauth_vault_request_failures")
			return n > failuresBefore
		}, eventually, poll)
		e.sendEach(t, 20)
		e.awaitAll(t)
		e.proxy.SetDown(false)
		e.sendEach(t, 20)
		sent := e.awaitAll(t)
		t.Logf("outage: %d spans sent in all, all arrived", sent)
	})
}

// Each example config is accepted by the built collector.
func TestExampleConfigsValidate(t *testing.T) {
	env := map[string]string{
		"VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_ROLE_ID_FILE": "/vault/role-id", "VAULT_SECRET_ID_FILE": "/vault/secret-id",
		"GATEWAY_ENDPOINT": "gateway:4317", "AGENT_AUDIENCE": "aud", "QUEUE_DIR": t.TempDir(),
	}
	for _, name := range []string{"agent.yaml", "gateway.yaml", "sidecar.yaml"} {
		out, err := deploy.Validate(deploy.Example(name), env)
		require.NoError(t, err, "%s: %s", name, out)
	}
	_, err := deploy.Validate(filepath.Join(deploy.RepoRoot(), "testdata", "lightstep-standin.yaml"), map[string]string{
		"ACCEPTED_TOKENS_FILE": "/t", "SINK_ENDPOINT": "127.0.0.1:1", "HEALTH_ENDPOINT": "127.0.0.1:2", "METRICS_PORT": "3",
		"OTLP_GRPC_ENDPOINT": "127.0.0.1:4",
	})
	require.NoError(t, err)
	// A broken config is refused, naming the key.
	out, err := deploy.Validate(deploy.Example("gateway.yaml"), map[string]string{
		"VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_ROLE_ID_FILE": "/r", "VAULT_SECRET_ID_FILE": "/s",
		"AGENT_AUDIENCE": "", "QUEUE_DIR": t.TempDir(),
	})
	require.Error(t, err)
	assert.Contains(t, out, "identity_token.audience")
}
