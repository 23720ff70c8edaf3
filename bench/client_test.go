package bench

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"go.opentelemetry.io/collector/extension/extensionauth"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// clients returns our extension (token read from a real dev Vault) and
// contrib's bearertokenauth with the same static value.
func clients(b *testing.B) map[string]interface {
	extensionauth.HTTPClient
	extensionauth.GRPCClient
} {
	v := vaulttest.Start(b)
	v.PutKV2(b, "lightstep/prod", map[string]any{"access_token": "ls-bench-token-0123456789abcdef"})
	ours := startExtension(b, vaultauthextension.NewFactory(), map[string]any{
		"vault":  map[string]any{"address": v.Addr},
		"auth":   map[string]any{"token": v.RootToken},
		"client": map[string]any{"secret": map[string]any{"path": "secret/data/lightstep/prod", "key": "access_token"}},
	})
	bearer := startExtension(b, bearertokenauthextension.NewFactory(), map[string]any{
		"header": "lightstep-access-token", "scheme": "", "token": "ls-bench-token-0123456789abcdef",
	})
	out := map[string]interface {
		extensionauth.HTTPClient
		extensionauth.GRPCClient
	}{"ours": ours.(interface {
		extensionauth.HTTPClient
		extensionauth.GRPCClient
	}), "contrib": bearer.(interface {
		extensionauth.HTTPClient
		extensionauth.GRPCClient
	})}
	// Wait for our first value from Vault.
	creds, _ := out["ours"].PerRPCCredentials()
	for range 1000 {
		if _, err := creds.GetRequestMetadata(context.Background()); err == nil {
			return out
		}
		vaulttestSleep()
	}
	b.Fatal("no value from Vault")
	return nil
}

// okTransport answers every request at once: only the authenticator's work is measured.
type okTransport struct{ resp *http.Response }

func (t okTransport) RoundTrip(*http.Request) (*http.Response, error) { return t.resp, nil }

// BenchmarkClientInject measures what an exporter pays per RPC / request;
// contrib is bearertokenauthextension with the same value, static.
func BenchmarkClientInject(b *testing.B) {
	cs := clients(b)
	for _, name := range []string{"contrib", "ours"} {
		c := cs[name]
		b.Run("proto=grpc/impl="+name, func(b *testing.B) {
			creds, err := c.PerRPCCredentials()
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := creds.GetRequestMetadata(ctx, "https://ingest.lightstep.com"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("proto=http/impl="+name, func(b *testing.B) {
			base := okTransport{resp: &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}}
			rt, err := c.RoundTripper(base)
			if err != nil {
				b.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, "https://ingest.lightstep.com/traces/otlp/v0.9", nil)
			req.Header.Set("Content-Type", "application/x-protobuf")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var _ = vaulttest.Version
