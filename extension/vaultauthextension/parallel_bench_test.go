package vaultauthextension

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/metadata"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
)

// rotateEvery swaps in a new value every interval until the benchmark ends,
// as a secret rotation would (here far more often than any real one).
func rotateEvery(b *testing.B, interval time.Duration, swap func(i int)) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
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
	}()
	b.Cleanup(func() { close(stop); wg.Wait() })
}

// benchClient is a client whose value rotates every millisecond, set the
// way the secret watcher sets it (no Vault: only the request path is measured).
func benchClient(b *testing.B) *clientAuth {
	cfg := clientConfig("http://127.0.0.1:1")
	ext, err := createExtension(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	if err != nil {
		b.Fatal(err)
	}
	c := ext.(*clientAuth)
	single := c.source.(*secretSource)
	single.set(vaultclient.Value{Data: "ls-token-0", Version: 1})
	rotateEvery(b, time.Millisecond, func(i int) {
		single.set(vaultclient.Value{Data: "ls-token-" + strconv.Itoa(i), Version: i})
	})
	return c
}

// BenchmarkInjectParallel: every core injecting while the value rotates
// every millisecond. Readers load one atomic pointer: no lock to contend on.
func BenchmarkInjectParallel(b *testing.B) {
	b.Run("proto=grpc/impl=ours", func(b *testing.B) {
		creds, _ := benchClient(b).PerRPCCredentials()
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
		rt, _ := benchClient(b).RoundTripper(okTransport{})
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

// BenchmarkAuthenticateParallel: every core authenticating a known sender
// (a cache hit) while new senders are verified and inserted every millisecond.
func BenchmarkAuthenticateParallel(b *testing.B) {
	b.Run("case=repeated/impl=ours", benchAuthenticateParallel)
}

func benchAuthenticateParallel(b *testing.B) {
	cfg := createDefaultConfig()
	cfg.Vault.Address = "http://127.0.0.1:1"
	cfg.Server.GetOrInsertDefault().IdentityToken.GetOrInsertDefault().Audience = "otel"
	ext, err := createExtension(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := ext.(*serverAuth)
	// A typical Vault identity JWT is about 900 bytes.
	known := "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9." + strings.Repeat("x", 800) + ".sig"
	auth := identity.AuthData{Identity: identity.New("e", "root", identity.Attribute{Key: identity.EntityName, Value: "payments"})}
	s.verdicts.accept(keyOf(known), auth.Identity, time.Time{})
	rotateEvery(b, time.Millisecond, func(i int) {
		s.verdicts.accept(keyOf("new-sender-"+strconv.Itoa(i)), auth.Identity, time.Time{})
	})
	headers := map[string][]string{"authorization": {"Bearer " + known}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Authenticate(context.Background(), headers); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
