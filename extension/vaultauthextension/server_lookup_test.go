package vaultauthextension

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configoptional"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// gatewayPolicy is the least a token_lookup gateway needs.
const gatewayPolicy = `
path "auth/token/lookup"   { capabilities = ["update"] }
path "identity/entity/id/*" { capabilities = ["read"] }
`

func lookupGateway(t *testing.T, e *identityEnv, cacheTTL time.Duration) *harness {
	return lookupGatewayAt(t, e, e.v.Addr, cacheTTL)
}

// lookupGatewayAt is a token_lookup gateway that reaches Vault at addr.
func lookupGatewayAt(t *testing.T, e *identityEnv, addr string, cacheTTL time.Duration) *harness {
	t.Helper()
	e.v.PutPolicy(t, "otel-gateway", gatewayPolicy)
	roleID, secretID := e.v.AppRole(t, "otel-gateway", map[string]any{"token_policies": "otel-gateway"})
	cfg := withAppRole(createDefaultConfig(), roleID, secretID)
	cfg.Vault.Address = addr
	srv := cfg.Server.GetOrInsertDefault()
	srv.TokenLookup.GetOrInsertDefault()
	srv.CacheTTL = cacheTTL
	h := startExtension(t, cfg)
	h.waitStatus(t, componentstatus.StatusOK)
	return h
}

func TestTokenLookupIdentity(t *testing.T) {
	e := newIdentityEnv(t)
	h := lookupGateway(t, e, time.Minute)
	id, err := authenticate(h, "Bearer "+e.alice.Token)
	require.NoError(t, err)
	assert.Equal(t, append(attributes(e.alice.EntityID, "alice"), identity.Attribute{Key: identity.Policies, Value: "default,otel-agent"}),
		id.Attributes())

	for name, values := range map[string][]string{
		"not token-shaped":          {"Bearer definitely-not-a-token"},
		"token-shaped but unknown":  {"Bearer hvs.CAESIJunkJunkJunkJunkJunkJunkJunkJunk"},
		"a token without an entity": {"Bearer " + e.v.Write(t, "auth/token/create", map[string]any{"policies": []string{"default"}}).Auth.ClientToken},
	} {
		_, err := authenticate(h, values...)
		assert.ErrorIs(t, err, errUnauthenticated, name)
	}
}

// N concurrent first requests with one token cost Vault one lookup; a
// repeated garbage token costs one; a non-token costs none.
func TestTokenLookupSharedAndCached(t *testing.T) {
	e := newIdentityEnv(t)
	vault := vaulttest.NewCountingProxy(t, e.v)
	h := lookupGatewayAt(t, e, vault.Addr, time.Minute)

	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := authenticate(h, "Bearer "+e.bob.Token)
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 1, vault.Count("auth/token/lookup"), "lookups for 64 concurrent requests")

	for range 100 {
		_, err := authenticate(h, "Bearer hvs.CAESIGarbageGarbageGarbageGarbage")
		require.ErrorIs(t, err, errUnauthenticated)
		_, err = authenticate(h, "Bearer garbage")
		require.ErrorIs(t, err, errUnauthenticated)
	}
	assert.Equal(t, 2, vault.Count("auth/token/lookup"), "lookups after 200 garbage requests")
}

// A revoked token is refused once its cache entry expires.
func TestTokenLookupRevoked(t *testing.T) {
	e := newIdentityEnv(t)
	h := lookupGateway(t, e, 200*time.Millisecond)
	_, err := authenticate(h, "Bearer "+e.alice.Token)
	require.NoError(t, err)
	e.v.Write(t, "auth/token/revoke", map[string]any{"token": e.alice.Token})
	require.Eventually(t, func() bool {
		_, err := authenticate(h, "Bearer "+e.alice.Token)
		return err != nil
	}, eventually, poll)
	_, err = authenticate(h, "Bearer "+e.alice.Token)
	require.ErrorIs(t, err, errUnauthenticated)
}

// token:meta.<key> reads only what an auth method wrote at login. Attack
// (finding 4 of issue 19): carol, whose policy lets her create tokens (a CI
// system's, say), creates a child token with meta username=bob; it keeps
// carol's entity, and must not be routed as bob.
func TestTokenMetaFromTokenCreateIsNotTrusted(t *testing.T) {
	e := newIdentityEnv(t)
	e.v.PutPolicy(t, "otel-gateway", gatewayPolicy)
	roleID, secretID := e.v.AppRole(t, "otel-gateway", map[string]any{"token_policies": "otel-gateway"})
	cfg := withAppRole(createDefaultConfig(), roleID, secretID)
	cfg.Vault.Address = e.v.Addr
	srv := cfg.Server.GetOrInsertDefault()
	srv.TokenLookup.GetOrInsertDefault()
	srv.Attributes = map[string]string{"vault.user": "token:meta.username"}
	srv.Tenant = configoptional.Some(TenantConfig{Attribute: "vault.user"})
	h := startExtension(t, cfg)
	h.waitStatus(t, componentstatus.StatusOK)

	e.v.PutPolicy(t, "token-creator", `path "auth/token/create" { capabilities = ["create", "update"] }`)
	carol := e.v.UserpassWorkload(t, "carol", "otel-agent", "token-creator")
	id, err := authenticate(h, "Bearer "+carol.Token)
	require.NoError(t, err, "carol's login token: userpass wrote username=carol")
	tenant, _ := id.Get(identity.Tenant)
	assert.Equal(t, "carol", tenant)

	child, err := e.v.ClientWithToken(t, carol.Token).Logical().Write("auth/token/create",
		map[string]any{"meta": map[string]any{"username": "bob"}})
	require.NoError(t, err)
	require.Equal(t, carol.EntityID, child.Auth.EntityID, "the child keeps carol's entity")
	id, err = authenticate(h, "Bearer "+child.Auth.ClientToken)
	if err == nil {
		tenant, _ := id.Get(identity.Tenant)
		require.NotEqual(t, "bob", tenant, "carol's child token was routed to bob")
	}
	assert.ErrorIs(t, err, errUnauthenticated, "a token whose meta nobody vouches for names no tenant")
}
