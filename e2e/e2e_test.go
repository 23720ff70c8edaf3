package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
)

const (
	eventually = 60 * time.Second
	poll       = 50 * time.Millisecond
	batch      = 10 // spans per request
)

// sendEach sends n requests from every workload.
func sendEach(t *testing.T, d *testbed.Deployment, n int) {
	t.Helper()
	for _, s := range d.Senders {
		for range n {
			require.True(t, s.Send(batch), "%s: its agent refused spans", s.Workload)
		}
	}
}

// awaitAll waits until every span any workload sent has reached the sink.
func awaitAll(t *testing.T, d *testbed.Deployment) int {
	t.Helper()
	var sent int
	require.Eventually(t, func() bool {
		var all bool
		all, sent = d.AllArrived()
		return all
	}, eventually, poll, "spans lost: %d sent, %d arrived\ngateway log:\n%s", sent, d.Sink.Count(), d.Gateway.LogTail(30))
	return sent
}

// onlyStamped checks, by counting what arrived, that the resource carries
// exactly the stamped identity keys, each once, and no other identity key
// in any letter case or nested map, and that the span carries none: the
// senders wrote vault.entity.id and vault.tenant twice, as VAULT.Tenant and
// Vault.Entity.Id, as a vault map and inside another map.
func onlyStamped(t *testing.T, span testbed.Arrived, stamped ...string) {
	t.Helper()
	require.ElementsMatch(t, stamped, span.Resource.IdentityKeys(), "identity keys on the resource")
	require.Empty(t, span.Span.IdentityKeys(), "identity keys on the span")
	require.Equal(t, []string{`{"ok":"kept"}`}, span.Span.Values("app.meta"), "the nested map kept its own key")
}

func TestEndToEnd(t *testing.T) {
	e := testbed.Start(t, testbed.Options{})

	t.Run("every span arrives stamped with its own workload's identity", func(t *testing.T) {
		sendEach(t, e, 10)
		awaitAll(t, e)
		for i, s := range e.Senders {
			w := e.Workloads[i]
			for _, id := range s.Sent() {
				span, _ := e.Sink.Span(id)
				// Counted, not looked up: each key exactly once, with the verified value.
				require.Equal(t, []string{w.EntityID}, span.Resource.Values("vault.entity.id"), "%s span", w.Name)
				require.Equal(t, []string{w.Name}, span.Resource.Values("vault.entity.name"), "%s span", w.Name)
				require.Equal(t, []string{"root"}, span.Resource.Values("vault.namespace"), "%s span", w.Name)
				require.Empty(t, span.Span.Values("vault.entity.id"), "%s: the forged span attribute survived", w.Name)
				onlyStamped(t, span, "vault.entity.id", "vault.entity.name", "vault.namespace", "vault.credential.hmac")
			}
		}
	})

	t.Run("token rotation with overlap loses nothing", func(t *testing.T) {
		var stop atomic.Bool
		var wg sync.WaitGroup
		t.Cleanup(func() { stop.Store(true); wg.Wait() }) // also when an assertion fails
		for _, s := range e.Senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 5000 && !stop.Load(); i++ { // bounded: stopped once the rotation is done
					s.Send(batch)
					time.Sleep(5 * time.Millisecond) // a steady rate, not a flood
				}
			}()
		}
		before := e.Sink.Count()
		require.Eventually(t, func() bool { return e.Sink.Count() > before+100 }, eventually, poll)

		// Lightstep accepts the new token first, then it is written to Vault.
		e.StandIn.Accept("ls-token-v1", "ls-token-v2")
		rotatedAt := time.Now()
		require.Equal(t, 2, e.Rotate("ls-token-v2"))
		require.Eventually(t, func() bool {
			v, _ := e.Gateway.Metric("otelcol_vaultauth_secret_version")
			return v == 2
		}, eventually, poll, "the gateway never picked up version 2; its metrics:\n%s", e.Gateway.MetricsText("otelcol_vaultauth"))
		pickedUp := time.Since(rotatedAt)
		// End of the overlap: only the new token is accepted.
		e.StandIn.Accept("ls-token-v2")
		after := e.Sink.Count()
		require.Eventually(t, func() bool { return e.Sink.Count() > after+200 }, eventually, poll,
			"nothing arrives after the old token was withdrawn")
		stop.Store(true)
		wg.Wait()

		sent := awaitAll(t, e)
		exported, found := e.Gateway.Metric("otelcol_exporter_sent_spans")
		require.True(t, found, "the gateway exports no exporter metrics:\n%s", e.Gateway.MetricsText("otelcol_exporter"))
		assert.GreaterOrEqual(t, exported, float64(sent))
		failed, _ := e.Gateway.Metric("otelcol_exporter_send_failed_spans")
		assert.Zero(t, failed, "the stand-in rejected some of the gateway's exports")
		for _, s := range e.Senders {
			assert.Zero(t, s.Errors(), "%s: requests refused by its agent", s.Workload)
		}
		t.Logf("rotation: gateway picked up v2 after %s; %d spans sent in all, all arrived, %d duplicates",
			pickedUp.Round(time.Millisecond), sent, e.Sink.Duplicates())
	})

	t.Run("Vault unreachable for a while loses nothing", func(t *testing.T) {
		failuresBefore, _ := e.Gateway.Metric("otelcol_vaultauth_vault_request_failures")
		e.Proxy.SetDown(true)
		// Wait until the gateway has noticed: its version checks fail.
		require.Eventually(t, func() bool {
			n, _ := e.Gateway.Metric("otelcol_vaultauth_vault_request_failures")
			return n > failuresBefore
		}, eventually, poll)
		sendEach(t, e, 20)
		awaitAll(t, e)
		e.Proxy.SetDown(false)
		sendEach(t, e, 20)
		sent := awaitAll(t, e)
		t.Logf("outage: %d spans sent in all, all arrived", sent)
	})
}

