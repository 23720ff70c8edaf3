package bench

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/oidcauthextension"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension"
)

// The parallel benchmarks of our extension, with a rotation every
// millisecond, are in extension/vaultauthextension (they need to swap values
// from inside); these are the same loads on the anchors, and on both
// processors, every core busy.

func BenchmarkParallelClientInject(b *testing.B) {
	cs := clients(b)
	for _, name := range []string{"contrib", "ours"} {
		c := cs[name]
		b.Run("proto=grpc/impl="+name, func(b *testing.B) {
			creds, _ := c.PerRPCCredentials()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := creds.GetRequestMetadata(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run("proto=http/impl="+name, func(b *testing.B) {
			rt, _ := c.RoundTripper(newOK())
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
}

// newOK answers like the parallel benchmark inside the extension does, so
// both measure the same base work.
func newOK() http.RoundTripper { return okFresh{} }

type okFresh struct{}

func (okFresh) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}, nil
}

func BenchmarkParallelServerAuthenticate(b *testing.B) {
	iv := newIdentityVault(b)
	exts := map[string]extensionauth.Server{
		"ours": startExtension(b, vaultauthextension.NewFactory(), map[string]any{
			"vault":  map[string]any{"address": iv.v.Addr},
			"server": map[string]any{"identity_token": map[string]any{"audience": iv.audience}},
		}).(extensionauth.Server),
		"contrib": startExtension(b, oidcauthextension.NewFactory(), map[string]any{
			"issuer_url": iv.issuer, "audience": iv.audience,
		}).(extensionauth.Server),
	}
	headers := map[string][]string{"authorization": {"Bearer " + iv.tokens(b, 1)[0]}}
	for _, name := range []string{"contrib", "ours"} {
		a := exts[name]
		b.Run("case=repeated/impl="+name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := a.Authenticate(context.Background(), headers); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkParallelStamp: every core stamping its own 10,000-span batch.
func BenchmarkParallelStamp(b *testing.B) {
	cases := stampCases()
	for _, c := range cases {
		b.Run("signal=traces/"+c.name, func(b *testing.B) {
			p, err := c.f.CreateTraces(context.Background(), processortest.NewNopSettings(c.f.Type()), config(b, c.f, c.conf), consumertest.NewNop())
			start(b, p, err)
			ctx := authContext()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				td := traces()
				for pb.Next() {
					if err := p.ConsumeTraces(ctx, td); err != nil {
						b.Error(err)
						return
					}
				}
			})
			perItem(b)
		})
	}
}
