package bench

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

const (
	throughputRate     = 20000 // spans per second offered
	throughputBatch    = 100   // spans per request
	throughputDuration = 10 * time.Second
	throughputSenders  = 4
)

// TestGatewayThroughput runs the built collector with the gateway config,
// with and without vaultauth + vaultidentity, loads each at a fixed rate for
// a bounded time, and reports accepted spans/s and gateway CPU per span.
// Run by `make bench`, not by `make test`.
func TestGatewayThroughput(t *testing.T) {
	if testing.Short() {
		t.Skip("a load measurement")
	}
	v := vaulttest.Start(t)
	v.EnableFileAudit(t) // examples/gateway.yaml joins each credential to it
	audience := testbed.ConfigureVault(t, v, v.Addr)
	testbed.TokenWriter(t, v)("ls-bench-token")
	w := testbed.NewWorkload(t, v, "payments")
	jwt := v.IdentityToken(t, v.Write(t, "auth/approle/login", map[string]any{
		"role_id": w.RoleID, "secret_id": readFile(t, w.SecretIDFile),
	}).Auth.ClientToken, "otel-agent")
	sink := testbed.StartSink(t)

	baseline := testbed.StartCollector(t, "gateway-baseline", filepath.Join(testbed.RepoRoot(), "testdata", "bench", "gateway-baseline.yaml"),
		map[string]string{"QUEUE_DIR": t.TempDir(), "LIGHTSTEP_ENDPOINT": sink.GRPCAddr})
	gw := testbed.AppRoleCredentials(t, v, "otel-gateway")
	ours := testbed.StartCollector(t, "gateway", testbed.Example("gateway.yaml"), map[string]string{
		"VAULT_ADDR": v.Addr, "VAULT_ROLE_ID_FILE": gw.RoleIDFile, "VAULT_SECRET_ID_FILE": gw.SecretIDFile,
		"AGENT_AUDIENCE": audience, "QUEUE_DIR": t.TempDir(),
		"LIGHTSTEP_ENDPOINT": sink.GRPCAddr, "LIGHTSTEP_INSECURE": "true",
	})

	results := map[string]throughput{}
	for _, run := range []struct {
		name string
		gw   *testbed.Collector
	}{{"baseline (no vaultauth, no vaultidentity)", baseline}, {"with vaultauth + vaultidentity", ours}} {
		results[run.name] = load(t, run.gw, jwt)
		r := results[run.name]
		t.Logf("%s: offered %d spans/s for %s: accepted %.0f spans/s, %d refused, gateway CPU %.2fs = %.2f µs/span",
			run.name, throughputRate, throughputDuration, r.acceptedPerSec, r.refused, r.cpu, r.cpu*1e6/float64(r.accepted))
	}
	b, o := results["baseline (no vaultauth, no vaultidentity)"], results["with vaultauth + vaultidentity"]
	t.Logf("ours / baseline: throughput %.1f%%, CPU per span %.2fx",
		100*o.acceptedPerSec/b.acceptedPerSec, (o.cpu/float64(o.accepted))/(b.cpu/float64(b.accepted)))
}

type throughput struct {
	accepted, refused int64
	acceptedPerSec    float64
	cpu               float64
}

// load offers throughputRate spans/s to gw for throughputDuration, from
// throughputSenders OTLP gRPC clients carrying the agent's identity token.
func load(t *testing.T, gw *testbed.Collector, jwt string) throughput {
	t.Helper()
	var accepted, refused atomic.Int64
	cpuBefore := gw.CPUSeconds()
	start := time.Now()
	var wg sync.WaitGroup
	for s := range throughputSenders {
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
			every := time.Second * throughputBatch * throughputSenders / throughputRate
			tick := time.NewTicker(every)
			defer tick.Stop()
			for time.Since(start) < throughputDuration {
				<-tick.C
				c := ptrace.NewTraces()
				td.CopyTo(c)
				if err := exp.ConsumeTraces(context.Background(), c); err != nil {
					refused.Add(throughputBatch)
				} else {
					accepted.Add(throughputBatch)
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	// Let the gateway finish what it took before reading its CPU.
	time.Sleep(500 * time.Millisecond) // a settling period of the measurement, not a wait for a condition
	return throughput{
		accepted: accepted.Load(), refused: refused.Load(),
		acceptedPerSec: float64(accepted.Load()) / took.Seconds(),
		cpu:            gw.CPUSeconds() - cpuBefore,
	}
}

func spans(sender int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	resourceAttrs(rs.Resource().Attributes(), sender)
	ss := rs.ScopeSpans().AppendEmpty()
	for j := range throughputBatch {
		s := ss.Spans().AppendEmpty()
		s.SetName("POST /api/v1/orders/{id}")
		itemAttrs(s.Attributes(), j)
	}
	return td
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := readAll(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
