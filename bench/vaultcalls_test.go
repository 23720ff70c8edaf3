package bench

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/extension/extensionauth"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

const (
	callGateways = 3
	callSenders  = 40 // distinct sender credentials
	callWindow   = 6 * time.Second
	callCacheTTL = 2 * time.Second
	callRefresh  = time.Second
)

// TestVaultCallsAtTwoRates is the gateway tier's load on Vault at two
// request rates 10x apart, for three gateways sharing one Vault (counted at
// a proxy in front of it): in identity_token mode it does not grow with
// traffic (key fetches and secret version checks run on their own clocks);
// in token_lookup mode it stays within one lookup per distinct token per
// cache_ttl per gateway. Run by `make bench`.
func TestVaultCallsAtTwoRates(t *testing.T) {
	if testing.Short() {
		t.Skip("a load measurement")
	}
	v := vaulttest.Start(t)
	aud := v.OIDCRole(t, "otel", "otel-agent", `{"entity_name": {{identity.entity.name}}}`, "1h")
	v.PutPolicy(t, "agent", `path "identity/oidc/token/otel-agent" { capabilities = ["read"] }`)
	v.PutPolicy(t, "gateway", `
path "auth/token/lookup"           { capabilities = ["update"] }
path "identity/entity/id/*"        { capabilities = ["read"] }
path "secret/data/lightstep/*"     { capabilities = ["read"] }
path "secret/metadata/lightstep/*" { capabilities = ["read"] }`)
	v.PutKV2(t, "lightstep/prod", map[string]any{"access_token": "ls-token"})
	w := v.UserpassWorkload(t, "payments", "agent")
	jwts, tokens := make([]string, callSenders), make([]string, callSenders)
	for i := range callSenders {
		tokens[i] = v.Login(t, w)
		jwts[i] = v.IdentityToken(t, tokens[i], "otel-agent")
	}
	proxy := vaulttest.NewCountingProxy(t, v)
	gatewayToken := v.Write(t, "auth/token/create", map[string]any{"policies": []string{"gateway"}, "no_parent": true}).Auth.ClientToken

	for _, mode := range []string{"identity_token", "token_lookup"} {
		// Each gateway: a server instance and the Lightstep client, as in examples/gateway.yaml.
		var servers []extensionauth.Server
		for range callGateways {
			f := vaultauthextension.NewFactory()
			server := map[string]any{"cache_ttl": callCacheTTL.String()}
			conf := map[string]any{"vault": map[string]any{"address": proxy.Addr}, "server": server}
			if mode == "identity_token" {
				server["identity_token"] = map[string]any{"audience": aud, "issuers": []any{v.Addr + "/v1/identity/oidc"}}
			} else {
				server["token_lookup"] = map[string]any{"max_lookups_per_second": 10000}
				conf["auth"] = map[string]any{"token": gatewayToken}
			}
			servers = append(servers, startExtension(t, f, conf).(extensionauth.Server))
			startExtension(t, f, map[string]any{
				"vault": map[string]any{"address": proxy.Addr}, "auth": map[string]any{"token": gatewayToken},
				"client": map[string]any{"secret": map[string]any{"path": "secret/data/lightstep/prod", "key": "access_token"},
					"refresh_interval": callRefresh.String()},
			})
		}
		creds := jwts
		if mode == "token_lookup" {
			creds = tokens
		}
		for _, rate := range []int{200, 2000} { // requests per second, all gateways
			before := len(proxy.Requests())
			lookupsBefore := proxy.Count("auth/token/lookup")
			served, refused := callLoad(servers, creds, rate)
			calls := len(proxy.Requests()) - before
			lookups := proxy.Count("auth/token/lookup") - lookupsBefore
			bound := callSenders * callGateways * int(math.Ceil(callWindow.Seconds()/callCacheTTL.Seconds()+1))
			t.Logf("%s, %d requests/s for %s over %d gateways: %d served, %d refused; Vault requests %d (%.1f/s), lookups %d (bound %d)",
				mode, rate, callWindow, callGateways, served, refused, calls, float64(calls)/callWindow.Seconds(), lookups, bound)
			if mode == "token_lookup" && lookups > bound {
				t.Errorf("%d lookups above one per distinct token per cache_ttl per gateway (%d)", lookups, bound)
			}
			if refused > 0 {
				t.Errorf("%d valid requests refused", refused)
			}
		}
	}
}

// callLoad spreads rate requests/s over the gateways for callWindow.
func callLoad(servers []extensionauth.Server, creds []string, rate int) (served, refused int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	const workers = 8
	start := time.Now()
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second * workers / time.Duration(rate))
			defer tick.Stop()
			for i := 0; time.Since(start) < callWindow; i++ {
				<-tick.C
				s := servers[(g+i)%len(servers)]
				h := map[string][]string{"authorization": {"Bearer " + creds[(g*31+i)%len(creds)]}}
				_, err := s.Authenticate(context.Background(), h)
				mu.Lock()
				if err == nil {
					served++
				} else {
					refused++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return served, refused
}
