package vaultauthextension

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// headerRecorder is the receiving end: it records the Lightstep header of
// every request the OTLP receiver accepted, per exporter.
type headerRecorder struct {
	mu     sync.Mutex
	byUser map[string][]string // "grpc"/"http" (from a span attribute) -> header values in arrival order
}

func newHeaderRecorder() *headerRecorder { return &headerRecorder{byUser: map[string][]string{}} }

func (r *headerRecorder) consumer(t *testing.T) consumer.Traces {
	c, err := consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		from, _ := td.ResourceSpans().At(0).Resource().Attributes().Get("exporter")
		values := client.FromContext(ctx).Metadata.Get(DefaultHeader)
		value := ""
		if len(values) == 1 {
			value = values[0]
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.byUser[from.Str()] = append(r.byUser[from.Str()], value)
		return nil
	})
	require.NoError(t, err)
	return c
}

func (r *headerRecorder) values(from string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.byUser[from]...)
}

func traces(from string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("exporter", from)
	rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("op")
	return td
}

// exporters starts an OTLP receiver that records headers, and an otlp_grpc
// and an otlp_http exporter that authenticate with the extension. Retries
// and queues are off, so every failed export surfaces to the caller.
func exporters(t *testing.T, h *harness) (*headerRecorder, map[string]exporter.Traces) {
	t.Helper()
	rec := newHeaderRecorder()
	rcv := pipelinetest.StartTracesReceiver(t, h.host, map[string]any{"include_metadata": true}, rec.consumer(t))
	settings := map[string]any{
		"auth":             map[string]any{"authenticator": extID.String()},
		"retry_on_failure": map[string]any{"enabled": false},
		"sending_queue":    map[string]any{"enabled": false},
	}
	return rec, map[string]exporter.Traces{
		"grpc": pipelinetest.StartTracesExporter(t, h.host, "otlp_grpc", rcv.ExporterConfig("otlp_grpc", settings)),
		"http": pipelinetest.StartTracesExporter(t, h.host, "otlp_http", rcv.ExporterConfig("otlp_http", settings)),
	}
}

func TestExportersSendTheSecret(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	h := startExtension(t, withToken(clientConfig(v.Addr), readerToken(t, v, "1h")))
	h.waitSent(t, "ls-token-v1")

	rec, exps := exporters(t, h)
	for from, exp := range exps {
		require.NoError(t, exp.ConsumeTraces(context.Background(), traces(from)), from)
		assert.Equal(t, []string{"ls-token-v1"}, rec.values(from), "%s exporter header", from)
	}
}

// While both exporters send without pause, a new KV v2 version is written:
// every request carries the old or the new value, never none, no export
// fails, and once the new value is used the old one is not sent again.
func TestRotationWhileExporting(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	h := startExtension(t, withToken(clientConfig(v.Addr), readerToken(t, v, "1h")))
	h.waitSent(t, "ls-token-v1")
	rec, exps := exporters(t, h)

	var (
		stop     atomic.Bool
		failures atomic.Int64
		sent     atomic.Int64
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(eventually)
	for from, exp := range exps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000 && !stop.Load() && time.Now().Before(deadline); i++ {
				if err := exp.ConsumeTraces(context.Background(), traces(from)); err != nil {
					failures.Add(1)
				}
				sent.Add(1)
			}
		}()
	}
	require.Eventually(t, func() bool { return len(rec.values("grpc")) > 20 && len(rec.values("http")) > 20 }, eventually, poll)
	v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v2"})
	// After the new version, let each exporter send a good number more.
	afterWrite := len(rec.values("grpc")) + len(rec.values("http"))
	require.Eventually(t, func() bool {
		g, ht := rec.values("grpc"), rec.values("http")
		return len(g)+len(ht) > afterWrite+200 && g[len(g)-1] == "ls-token-v2" && ht[len(ht)-1] == "ls-token-v2"
	}, eventually, poll)
	stop.Store(true)
	wg.Wait()

	assert.Zero(t, failures.Load(), "exports failed during rotation (of %d)", sent.Load())
	for _, from := range []string{"grpc", "http"} {
		values := rec.values(from)
		switched := false
		for i, got := range values {
			switch got {
			case "ls-token-v1":
				require.False(t, switched, "%s request %d sent the old value after the new one", from, i)
			case "ls-token-v2":
				switched = true
			default:
				t.Fatalf("%s request %d sent %s", from, i, redact(got, ""))
			}
		}
		require.True(t, switched, "%s never sent the new value", from)
	}
	t.Logf("exported %d requests during the rotation, %d failed", sent.Load(), failures.Load())
}

// Vault out of reach mid-run: the last good value keeps flowing and the
// status is RecoverableError; Vault back: status OK, new versions picked up.
func TestVaultOutageKeepsLastGoodValue(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	proxy := vaulttest.NewProxy(t, v.HostPort())
	h := startExtension(t, withToken(clientConfig(proxy.Addr), readerToken(t, v, "1h")))
	h.waitSent(t, "ls-token-v1")
	h.waitStatus(t, componentstatus.StatusOK)
	rec, exps := exporters(t, h)

	proxy.SetDown(true)
	h.waitStatus(t, componentstatus.StatusRecoverableError)
	for from, exp := range exps {
		require.NoError(t, exp.ConsumeTraces(context.Background(), traces(from)), "%s export while Vault is down", from)
		assert.Equal(t, []string{"ls-token-v1"}, rec.values(from))
	}

	proxy.SetDown(false)
	h.waitStatus(t, componentstatus.StatusOK)
	v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v2"})
	h.waitSent(t, "ls-token-v2")
}

// Vault down when the collector starts: Start succeeds, exports fail with a
// clear, retryable error, and the value arrives once Vault is reachable.
func TestStartWithVaultDown(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	proxy := vaulttest.NewProxy(t, v.HostPort())
	proxy.SetDown(true)
	h := startExtension(t, withToken(clientConfig(proxy.Addr), readerToken(t, v, "1h")))
	rec, exps := exporters(t, h)

	for from, exp := range exps {
		err := exp.ConsumeTraces(context.Background(), traces(from))
		require.Error(t, err, from)
		assert.Contains(t, err.Error(), "no credential from Vault yet", from)
		assert.Empty(t, rec.values(from))
	}
	h.waitStatus(t, componentstatus.StatusRecoverableError)

	proxy.SetDown(false)
	h.waitSent(t, "ls-token-v1")
	h.waitStatus(t, componentstatus.StatusOK)
	for from, exp := range exps {
		require.NoError(t, exp.ConsumeTraces(context.Background(), traces(from)), from)
	}
}
