package vaultauthextension

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensionauth"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// These tests play the attacker against the server side: each one fails on
// the code before the fix it proves (docs/security.md lists them).

// fromPeer is a request context from a client address, as the receiver sets it.
func fromPeer(ctx context.Context, ip string) context.Context {
	return client.NewContext(ctx, client.Info{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}})
}

func authenticateCtx(ctx context.Context, h *harness, credential string) error {
	_, err := h.ext.(extensionauth.Server).Authenticate(ctx, map[string][]string{"authorization": {"Bearer " + credential}})
	return err
}

// Senders without a credential of their own send tokens with the gateway's
// issuer, made-up key ids and 1 ms deadlines, without pause, while Vault
// rotates its key twice (the second key was never in any key set the
// gateway fetched). A token signed by the new key is accepted within one
// jwks_refetch_interval (plus the fetch): the attackers can neither make
// the fetch fail nor move its clock.
func TestForgedKeyIDsCannotHoldBackARotation(t *testing.T) {
	const refetch = time.Second
	e := newIdentityEnv(t)
	cfg := e.jwtServerConfig()
	cfg.Server.Get().IdentityToken.Get().JWKSRefetchInterval = refetch
	h := startExtension(t, cfg)
	require.NoError(t, authenticateCtx(context.Background(), h, e.v.IdentityToken(t, e.alice.Token, agentRole)))

	forger := vaulttest.NewSigner(t)
	stop := make(chan struct{})
	var attacks atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200000; i++ { // bounded; stopped when the test ends
				select {
				case <-stop:
					return
				default:
				}
				jwt := forger.SignAs(t, "RS256", fmt.Sprint("forged-", i), map[string]any{"iss": e.v.Addr + "/v1/identity/oidc", "sub": "x", "aud": e.audience,
					"exp": time.Now().Add(time.Hour).Unix()})
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				_ = authenticateCtx(ctx, h, jwt)
				cancel()
				attacks.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	require.Eventually(t, func() bool { return attacks.Load() > 100 }, eventually, poll)

	e.v.Write(t, "identity/oidc/key/otel/rotate", nil)
	e.v.Write(t, "identity/oidc/key/otel/rotate", nil)
	rotated := time.Now()
	fresh := e.v.IdentityToken(t, e.alice.Token, agentRole)
	var last error
	require.Eventually(t, func() bool {
		last = authenticateCtx(context.Background(), h, fresh)
		require.NotErrorIs(t, last, errUnauthenticated, "a valid token was refused outright while the keys were stale")
		return last == nil
	}, eventually, 20*time.Millisecond, "never accepted: %v", last)
	took := time.Since(rotated)
	t.Logf("new key accepted %s after the rotation, with %d forged requests so far", took.Round(time.Millisecond), attacks.Load())
	assert.Less(t, took, refetch+2*time.Second, "held back beyond one refetch")
}

// The same attack while Vault is unreachable at start: once Vault answers,
// senders are served within the retry backoff, not held on Unavailable.
func TestForgedKeyIDsWhileVaultIsDown(t *testing.T) {
	e := newIdentityEnv(t)
	proxy := vaulttest.NewCountingProxy(t, e.v)
	e.v.Write(t, "identity/oidc/config", map[string]any{"issuer": proxy.Addr})
	proxy.SetDown(true)
	h := startExtension(t, serverConfig(proxy.Addr, e.audience))
	jwt := e.v.IdentityToken(t, e.alice.Token, agentRole)
	forger := vaulttest.NewSigner(t)
	attack := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_ = authenticateCtx(ctx, h, forger.Sign(t, map[string]any{"iss": proxy.Addr + "/v1/identity/oidc", "sub": "x",
			"aud": e.audience, "exp": time.Now().Add(time.Hour).Unix()}))
	}
	for range 200 {
		attack()
	}
	require.ErrorIs(t, authenticateCtx(context.Background(), h, jwt), errVerifierUnavailable, "no keys yet: retry, not refuse")
	proxy.SetDown(false)
	back := time.Now()
	require.Eventually(t, func() bool {
		attack()
		return authenticateCtx(context.Background(), h, jwt) == nil
	}, eventually, 20*time.Millisecond)
	t.Logf("served %s after Vault came back", time.Since(back).Round(time.Millisecond))
	assert.Less(t, time.Since(back), 2*time.Second, "the retry backoff is 200ms at most here")
}

