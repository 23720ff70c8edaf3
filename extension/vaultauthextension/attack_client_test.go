package vaultauthextension

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// The Lightstep token goes only where the exporter was pointed, and only
// over TLS (loopback excepted): these tests play a backend that redirects
// and a configuration that would send it in clear.

// headersSeen is a backend that records the Lightstep header of each request.
type headersSeen struct {
	mu  sync.Mutex
	got []string
}

func (h *headersSeen) record(r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, r.Header.Get(DefaultHeader))
}

func (h *headersSeen) values() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// clientSending is a client extension sending token, read from a real Vault
// with the reader policy: what the attacks below act on.
func clientSending(t *testing.T, token string) *harness {
	t.Helper()
	v := vaulttest.Start(t)
	seedLightstep(t, v, token)
	h := startExtension(t, withToken(clientConfig(v.Addr), readerToken(t, v, "1h")))
	h.waitSent(t, token)
	return h
}

// The backend redirects the export to another host: the request follows
// (the exporter's HTTP client does), but without the token. A redirect on
// the same host keeps it.
func TestTokenDoesNotFollowARedirectToAnotherHost(t *testing.T) {
	h := clientSending(t, "ls-token-v1")
	other := &headersSeen{}
	otherHost := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		other.record(r)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(otherHost.Close)
	endpoint := &headersSeen{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint.record(r)
		switch r.URL.Path {
		case "/v1/traces":
			http.Redirect(w, r, "/moved/v1/traces", http.StatusTemporaryRedirect)
		case "/moved/v1/traces":
			http.Redirect(w, r, otherHost.URL+"/v1/traces", http.StatusTemporaryRedirect)
		}
	}))
	t.Cleanup(backend.Close)

	exp := pipelinetest.StartTracesExporter(t, h.host, "otlp_http", map[string]any{
		"endpoint":         backend.URL,
		"auth":             map[string]any{"authenticator": extID.String()},
		"retry_on_failure": map[string]any{"enabled": false},
		"sending_queue":    map[string]any{"enabled": false},
	})
	require.NoError(t, exp.ConsumeTraces(context.Background(), traces("http")))
	assert.Equal(t, []string{"ls-token-v1", "ls-token-v1"}, endpoint.values(), "the endpoint's host, before and after its own redirect")
	assert.Equal(t, []string{""}, other.values(), "the other host got the token")
}

// Plaintext to an address that is not loopback is refused, over gRPC and
// HTTP alike, before anything is sent, with an error that says what to do
// (and retryable, so nothing is lost while the config is fixed). Turning
// the default off lets it through.
func TestTokenNeverSentInClearOffLoopback(t *testing.T) {
	h := clientSending(t, "ls-token-v1")
	sink := &consumertest.TracesSink{}
	rcv := pipelinetest.StartTracesReceiver(t, h.host, nil, sink)

	// gRPC: the connection is loopback, but the exporter addresses
	// ingest.example.com (its :authority), as it would a remote host.
	remote := pipelinetest.StartTracesExporter(t, h.host, "otlp_grpc", rcv.ExporterConfig("otlp_grpc", map[string]any{
		"authority":        "ingest.example.com:4317",
		"auth":             map[string]any{"authenticator": extID.String()},
		"retry_on_failure": map[string]any{"enabled": false},
		"sending_queue":    map[string]any{"enabled": false},
	}))
	err := remote.ConsumeTraces(context.Background(), traces("grpc"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing to send the credential to ingest.example.com:4317 without TLS")
	assert.Contains(t, err.Error(), "Unavailable", "retryable")
	assert.Zero(t, sink.SpanCount())

	// HTTP: refused before a connection is even tried.
	httpRemote := pipelinetest.StartTracesExporter(t, h.host, "otlp_http", map[string]any{
		"endpoint":         "http://ingest.example.com:4318",
		"auth":             map[string]any{"authenticator": extID.String()},
		"retry_on_failure": map[string]any{"enabled": false},
		"sending_queue":    map[string]any{"enabled": false},
	})
	err = httpRemote.ConsumeTraces(context.Background(), traces("http"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing to send the credential to ingest.example.com:4318 without TLS")

	// Opting out (a mesh encrypts the hop) sends it.
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	cfg := withToken(clientConfig(v.Addr), readerToken(t, v, "1h"))
	cfg.Client.Get().RequireTransportSecurity = false
	optedOut := startExtension(t, cfg)
	optedOut.waitSent(t, "ls-token-v1")
	exp := pipelinetest.StartTracesExporter(t, optedOut.host, "otlp_grpc", rcv.ExporterConfig("otlp_grpc", map[string]any{
		"authority":        "ingest.example.com:4317",
		"auth":             map[string]any{"authenticator": extID.String()},
		"retry_on_failure": map[string]any{"enabled": false},
		"sending_queue":    map[string]any{"enabled": false},
	}))
	require.NoError(t, exp.ConsumeTraces(context.Background(), traces("grpc")))
	assert.Equal(t, 1, sink.SpanCount())
}
