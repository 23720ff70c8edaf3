package bench

import (
	"context"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/oidcauthextension"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// startExtension creates and starts an extension from a user-style config.
func startExtension(b testing.TB, f extension.Factory, conf map[string]any) extension.Extension {
	b.Helper()
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(conf).Unmarshal(cfg); err != nil {
		b.Fatal(err)
	}
	set := extensiontest.NewNopSettings(f.Type())
	set.ID = component.NewID(f.Type())
	ext, err := f.Create(context.Background(), set, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := ext.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	return ext
}

// identityVault is a real Vault dev server issuing identity tokens for a
// userpass workload; tokens(n) returns n distinct ones.
type identityVault struct {
	v        *vaulttest.Server
	issuer   string
	audience string
	workload vaulttest.Workload
}

func newIdentityVault(b *testing.B) *identityVault {
	v := vaulttest.Start(b)
	aud := v.OIDCRole(b, "otel", "otel-agent", `{"entity_name": {{identity.entity.name}}}`, "1h")
	v.PutPolicy(b, "otel-agent", `path "identity/oidc/token/otel-agent" { capabilities = ["read"] }`)
	return &identityVault{v: v, issuer: v.Addr + "/v1/identity/oidc", audience: aud,
		workload: v.UserpassWorkload(b, "payments", "otel-agent")}
}

// tokens returns n tokens (identical when fetched within one second: Vault's
// RS256 signatures are deterministic).
func (iv *identityVault) tokens(b *testing.B, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = iv.v.IdentityToken(b, iv.workload.Token, "otel-agent")
	}
	return out
}

// BenchmarkServerAuthenticate verifies Vault identity JWTs from the real dev
// Vault: a repeated token (a cache hit for vaultauth), and a first sight (a
// miss: full verification). oidcauth verifies every request in full.
func BenchmarkServerAuthenticate(b *testing.B) {
	iv := newIdentityVault(b)
	ours := startExtension(b, vaultauthextension.NewFactory(), map[string]any{
		"vault":  map[string]any{"address": iv.v.Addr},
		"server": map[string]any{"identity_token": map[string]any{"audience": iv.audience}},
	}).(extensionauth.Server)
	// Entries that expire at once: every request is a first sight (hash,
	// full verification, cache insert). Vault signs deterministically, so
	// distinct tokens would need distinct claims; a 1ns TTL measures the same path.
	oursNoCache := startExtension(b, vaultauthextension.NewFactory(), map[string]any{
		"vault":  map[string]any{"address": iv.v.Addr},
		"server": map[string]any{"identity_token": map[string]any{"audience": iv.audience}, "cache_ttl": "1ns"},
	}).(extensionauth.Server)
	oidc := startExtension(b, oidcauthextension.NewFactory(), map[string]any{
		"issuer_url": iv.issuer, "audience": iv.audience,
	}).(extensionauth.Server)

	one := iv.tokens(b, 1)[0]
	run := func(b *testing.B, a extensionauth.Server, tokens []string) {
		headers := make([]map[string][]string, len(tokens))
		for i, t := range tokens {
			headers[i] = map[string][]string{"authorization": {"Bearer " + t}}
		}
		if _, err := a.Authenticate(context.Background(), headers[0]); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			if _, err := a.Authenticate(context.Background(), headers[i%len(headers)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	// contrib is oidcauthextension, which verifies every request in full.
	b.Run("case=repeated/impl=contrib", func(b *testing.B) { run(b, oidc, []string{one}) })
	b.Run("case=repeated/impl=ours", func(b *testing.B) { run(b, ours, []string{one}) })
	b.Run("case=first-sight/impl=contrib", func(b *testing.B) { run(b, oidc, []string{one}) })
	b.Run("case=first-sight/impl=ours", func(b *testing.B) { run(b, oursNoCache, []string{one}) })
}