// A sender that keeps retrying a token signed by a key the issuer does not
// publish (another Vault's, or a forger's) is told Unauthenticated within
// about one jwks_refetch_interval, and from then on without a fetch. Attack
// (finding 7 of issue 19): each retry inside the refetch window used to ask
// for the next refetch and get Unavailable, forever.
func TestUnknownKeyIDBecomesARefusal(t *testing.T) {
	const refetch = time.Second
	e := newIdentityEnv(t)
	vault := vaulttest.NewCountingProxy(t, e.v)
	e.v.Write(t, "identity/oidc/config", map[string]any{"issuer": vault.Addr})
	cfg := serverConfig(vault.Addr, e.audience)
	cfg.Server.Get().IdentityToken.Get().JWKSRefetchInterval = refetch
	h := startExtension(t, cfg)
	require.NoError(t, authenticateCtx(context.Background(), h, e.v.IdentityToken(t, e.alice.Token, agentRole)))

	other := vaulttest.NewSigner(t) // another Vault's key, with this Vault's issuer
	jwt := other.Sign(t, map[string]any{"iss": vault.Addr + "/v1/identity/oidc", "sub": e.alice.EntityID,
		"aud": e.audience, "exp": time.Now().Add(time.Hour).Unix()})
	first := time.Now()
	var outcomes []error
	for time.Since(first) < 4*refetch { // the agent's retries, every 100 ms
		err := authenticateCtx(context.Background(), h, jwt)
		require.Error(t, err)
		outcomes = append(outcomes, err)
		if errors.Is(err, errUnauthenticated) {
			break
		}
		require.ErrorIs(t, err, errVerifierUnavailable)
		time.Sleep(100 * time.Millisecond)
	}
	refusedAfter := time.Since(first)
	require.ErrorIs(t, outcomes[len(outcomes)-1], errUnauthenticated, "still Unavailable after %s (%d retries)", refusedAfter, len(outcomes))
	assert.Less(t, refusedAfter, refetch+time.Second, "refused within about one jwks_refetch_interval")
	fetches := vault.Count("identity/oidc/.well-known/keys")
	for range 20 {
		require.ErrorIs(t, authenticateCtx(context.Background(), h, jwt), errUnauthenticated, "refused for good")
	}
	assert.Equal(t, fetches, vault.Count("identity/oidc/.well-known/keys"), "a known refusal fetched the keys again")
	require.NoError(t, authenticateCtx(context.Background(), h, e.v.IdentityToken(t, e.bob.Token, agentRole)), "Vault's own tokens still pass")
	t.Logf("another key's token: Unavailable for %d retries, then Unauthenticated %s after the first (jwks_refetch_interval %s)",
		len(outcomes)-1, refusedAfter.Round(time.Millisecond), refetch)
}

// fakeJWKS serves signer's public key as an RS256 signing key, at any path.
func fakeJWKS(t *testing.T, signer *vaulttest.Signer) *httptest.Server {
	t.Helper()
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &signer.Key.PublicKey, KeyID: signer.KID, Algorithm: "RS256", Use: "sig"},
		}})
	}))
	t.Cleanup(jwks.Close)
	return jwks
}

