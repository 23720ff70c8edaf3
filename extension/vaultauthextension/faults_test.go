package vaultauthextension

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.uber.org/zap/zapcore"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

func (h *harness) failures(t *testing.T) int64 {
	n, _ := h.sum(t, "otelcol_vaultauth_vault_request_failures")
	return n
}

func (h *harness) warnings() int { return h.logs.FilterLevelExact(zapcore.WarnLevel).Len() }

// Secret deleted, key missing, policy revoked: each keeps the last good
// value flowing, turns the status to RecoverableError, counts failures, and
// logs one warning for the new state, not one per retry.
func TestSecretFaultsKeepLastGood(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	h := startExtension(t, withToken(clientConfig(v.Addr), readerToken(t, v, "1h")))
	h.waitSent(t, "ls-token-v1")
	h.waitStatus(t, componentstatus.StatusOK)

	faults := []struct {
		name    string
		inject  func()
		restore func()
	}{
		{"secret deleted",
			func() { require.NoError(t, v.Client.KVv2("secret").Delete(context.Background(), lightstepPath)) },
			func() {
				require.NoError(t, v.Client.KVv2("secret").Undelete(context.Background(), lightstepPath, []int{1}))
			}},
		{"key missing",
			func() { v.PutKV2(t, lightstepPath, map[string]any{"token": "wrong-key"}) },
			func() { v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v1"}) }},
		{"policy revoked",
			func() { v.PutPolicy(t, readPolicy, `path "secret/*" { capabilities = ["deny"] }`) },
			func() { v.PutPolicy(t, readPolicy, readPolicyHCL) }},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			failures, warnings := h.failures(t), h.warnings()
			f.inject()
			h.waitStatus(t, componentstatus.StatusRecoverableError)
			// Let it retry a number of times.
			require.Eventually(t, func() bool { return h.failures(t) >= failures+5 }, eventually, poll)
			assert.Equal(t, "ls-token-v1", h.sent(t), "the last good value must keep flowing")
			assert.Equal(t, warnings+1, h.warnings(), "one warning for the new state, not one per retry")
			f.restore()
			h.waitStatus(t, componentstatus.StatusOK)
			assert.Equal(t, "ls-token-v1", h.sent(t))
		})
	}
	var reasons []string
	for _, err := range h.host.Errors() {
		reasons = append(reasons, err.Error())
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"deleted or destroyed", `no key "access_token"`, "permission denied"} {
		assert.Contains(t, all, want, "the status says why")
	}
	assert.NotContains(t, all, "ls-token-v1")
}

// An AppRole secret id that may be used once: after the token is revoked,
// the new login fails with a clear error, and the last good value stays.
func TestSecretIDExhausted(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	roleID, secretID := v.AppRole(t, "single-use", map[string]any{"token_policies": readPolicy, "secret_id_num_uses": 1})
	h := startExtension(t, withAppRole(clientConfig(v.Addr), roleID, secretID))
	h.waitSent(t, "ls-token-v1")

	v.Write(t, "sys/leases/revoke-prefix/auth/approle/login", nil)
	require.Eventually(t, func() bool {
		for _, err := range h.host.Errors() {
			if strings.Contains(err.Error(), "approle login") && strings.Contains(err.Error(), "invalid secret id") {
				return true
			}
		}
		return false
	}, eventually, poll, "no clear error for the exhausted secret id: %v", h.host.Errors())
	assert.Equal(t, "StatusRecoverableError", h.host.LastStatus().String())
	assert.Equal(t, "ls-token-v1", h.sent(t))
	for _, err := range h.host.Errors() {
		assert.NotContains(t, err.Error(), secretID)
	}
}

// The JWKS endpoint down: tokens signed with known keys keep verifying;
// a token with an unknown key id is refused, and refetches are rate-limited.
func TestJWKSOutage(t *testing.T) {
	e := newIdentityEnv(t)
	proxy := vaulttest.NewCountingProxy(t, e.v)
	e.v.Write(t, "identity/oidc/config", map[string]any{"issuer": proxy.Addr})
	cfg := e.jwtServerConfig()
	cfg.Vault.Address = proxy.Addr
	cfg.Server.Get().IdentityToken.Get().JWKSRefetchInterval = time.Hour
	h := startExtension(t, cfg)
	before := e.v.IdentityToken(t, e.alice.Token, agentRole)
	_, err := authenticate(h, "Bearer "+before)
	require.NoError(t, err)
	fetches := proxy.Count("identity/oidc/.well-known/keys")
	require.GreaterOrEqual(t, fetches, 1)

	proxy.SetDown(true)
	// New tokens signed by the same key, for two workloads: verified from the cached keys.
	for _, w := range []vaulttest.Workload{e.alice, e.bob} {
		_, err := authenticate(h, "Bearer "+e.v.IdentityToken(t, w.Token, agentRole))
		require.NoError(t, err, w.Name)
	}
	// Unknown key ids: refused, without a flood of fetches.
	foreign := vaulttest.NewSigner(t)
	for i := range 50 {
		_, err := authenticate(h, "Bearer "+foreign.Sign(t, map[string]any{
			"iss": proxy.Addr + "/v1/identity/oidc", "sub": fmt.Sprint("x", i), "aud": e.audience, "exp": time.Now().Add(time.Hour).Unix(),
		}))
		require.Error(t, err)
	}
	proxy.SetDown(false)
	assert.Equal(t, fetches, proxy.Count("identity/oidc/.well-known/keys"), "JWKS refetched despite jwks_refetch_interval")
}

// Vault answering after 5 s: requests and RPCs keep their speed, because
// they read cached values; they do not wait for Vault.
func TestSlowVaultDoesNotSlowRequests(t *testing.T) {
	e := newIdentityEnv(t)
	seedLightstep(t, e.v, "ls-token-v1")
	proxy := vaulttest.NewCountingProxy(t, e.v)
	e.v.Write(t, "identity/oidc/config", map[string]any{"issuer": proxy.Addr})
	cfg := withToken(clientConfig(proxy.Addr), readerToken(t, e.v, "1h"))
	cfg.Vault.Timeout = 30 * time.Second
	client := startExtension(t, cfg)
	client.waitSent(t, "ls-token-v1")
	srv := serverConfig(proxy.Addr, e.audience)
	srv.Vault.Timeout = 30 * time.Second
	h := startExtension(t, srv)
	jwt := e.v.IdentityToken(t, e.alice.Token, agentRole)
	_, err := authenticate(h, "Bearer "+jwt)
	require.NoError(t, err)

	const delay = 5 * time.Second
	proxy.SetDelay(delay)
	require.Eventually(t, func() bool { return proxy.Delayed() > 0 }, eventually, poll, "no Vault request held")
	creds, err := client.ext.(extensionauth.GRPCClient).PerRPCCredentials()
	require.NoError(t, err)
	var worst time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2500 {
				start := time.Now()
				_, err1 := creds.GetRequestMetadata(context.Background())
				_, err2 := authenticate(h, "Bearer "+jwt)
				d := time.Since(start)
				mu.Lock()
				worst = max(worst, d)
				mu.Unlock()
				if err := errors.Join(err1, err2); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Each of the 10,000 requests and RPCs started while a Vault request was
	// held, and none waited for it: waiting would take the whole delay.
	assert.Less(t, worst, delay, "a request waited for Vault")
	t.Logf("10,000 RPC credentials + authentications while Vault took 5s per request: slowest pair %s", worst)
	proxy.SetDelay(0)
}
