package vaultauthextension

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"

	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// tenantSpans are n traces of one span each, for tenant, with span ids
// numbered from first.
func tenantSpans(first, n int) []ptrace.Traces {
	out := make([]ptrace.Traces, n)
	for i := range out {
		td := ptrace.NewTraces()
		span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		span.SetName("op")
		span.SetSpanID(pcommon.SpanID{byte((first + i) >> 8), byte(first + i), 1})
		out[i] = td
	}
	return out
}

// Every export of a tenant whose project throttles is parked, over gRPC
// (the exporter lists the instance in its middlewares) and HTTP (the
// authenticator's RoundTripper) alike:
// with two consumers shared by both tenants and retries without end, the
// other tenant's exports all land meanwhile, and the throttled tenant's
// land, in full, once its project takes data again.
func TestThrottledTenantIsParked(t *testing.T) {
	v := vaulttest.Start(t)
	v.PutKV2(t, "lightstep/teams/a", map[string]any{"access_token": "token-a"})
	v.PutKV2(t, "lightstep/teams/c", map[string]any{"access_token": "token-c"})
	cfg := tenantsConfig(t, v)
	cfg.Client.Get().Tenants.Get().Park.InitialInterval = 50 * time.Millisecond
	cfg.Client.Get().Tenants.Get().Park.MaxInterval = 200 * time.Millisecond
	h := startExtension(t, cfg)
	projects := testbed.StartProjects(t)
	projects.Accept("a", "token-a")
	projects.Accept("c", "token-c")
	projects.Fail("c", codes.Unavailable)

	settings := map[string]any{
		"auth":    map[string]any{"authenticator": extID.String()},
		"timeout": "2s",
		"retry_on_failure": map[string]any{
			"enabled": true, "initial_interval": "100ms", "max_interval": "1s", "max_elapsed_time": "0s",
		},
		"sending_queue": map[string]any{"enabled": true, "num_consumers": 2, "queue_size": 10000, "batch": map[string]any{
			"flush_timeout": "10ms", "partition": map[string]any{"metadata_keys": []any{TenantMetadataKey}},
		}},
	}
	for kind, exp := range map[string]exporter.Traces{
		"grpc": startExporter(t, h, "otlp_grpc", map[string]any{"endpoint": projects.GRPCAddr, "tls": map[string]any{"insecure": true},
			"middlewares": []any{map[string]any{"id": extID.String()}}}, settings),
		"http": startExporter(t, h, "otlp_http", map[string]any{"endpoint": projects.HTTPAddr}, settings),
	} {
		t.Run(kind, func(t *testing.T) {
			base := map[string]int{"a": projects.CountIn("a"), "c": projects.CountIn("c")}
			var wg sync.WaitGroup
			for _, tenant := range []string{"c", "a"} { // c's exports first: they would take both consumers
				wg.Go(func() {
					for _, td := range tenantSpans(0, 200) {
						require.NoError(t, exp.ConsumeTraces(forTenant(tenant), td))
						time.Sleep(time.Millisecond)
					}
				})
			}
			wg.Wait()
			require.Eventually(t, func() bool { return projects.CountIn("a")-base["a"] == 200 }, eventually, poll,
				"tenant a's exports stalled behind tenant c's: %d of 200 landed", projects.CountIn("a")-base["a"])
			assert.Zero(t, projects.CountIn("c")-base["c"], "tenant c's project was throttling")
			parked, _ := h.sumWhere(t, "otelcol_vaultauth_park_exports", "tenant=c")
			assert.Positive(t, parked, "tenant c's exports are not parked")

			projects.Heal("c")
			require.Eventually(t, func() bool { return projects.CountIn("c")-base["c"] == 200 }, eventually, poll,
				"tenant c's parked exports: %d of 200 landed", projects.CountIn("c")-base["c"])
			require.Eventually(t, func() bool { n, _ := h.sumWhere(t, "otelcol_vaultauth_park_exports", "tenant=c"); return n == 0 }, eventually, poll)
			projects.Fail("c", codes.Unavailable) // for the next exporter kind
		})
	}
	replayed, _ := h.sumWhere(t, "otelcol_vaultauth_replayed_exports", "tenant=c")
	t.Logf("tenant c: %d exports replayed once its project took data again; tenant a: 400 of 400 landed while c throttled", replayed)
}

// startExporter starts an exporter of kind with conf and settings merged.
func startExporter(t *testing.T, h *harness, kind string, conf, settings map[string]any) exporter.Traces {
	t.Helper()
	for k, v := range settings {
		conf[k] = v
	}
	return pipelinetest.StartTracesExporter(t, h.host, kind, conf)
}