// A key is used only with the algorithm its JWK declares: a token signed
// PS256 with a key published for RS256 is refused. (A fake JWKS: Vault's
// private keys cannot sign such a token.)
func TestJWTAlgorithmMustMatchTheKey(t *testing.T) {
	signer := vaulttest.NewSigner(t)
	jwks := fakeJWKS(t, signer)
	issuer := jwks.URL + "/v1/identity/oidc"
	h := startExtension(t, serverConfig(jwks.URL, "otel"))
	claims := map[string]any{"iss": issuer, "sub": "entity-1", "aud": "otel", "exp": time.Now().Add(time.Hour).Unix()}

	require.NoError(t, authenticateCtx(context.Background(), h, signer.Sign(t, claims)), "RS256, as declared")
	before := h.refusals(t, "refused", reasonAlgorithm)
	require.ErrorIs(t, authenticateCtx(context.Background(), h, signer.SignAs(t, "PS256", signer.KID, claims)), errUnauthenticated)
	assert.Equal(t, before+1, h.refusals(t, "refused", reasonAlgorithm))
}

// token_lookup: token-shaped strings Vault refuses with 400 or 500 are
// refusals, cached like any other; strings Vault could never accept are
// refused without asking it.
func TestLookupGarbageIsRefusedAndCached(t *testing.T) {
	e := newIdentityEnv(t)
	vault := vaulttest.NewCountingProxy(t, e.v)
	h := lookupGatewayAt(t, e, vault.Addr, time.Minute)
	base := vault.Count("auth/token/lookup")

	noNamespace := "hvs.AAAAAAAAAAAAAAAAAAAAAAAA.def" // Vault: 500 "no namespace"
	for range 50 {
		require.ErrorIs(t, authenticateCtx(context.Background(), h, noNamespace), errUnauthenticated)
	}
	assert.Equal(t, base+1, vault.Count("auth/token/lookup"), "50 identical requests")

	for _, bad := range []string{"hvb.short!", "hvs.abc.def", "hvb.A", "s.tooshort", "hvs.AAAAAAAAAAAAAAAAAAAAAAAA.toolongns"} {
		require.ErrorIs(t, authenticateCtx(context.Background(), h, bad), errUnauthenticated, bad)
	}
	assert.Equal(t, base+1, vault.Count("auth/token/lookup"), "shapes Vault cannot accept reach it")
}

// One peer floods the lookup budget with distinct well-shaped tokens from
// four goroutines; thirty new agents, each from its own address, send a
// valid token for the first time meanwhile. Every one is served at once.
func TestLookupBudgetIsFairAcrossPeers(t *testing.T) {
	e := newIdentityEnv(t)
	e.v.PutPolicy(t, "otel-gateway", gatewayPolicy)
	roleID, secretID := e.v.AppRole(t, "otel-gateway", map[string]any{"token_policies": "otel-gateway"})
	cfg := withAppRole(createDefaultConfig(), roleID, secretID)
	cfg.Vault.Address = e.v.Addr
	cfg.Server.GetOrInsertDefault().TokenLookup.GetOrInsertDefault()
	h := startExtension(t, cfg)
	h.waitStatus(t, componentstatus.StatusOK)

	tokens := make([]string, 30)
	for i := range tokens {
		tokens[i] = e.v.Login(t, e.alice)
	}
	stop := make(chan struct{})
	var flooded atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16)
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = rand.Read(buf)
				_ = authenticateCtx(fromPeer(context.Background(), "10.0.0.66"), h, "hvs.Flood"+hex.EncodeToString(buf))
				flooded.Add(1)
			}
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	require.Eventually(t, func() bool { return flooded.Load() > 1000 }, eventually, poll)

	var slowest time.Duration
	served := 0
	for i, tok := range tokens {
		start := time.Now()
		err := authenticateCtx(fromPeer(context.Background(), fmt.Sprintf("10.1.0.%d", i+1)), h, tok)
		slowest = max(slowest, time.Since(start))
		if err == nil {
			served++
		}
		time.Sleep(50 * time.Millisecond) // new agents arrive over 1.5 s
	}
	t.Logf("during a flood of %d requests from one peer: %d of %d new valid senders served on first try, slowest %s",
		flooded.Load(), served, len(tokens), slowest.Round(time.Millisecond))
	assert.Equal(t, len(tokens), served)
}

