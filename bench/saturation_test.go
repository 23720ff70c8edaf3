package bench

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
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
	saturationSenders = 32               // concurrent OTLP clients, each sending as fast as it is answered
	saturationWarmup  = 3 * time.Second  // not counted: queues and caches fill
	saturationWindow  = 10 * time.Second // counted
	saturationRounds  = 5                // SATURATION_ROUNDS overrides
	saturationBackoff = 5 * time.Millisecond
)

// saturationGateway is one gateway config measured at saturation.
type saturationGateway struct {
	name, config, role string
	rates, cpus        []float64 // per round: spans/s arrived, gateway CPU µs per span
}

// TestGatewaySaturation finds the highest span rate one gateway sustains on
// this machine, end to end (spans per second arriving at the backend while
// senders push as fast as the gateway answers), without and with vaultauth +
// vaultidentity, and with tenant routing beside the same gateway without
// vaultauth but with the tenant-partitioned queue tenant routing needs.
//
// The gateway runs pinned to a core of its own, the load on the other. On a
// shared 2-core VM one window of one config still varies by ±10% between
// runs, so each comparison runs as a pair, back to back, in alternating
// order, for several rounds; the ratio reported is the median of the
// per-round ratios, with their range. The gateway's CPU per span is reported
// beside the rate: it says how much of a difference is the gateway's own
// work. Run by `make bench`, not `make test`.
func TestGatewaySaturation(t *testing.T) {
	if testing.Short() {
		t.Skip("a load measurement")
	}
	rounds := saturationRounds
	if n, err := strconv.Atoi(os.Getenv("SATURATION_ROUNDS")); err == nil && n > 0 {
		rounds = n
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

	// The gateway gets CPU 1 to itself; senders, backend and Vault share
	// CPU 0. Unpinned, the senders compete with the gateway for its core and
	// one config's rate varied by ±30% between back-to-back runs.
	pinned := runtime.NumCPU() >= 2 && pin(os.Getpid(), 0)
	if pinned {
		t.Cleanup(func() { unpin(os.Getpid()) }) // the tests after this one get every core back
	} else {
		t.Log("gateway not pinned to a core of its own: expect wider variation")
	}
	run := func(round int, g *saturationGateway) {
		env := map[string]string{"QUEUE_DIR": t.TempDir(), "LIGHTSTEP_ENDPOINT": backend, "LIGHTSTEP_INSECURE": "true",
			"VAULT_ADDR": v.Addr, "AGENT_AUDIENCE": audience}
		if g.role != "" {
			creds := deploy.AppRoleCredentials(t, v, g.role)
			env["VAULT_ROLE_ID_FILE"], env["VAULT_SECRET_ID_FILE"] = creds.RoleIDFile, creds.SecretIDFile
		}
		gw := deploy.StartCollector(t, "saturation", g.config, env)
		if pinned && !pin(gw.Pid(), 1) {
			t.Fatal("could not pin the gateway to CPU 1")
		}
		rate, cpu, refused := saturate(t, gw, jwt, &arrived)
		gw.Stop()
		g.rates, g.cpus = append(g.rates, rate), append(g.cpus, cpu)
		t.Logf("round %d, %s: %.0f spans/s, gateway CPU %.2f µs/span, %d requests refused", round+1, g.name, rate, cpu, refused)
	}
	bench := filepath.Join(deploy.RepoRoot(), "testdata", "bench")
	pairs := [][2]*saturationGateway{
		{
			{name: "baseline (no vaultauth, no vaultidentity)", config: filepath.Join(bench, "gateway-baseline.yaml")},
			{name: "with vaultauth + vaultidentity", config: deploy.Example("gateway.yaml"), role: "otel-gateway"},
		},
		{
			{name: "baseline with the tenant-partitioned queue", config: filepath.Join(bench, "gateway-baseline-partitioned.yaml")},
			{name: "with tenant routing", config: deploy.Example("gateway-multitenant.yaml"), role: "otel-gateway-teams"},
		},
	}
	for round := range rounds {
		for _, p := range pairs {
			first, second := p[0], p[1]
			if round%2 == 1 {
				first, second = second, first
			}
			run(round, first)
			run(round, second)
		}
	}
	for _, p := range pairs {
		base, ours := p[0], p[1]
		rate, cpu := make([]float64, rounds), make([]float64, rounds)
		for i := range rounds {
			rate[i] = 100 * ours.rates[i] / base.rates[i]
			cpu[i] = ours.cpus[i] / base.cpus[i]
		}
		t.Logf("%s: median %.0f spans/s, gateway CPU %.2f µs/span; %s: median %.0f spans/s, gateway CPU %.2f µs/span",
			base.name, median(base.rates), median(base.cpus), ours.name, median(ours.rates), median(ours.cpus))
		t.Logf("saturation, %s / %s: median of %d paired rounds %.1f%% (range %.1f–%.1f%%; target >= 97%%), CPU per span %.2fx (range %.2f–%.2fx)",
			ours.name, base.name, rounds, median(rate), slices.Min(rate), slices.Max(rate), median(cpu), slices.Min(cpu), slices.Max(cpu))
	}
}

// saturate pushes spans at gw from saturationSenders clients, each sending
// its next request as soon as the last is answered, and returns the spans
// per second that arrived at the backend during the counted window, the
// gateway's CPU time per arrived span in µs, and the requests it refused.
func saturate(t *testing.T, gw *deploy.Collector, jwt string, arrived *atomic.Int64) (rate, cpuPerSpan float64, refusedInWindow int64) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var refused atomic.Int64
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
				if exp.ConsumeTraces(context.Background(), c) != nil {
					// Refused (the gateway's queue is full): back off as a
					// real exporter would, rather than spin on the 2 cores
					// the gateway needs.
					refused.Add(1)
					time.Sleep(saturationBackoff)
				}
			}
		}()
	}
	time.Sleep(saturationWarmup) // the warm-up of the measurement
	before, cpuBefore, refusedBefore, start := arrived.Load(), gw.CPUSeconds(), refused.Load(), time.Now()
	time.Sleep(saturationWindow) // the counted window
	n, cpu, refusedInWindow := arrived.Load()-before, gw.CPUSeconds()-cpuBefore, refused.Load()-refusedBefore
	rate = float64(n) / time.Since(start).Seconds()
	close(stop)
	wg.Wait()
	if n == 0 {
		t.Fatalf("nothing arrived from %s in %s", gw.Name, saturationWindow)
	}
	return rate, cpu * 1e6 / float64(n), refusedInWindow
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
