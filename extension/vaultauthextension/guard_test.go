package vaultauthextension

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/guard"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
)

// guarded starts an instance (a server that needs no Vault to start) with
// guard g, and an OTLP receiver on both protocols listing it in its
// middlewares, handing what it decodes to next.
func guarded(t *testing.T, g GuardConfig, next consumer.Traces) (*harness, pipelinetest.Receiver) {
	t.Helper()
	cfg := serverConfig("http://127.0.0.1:1", "otel")
	cfg.Guard = g
	h := startExtension(t, cfg)
	rcv := pipelinetest.StartTracesReceiver(t, h.host, map[string]any{
		"middlewares": []any{map[string]any{"id": extID.String()}},
	}, next)
	return h, rcv
}

// deepJSON is an OTLP/JSON request whose one attribute nests levels arrays deep.
func deepJSON(levels int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":`)
	b.WriteString(strings.Repeat(`{"arrayValue":{"values":[`, levels))
	b.WriteString(`{"stringValue":"deep"}`)
	b.WriteString(strings.Repeat(`]}}`, levels))
	b.WriteString(`}]},"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"s"}]}]}]}`)
	return b.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return out.Bytes()
}

// post sends an OTLP/JSON body (gzipped) and returns the status and body.
func post(t *testing.T, url string, body []byte) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/traces", bytes.NewReader(gzipped(t, body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg), resp.Header
}

// Attack (finding 2 of issue 19): one attribute inside 700,000 nested
// arrays, 45 KB gzipped, 19.6 MB decoded, under the receiver's default
// body limit: decoded, it took the gateway's memory up by 330 MB per
// request. The guard refuses it with 400 as the nesting passes
// max_json_depth, having read a few kilobytes of it; OTLP/JSON nesting as
// deep as protobuf decoders take passes.
func TestGuardRefusesDeepJSONBeforeDecoding(t *testing.T) {
	var got atomic.Int64
	next, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error { got.Add(int64(td.SpanCount())); return nil })
	require.NoError(t, err)
	h, rcv := guarded(t, defaultGuardConfig(), next)

	bomb := deepJSON(700_000)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	code, msg, _ := post(t, rcv.HTTPAddr, bomb)
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	assert.Equal(t, http.StatusBadRequest, code, msg)
	assert.Contains(t, msg, "nests deeper")
	assert.Zero(t, got.Load(), "the bomb reached the pipeline")
	assert.Less(t, allocated, uint64(16<<20), "bytes allocated while refusing it (decoded, it allocates over 300 MB)")
	n, _ := h.sumWhere(t, "otelcol_vaultauth_guard_refused_requests", "reason="+guard.ReasonTooDeep)
	assert.EqualValues(t, 1, n)

	code, msg, _ = post(t, rcv.HTTPAddr, deepJSON(49)) // as deep as an exportable attribute goes
	assert.Equal(t, http.StatusOK, code, msg)
	assert.EqualValues(t, 1, got.Load())
	t.Logf("%d KB gzipped (%d MB of JSON): refused with %d, %d KB allocated meanwhile", len(gzipped(t, bomb))>>10, len(bomb)>>20, http.StatusBadRequest, allocated>>10)
}

// At most max_inflight_bytes are decoded and processed at once: while one
// request holds the whole budget, an HTTP request waits max_wait and is
// told 503 with Retry-After (senders retry), and a gRPC request waits
// its turn and then passes. The gauge never shows more than the budget.
func TestGuardBoundsBytesInDecoding(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	next, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		if calls.Add(1) == 1 {
			<-release // the first request holds its bytes until released
		}
		return nil
	})
	require.NoError(t, err)
	g := GuardConfig{MaxInflightBytes: 64 << 10, MaxJSONDepth: 256, MaxWait: 300 * time.Millisecond}
	h, rcv := guarded(t, g, next)
	inflight := func() int64 { n, _ := h.sum(t, "otelcol_vaultauth_guard_inflight_bytes"); return n }

	big := ptrace.NewTraces() // larger than the whole budget: it takes all of it
	rs := big.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("padding", strings.Repeat("x", 100<<10))
	rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("s") // the receiver hands on only data with items
	conn, err := grpc.NewClient(rcv.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	client := ptraceotlp.NewGRPCClient(conn)
	first := make(chan error, 1)
	go func() {
		_, err := client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(big))
		first <- err
	}()
	require.Eventually(t, func() bool { return calls.Load() == 1 }, eventually, poll)
	assert.Equal(t, g.MaxInflightBytes, inflight(), "the first request holds the whole budget")

	code, msg, header := post(t, rcv.HTTPAddr, deepJSON(1))
	assert.Equal(t, http.StatusServiceUnavailable, code, msg)
	assert.Equal(t, "1", header.Get("Retry-After"))

	second := make(chan error, 1)
	go func() {
		_, err := client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(big))
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("the second gRPC request did not wait for its turn: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	assert.Equal(t, g.MaxInflightBytes, inflight(), "never more than the budget")
	close(release)
	require.NoError(t, <-first)
	require.NoError(t, <-second, "the waiting gRPC request passed once the budget was free")
	require.Eventually(t, func() bool { return inflight() == 0 }, eventually, poll, "bytes not given back")
	busy, _ := h.sumWhere(t, "otelcol_vaultauth_guard_refused_requests", "reason="+guard.ReasonBusy)
	assert.EqualValues(t, 1, busy)
}
