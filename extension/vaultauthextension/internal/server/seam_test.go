package server

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"
	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Caching, unit-tested through the seam (vaultclient.Vault) without a
// Vault process; the extension's integration tests run the same behaviour
// against the real server.

// lookupAuthenticator is a token_lookup authenticator whose lookups go to v.
func lookupAuthenticator(t *testing.T, v vaultclient.Vault) *Authenticator {
	t.Helper()
	tel, err := telemetry.New(componenttest.NewNopTelemetrySettings(), component.MustNewID("vaultauth"))
	require.NoError(t, err)
	rules, err := identity.ParseRules(map[string]string{identity.EntityName: "entity:name", identity.Policies: "token:policies"})
	require.NoError(t, err)
	a := New(Settings{Header: "authorization", MaxCredentialSize: 16 << 10, CacheTTL: time.Minute, CacheSize: 100,
		NegativeCacheTTL: 10 * time.Second, Rules: rules,
		Lookup: &LookupSettings{MaxConcurrent: 32, PerSecond: 100, PerSecondPerClient: 25}}, tel, zap.NewNop(), new(auditevent.Bus), "vaultauth")
	vaultCfg := vaultclient.DefaultVaultConfig()
	vaultCfg.Timeout = time.Second
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	require.NoError(t, a.Start(context.Background(), runCtx, v, vaultCfg, func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }))
	return a
}

const token1, token2 = "hvs.AAAAAAAAAAAAAAAAAAAAAAAA1", "hvs.AAAAAAAAAAAAAAAAAAAAAAAA2"

func TestLookupCachingWithoutVault(t *testing.T) {
	f := vaulttest.NewFake()
	var mu sync.Mutex
	lookupFails := map[string]error{}
	f.Write = func(_ string, data map[string]any) (*api.Secret, error) {
		mu.Lock()
		defer mu.Unlock()
		if err := lookupFails[data["token"].(string)]; err != nil {
			return nil, err
		}
		return vaulttest.Secret(t, `{"data":{"entity_id":"ent-1","policies":["default"],"ttl":3600}}`), nil
	}
	entityFails := true
	f.Read = func(string) (*api.Secret, error) {
		mu.Lock()
		defer mu.Unlock()
		if entityFails {
			return nil, vaulttest.ResponseError(http.StatusInternalServerError, "internal error")
		}
		return vaulttest.Secret(t, `{"data":{"name":"payments","metadata":{}}}`), nil
	}
	s := lookupAuthenticator(t, f)
	auth := func(tok string) error {
		_, err := s.Authenticate(context.Background(), map[string][]string{"authorization": {"Bearer " + tok}})
		return err
	}

	// The entity read fails: no verdict, nothing cached, the next try asks again.
	require.ErrorIs(t, auth(token1), ErrUnavailable)
	require.ErrorIs(t, auth(token1), ErrUnavailable)
	assert.Equal(t, 2, f.Count("auth/token/lookup"))
	mu.Lock()
	entityFails = false
	mu.Unlock()

	// Then: one lookup for many requests, one entity read for two tokens of the entity.
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); assert.NoError(t, auth(token1)) }()
	}
	wg.Wait()
	require.NoError(t, auth(token2))
	assert.Equal(t, 4, f.Count("auth/token/lookup"), "lookups: 2 failed, then 1 per token")
	assert.Equal(t, 3, f.Count("identity/entity/id/ent-1"), "entity reads: 2 failed, then 1 for the entity")

	// Vault's refusal is cached; a Vault failure is not.
	mu.Lock()
	lookupFails["hvs.BBBBBBBBBBBBBBBBBBBBBBBB"] = vaulttest.ResponseError(http.StatusForbidden, "bad token")
	lookupFails["hvs.CCCCCCCCCCCCCCCCCCCCCCCC"] = vaulttest.ResponseError(http.StatusServiceUnavailable, "sealed")
	mu.Unlock()
	for range 3 {
		require.ErrorIs(t, auth("hvs.BBBBBBBBBBBBBBBBBBBBBBBB"), ErrUnauthenticated)
		require.ErrorIs(t, auth("hvs.CCCCCCCCCCCCCCCCCCCCCCCC"), ErrUnavailable)
	}
	assert.Equal(t, 4+1+3, f.Count("auth/token/lookup"), "the refusal once, the failure each time")
}
