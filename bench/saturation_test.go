package bench

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vaultlightstep/vaultlightstep/internal/deploy"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

const (
	saturationSenders = 8                // concurrent OTLP clients, each sending as fast as it is answered
	saturationWarmup  = 3 * time.Second  // not counted: queues and caches fill
	saturationWindow  = 10 * time.Second // counted
)

// TestGatewaySaturation finds the highest span rate one gateway sustains on
// this machine, end to end (spans per second arriving at the backend while
// senders push as fast as the gateway answers), without and with vaultauth +
// vaultidentity, and with tenant routing. Run by `make bench`, not `make test`.
func TestGatewaySaturation(t *testing.T) {
	if testing.Short() {
		t.Skip("a load measurement")
	}
	v := vaulttest.Start(t)
	audience := deploy.ConfigureVault(t, v, v.Addr)
	deploy.TokenWriter(t, v)("ls-bench-token")
	deploy.TeamTokenWriter(t, v, "payments")("ls-bench-payments")
	w := deploy.NewTeamWorkload(t, v, "payments-api", "payments")
	jwt := v.IdentityToken(t, v.Write(t, "auth/approle/login", map[string]any{
		"role_id": w.RoleID, "secret_id": readFile(t, w.SecretIDFile),
	}).Auth.ClientToken, "otel-agent")

	var arrived atomic.Int64
	counter, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		arrived.Add(int64(td.SpanCount()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	backend := pipelinetest.StartTracesReceiver(t, pipelinetest.NewHost(nil), nil, counter).GRPCAddr

	gateways := []struct{ name, config, role string }{
		{"baseline (no vaultauth, no vaultidentity)", filepath.Join(deploy.RepoRoot(), "testdata", "bench", "gateway-baseline.yaml"), ""},
		{"with vaultauth + vaultidentity", deploy.Example("gateway.yaml"), "otel-gateway"},
		{"with tenant routing", deploy.Example("gateway-multitenant.yaml"), "otel-gateway-teams"},
	}
	rates := map[string]float64{}
	for _, g := range gateways {
		env := map[string]string{"QUEUE_DIR": t.TempDir(), "LIGHTSTEP_ENDPOINT": backend, "LIGHTSTEP_INSECURE": "true",
			"VAULT_ADDR": v.Addr, "AGENT_AUDIENCE": audience}
		if g.role != "" {
			creds := deploy.AppRoleCredentials(t, v, g.role)
			env["VAULT_ROLE_ID_FILE"], env["VAULT_SECRET_ID_FILE"] = creds.RoleIDFile, creds.SecretIDFile
		}
		gw := deploy.StartCollector(t, "saturation", g.config, env)
		rate := saturate(t, gw, jwt, &arrived)
		gw.Stop()
		rates[g.name] = rate
		t.Logf("%s: %.0f spans/s sustained end to end", g.name, rate)
	}
	base := rates[gateways[0].name]
	t.Logf("saturation, ours / baseline: %.1f%% with vaultauth + vaultidentity, %.1f%% with tenant routing (target >= 97%%)",
		100*rates[gateways[1].name]/base, 100*rates[gateways[2].name]/base)
}

// saturate pushes spans at gw from saturationSenders clients, each sending
// its next request as soon as the last is answered, and returns the spans
// per second that arrived at the backend during the counted window.
func saturate(t *testing.T, gw *deploy.Collector, jwt string, arrived *atomic.Int64) float64 {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for s := range saturationSenders {
		exp := pipelinetest.StartTracesExporter(t, pipelinetest.NewHost(nil), "otlp_grpc", map[string]any{
			"endpoint": gw.OTLPGRPC, "tls": map[string]any{"insecure": true},
			"headers":          map[string]any{"authorization": "Bearer " + jwt},
			"sending_queue":    map[string]any{"enabled": false},
			"retry_on_failure": map[string]any{"enabled": false},
		})
		td := spans(s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10_000_000; i++ { // bounded; stopped after the window
				select {
				case <-stop:
					return
				default:
				}
				c := ptrace.NewTraces()
				td.CopyTo(c)
				_ = exp.ConsumeTraces(context.Background(), c)
			}
		}()
	}
	time.Sleep(saturationWarmup) // the warm-up of the measurement
	before, start := arrived.Load(), time.Now()
	time.Sleep(saturationWindow) // the counted window
	rate := float64(arrived.Load()-before) / time.Since(start).Seconds()
	close(stop)
	wg.Wait()
	return rate
}
