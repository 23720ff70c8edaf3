package source

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// rotateEvery swaps in a new value every interval until the benchmark ends,
// as a secret rotation would (here far more often than any real one).
func rotateEvery(b *testing.B, interval time.Duration, swap func(i int)) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
				swap(i)
			}
		}
	})
	b.Cleanup(func() { close(stop); wg.Wait() })
}

var benchID = component.MustNewIDWithName("vaultauth", "lightstep")

// benchSource is one secret whose value rotates every millisecond, set the
// way the secret watcher sets it (no Vault: only the request path is measured).
func benchSource(b *testing.B) (Source, Settings) {
	tel, err := telemetry.New(componenttest.NewNopTelemetrySettings(), benchID)
	if err != nil {
		b.Fatal(err)
	}
	s := Settings{Header: "lightstep-access-token", RequireTransportSecurity: true}
	src := newSingle(benchID, s)
	src.secret = newSecret(s, "", tel, nil)
	src.secret.set(vaultclient.Value{Data: "ls-token-0", Version: 1})
	rotateEvery(b, time.Millisecond, func(i int) {
		src.secret.set(vaultclient.Value{Data: "ls-token-" + strconv.Itoa(i), Version: i})
	})
	return src, s
}

// BenchmarkInjectParallel: every core injecting while the value rotates
// every millisecond. Readers load one atomic pointer: no lock to contend on.
func BenchmarkInjectParallel(b *testing.B) {
	b.Run("proto=grpc/impl=ours", func(b *testing.B) {
		src, s := benchSource(b)
		creds := NewPerRPCCredentials(src, benchID, s)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := creds.GetRequestMetadata(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("proto=http/impl=ours", func(b *testing.B) {
		src, s := benchSource(b)
		rt := NewRoundTripper(okTransport{}, src, benchID, s)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req, _ := http.NewRequest(http.MethodPost, "https://ingest.lightstep.com/traces/otlp/v0.9", nil)
			req.Header.Set("Content-Type", "application/x-protobuf")
			for pb.Next() {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

type okTransport struct{}

func (okTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}, nil
}