// The entity read that names a token_lookup sender runs on the gateway's
// own deadline: a sender that gives up early gets Unavailable, and the
// name is not cached empty for the next sender of that entity.
func TestEntityReadIsNotTheSendersToBreak(t *testing.T) {
	e := newIdentityEnv(t)
	vault := vaulttest.NewCountingProxy(t, e.v)
	h := lookupGatewayAt(t, e, vault.Addr, time.Minute)

	// The lookup answers at once; the entity read takes longer than the sender waits.
	vault.SetPathDelay("identity/entity/id/", 500*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := authenticateCtx(ctx, h, e.alice.Token)
	cancel()
	require.ErrorIs(t, err, errVerifierUnavailable, "the sender gave up: retry, not refuse")
	vault.SetPathDelay("identity/entity/id/", 0)

	other := e.v.Login(t, e.alice) // another token of the same entity
	id, err := authenticate(h, "Bearer "+other)
	require.NoError(t, err)
	name, ok := id.Get("vault.entity.name")
	assert.True(t, ok && name == "alice", "entity name %q: cached empty", name)
	// The first lookup went on without the sender and its verdict was kept.
	id, err = authenticate(h, "Bearer "+e.alice.Token)
	require.NoError(t, err)
	assert.Equal(t, e.alice.EntityID, id.EntityID())
}

// Without read on the entity, no identity is made up without its name:
// the sender is told to retry, nothing is cached, and once the policy is
// fixed the same token is served with its name.
func TestEntityReadFailureIsNotAVerdict(t *testing.T) {
	e := newIdentityEnv(t)
	e.v.PutPolicy(t, "otel-gateway", `path "auth/token/lookup" { capabilities = ["update"] }`)
	roleID, secretID := e.v.AppRole(t, "otel-gateway", map[string]any{"token_policies": "otel-gateway"})
	cfg := withAppRole(createDefaultConfig(), roleID, secretID)
	cfg.Vault.Address = e.v.Addr
	cfg.Server.GetOrInsertDefault().TokenLookup.GetOrInsertDefault()
	h := startExtension(t, cfg)
	h.waitStatus(t, componentstatus.StatusOK)

	require.ErrorIs(t, authenticateCtx(context.Background(), h, e.alice.Token), errVerifierUnavailable)
	e.v.PutPolicy(t, "otel-gateway", gatewayPolicy)
	require.Eventually(t, func() bool { return authenticateCtx(context.Background(), h, e.alice.Token) == nil }, eventually, poll)
	id, err := authenticate(h, "Bearer "+e.alice.Token)
	require.NoError(t, err)
	name, _ := id.Get("vault.entity.name")
	assert.Equal(t, "alice", name)
}

// With server.tenant.attribute: vault.namespace, each Vault Enterprise
// namespace is a tenant, named by the issuer that verified the token. (A
// fake JWKS at a namespace's issuer path: the open-source server has none.)
func TestNamespaceNamesTheTenant(t *testing.T) {
	signer := vaulttest.NewSigner(t)
	jwks := fakeJWKS(t, signer)
	cfg := serverConfig(jwks.URL, "otel")
	srv := cfg.Server.Get()
	srv.IdentityToken.Get().Issuers = []string{jwks.URL + "/v1/admin/team-a/identity/oidc", jwks.URL + "/v1/admin/team-b/identity/oidc"}
	srv.Tenant = configoptional.Some(TenantConfig{Attribute: identity.Namespace})
	h := startExtension(t, cfg)

	for _, ns := range []string{"admin/team-a", "admin/team-b"} {
		token := signer.Sign(t, map[string]any{
			"iss": jwks.URL + "/v1/" + ns + "/identity/oidc", "sub": "entity-1", "aud": "otel", "exp": time.Now().Add(time.Hour).Unix(),
		})
		ctx, err := h.ext.(extensionauth.Server).Authenticate(context.Background(), map[string][]string{"authorization": {"Bearer " + token}})
		require.NoError(t, err, ns)
		assert.Equal(t, []string{ns}, client.FromContext(ctx).Metadata.Get(TenantMetadataKey), ns)
	}
}