// Each example config is accepted by the built collector.
func TestExampleConfigsValidate(t *testing.T) {
	env := map[string]string{
		"VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_ROLE_ID_FILE": "/vault/role-id", "VAULT_SECRET_ID_FILE": "/vault/secret-id",
		"GATEWAY_ENDPOINT": "gateway:4317", "AGENT_AUDIENCE": "aud", "QUEUE_DIR": t.TempDir(),
	}
	for _, name := range []string{"agent.yaml", "gateway.yaml", "gateway-multitenant.yaml", "sidecar.yaml"} {
		out, err := testbed.Validate(t, testbed.Example(name), env)
		require.NoError(t, err, "%s: %s", name, out)
	}
	_, err := testbed.Validate(t, filepath.Join(testbed.RepoRoot(), "testdata", "lightstep-standin.yaml"), map[string]string{
		"ACCEPTED_TOKENS_FILE": "/t", "SINK_ENDPOINT": "127.0.0.1:1", "HEALTH_ENDPOINT": "127.0.0.1:2", "METRICS_PORT": "3",
		"OTLP_GRPC_ENDPOINT": "127.0.0.1:4",
	})
	require.NoError(t, err)
	// A broken config is refused, naming the key.
	out, err := testbed.Validate(t, testbed.Example("gateway.yaml"), map[string]string{
		"VAULT_ADDR": "http://127.0.0.1:8200", "VAULT_ROLE_ID_FILE": "/r", "VAULT_SECRET_ID_FILE": "/s",
		"AGENT_AUDIENCE": "", "QUEUE_DIR": t.TempDir(),
	})
	require.Error(t, err)
	assert.Contains(t, out, "identity_token: audience: required")
}

// A vaultauth instance used for a job it does not do stops the collector at
// start, naming the instance, the missing block and where it is used.
func TestMisusedInstanceStopsTheCollector(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbed.CollectorBinary(t), "--config", "file:"+testbed.Example("gateway.yaml"),
		"--set", "receivers::otlp::protocols::grpc::auth::authenticator=vaultauth/lightstep",
		"--set", "receivers::otlp::protocols::grpc::endpoint="+testbed.FreeAddr(t),
		"--set", "receivers::otlp::protocols::http::endpoint="+testbed.FreeAddr(t),
		"--set", "extensions::healthcheckv2::http::endpoint="+testbed.FreeAddr(t),
		"--set", "service::telemetry::metrics::level=none")
	cmd.Env = []string{"VAULT_ADDR=http://127.0.0.1:1", "VAULT_ROLE_ID_FILE=/r", "VAULT_SECRET_ID_FILE=/s",
		"AGENT_AUDIENCE=aud", "QUEUE_DIR=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the collector started: %s", out)
	assert.Contains(t, string(out), `vaultauth/lightstep has no server block, but receiver "otlp" uses it as its authenticator (receivers::otlp::protocols::grpc::auth)`)
}
