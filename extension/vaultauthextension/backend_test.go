package vaultauthextension

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// The backend (a Lightstep stand-in) stops accepting the old token before
// refresh_interval would notice the new version: its 401 makes the
// extension re-read at once, and the next export goes through.
func TestBackendRejectionTriggersReread(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	cfg := withToken(clientConfig(v.Addr), readerToken(t, v, "1h"))
	cfg.Client.Get().RefreshInterval = time.Hour // only a forced re-read can see v2
	h := startExtension(t, cfg)
	h.waitSent(t, "ls-token-v1")

	var accepted atomic.Value
	accepted.Store("ls-token-v1")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(DefaultHeader) != accepted.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(backend.Close)
	exp := pipelinetest.StartTracesExporter(t, h.host, "otlp_http", map[string]any{
		"endpoint":         backend.URL,
		"auth":             map[string]any{"authenticator": extID.String()},
		"retry_on_failure": map[string]any{"enabled": false},
		"sending_queue":    map[string]any{"enabled": false},
	})
	require.NoError(t, exp.ConsumeTraces(context.Background(), traces("http")))

	v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v2"})
	accepted.Store("ls-token-v2")
	require.Error(t, exp.ConsumeTraces(context.Background(), traces("http")), "the backend should reject the old token")
	h.waitSent(t, "ls-token-v2")
	require.NoError(t, exp.ConsumeTraces(context.Background(), traces("http")))
}
