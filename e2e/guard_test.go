package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/internal/testbed"
)

// What senders can make a receiver decode. The chart's gateway limit.
const gatewayMemoryLimit = 1 << 30

// deepJSON is an OTLP/JSON request whose one attribute nests levels arrays
// deep, with one span.
func deepJSON(levels int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":`)
	b.WriteString(strings.Repeat(`{"arrayValue":{"values":[`, levels))
	b.WriteString(`{"stringValue":"deep"}`)
	b.WriteString(strings.Repeat(`]}}`, levels))
	b.WriteString(`}]},"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"poison"}]}]}]}`)
	return b.Bytes()
}

// wideJSON is an OTLP/JSON request of size bytes made of empty resource
// spans: about 68 times its size once decoded.
func wideJSON(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"resourceSpans":[{}`)
	for b.Len() < size-8 {
		b.WriteString(`,{}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// wideProtobuf is an OTLP protobuf export request of size bytes made of
// empty resource spans (field 1, length 0): the same, over gRPC.
func wideProtobuf(size int) []byte {
	return bytes.Repeat([]byte{0x0a, 0x00}, size/2)
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

// postJSON posts a gzipped OTLP/JSON body with a credential and returns the status.
func postJSON(t *testing.T, endpoint, credential string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+endpoint+"/v1/traces", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// Attack (finding 2 of issue 19): decoding bombs sent by an authenticated
// agent, four at a time, over HTTP and gRPC: one attribute inside 700,000
// nested arrays (45 KB gzipped), and bodies of empty resource spans just
// under the receivers' 4 MiB limits, which decode to about 280 MB each.
// Four decoded at once took the gateway to 1.37 GB before the guard; it
// must stay under the chart's 1 GiB limit, and keep serving the agents.
func TestDecodingBombsStayUnderTheGatewaysLimit(t *testing.T) {
	d := testbed.Start(t, testbed.Options{Workloads: []string{"payments"}})
	jwt := d.Workloads[0].IdentityToken(t, d.Vault)
	deep := gzipped(t, deepJSON(700_000))
	wide := gzipped(t, wideJSON(4<<20-1024))
	wideMsg := wideProtobuf(4<<20 - 1024)
	conn, err := grpc.NewClient(d.Gateway.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(testbed.RawCodec{})))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	base := d.Gateway.PeakRSS()

	var mu sync.Mutex
	outcomes := map[string]int{}
	record := func(what string) { mu.Lock(); outcomes[what]++; mu.Unlock() }
	var wg sync.WaitGroup
	for sender := range 4 {
		wg.Go(func() {
			for range 5 {
				if sender%2 == 0 {
					record(fmt.Sprint("http deep: ", postJSON(t, d.Gateway.OTLPHTTP, jwt, deep)))
					record(fmt.Sprint("http wide: ", postJSON(t, d.Gateway.OTLPHTTP, jwt, wide)))
					continue
				}
				ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+jwt), time.Minute)
				err := conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", wideMsg, new([]byte))
				cancel()
				record(fmt.Sprint("grpc wide: ", status.Code(err)))
			}
		})
	}
	wg.Wait()
	peak := d.Gateway.PeakRSS()
	t.Logf("gateway peak RSS %d MB (%d MB before the bombs), under 4 concurrent senders: %v", peak>>20, base>>20, outcomes)
	assert.Equal(t, 10, outcomes["http deep: 400"], "deep JSON refused")
	assert.Equal(t, 10, outcomes["http wide: 200"], "wide JSON decoded, in turn")
	assert.Equal(t, 10, outcomes["grpc wide: OK"], "wide protobuf decoded, in turn")
	assert.Less(t, peak, int64(gatewayMemoryLimit), "the gateway went over the chart's memory limit")

	sendEach(t, d, 5) // and the agents are still served
	awaitAll(t, d)
}

// Attack (finding 3 of issue 19): a workload sends its node's shared agent
// a small OTLP/JSON request every 200 ms with an attribute nested 50
// arrays deep, which OTLP/JSON takes and protobuf decoders refuse. Merged
// by the agent's batch processor with its neighbour's spans, it made the
// gateway refuse whole batches for good: the neighbour lost 2,710 of 2,730
// spans. vaultidentity refuses it at the agent, to its sender only.
func TestDepthPoisonerCostsItsNeighboursNothing(t *testing.T) {
	d := testbed.Start(t, testbed.Options{Workloads: []string{"payments"}})
	agent := d.Agents[0]
	poison := gzipped(t, deepJSON(50))
	require.Less(t, len(poison), 1500, "the poison is a small request")
	stop := make(chan struct{})
	codes := map[int]int{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 100 { // bounded: about 20 s at most
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			codes[postJSON(t, agent.OTLPHTTP, "", poison)]++
		}
	})
	for range 30 {
		require.True(t, d.Senders[0].Send(batch), "the agent refused its workload's spans")
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	sent := awaitAll(t, d)
	lost := d.Lost(batch)
	failed, _ := d.Gateway.Metric("otelcol_receiver_refused_spans")
	refused, _ := agent.Metric("otelcol_vaultidentity_requests_unexportable")
	t.Logf("poisoner: %v (status: count); neighbour: %d spans sent, %d lost; gateway refused %g spans; agent refused %g requests as unexportable",
		codes, sent, lost, failed, refused)
	assert.Zero(t, lost, "the neighbour lost spans")
	assert.Zero(t, failed, "the gateway refused spans")
	assert.NotZero(t, codes[http.StatusBadRequest], "the poisoner was not told")
	assert.Equal(t, codes[http.StatusBadRequest], func() int {
		n := 0
		for _, c := range codes {
			n += c
		}
		return n
	}(), "every poison request refused: %v", codes)
	assert.EqualValues(t, codes[http.StatusBadRequest], refused)
}
