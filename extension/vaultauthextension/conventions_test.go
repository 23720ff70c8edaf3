package vaultauthextension

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.uber.org/zap/zapcore"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Behaving like the Vault tools users already know.

// A KV v2 path written without /data/ says so, instead of "no key"
// (Vault answers with a warning when the policy lets the path through) or
// a bare "permission denied" (when the policy, written for the right
// path, stops it first).
func TestKV2PathWithoutData(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	v.PutPolicy(t, "broad", `path "secret/*" { capabilities = ["read"] }`)
	for name, policy := range map[string]string{"policy lets it through": "broad", "policy for the right path": readPolicy} {
		t.Run(name, func(t *testing.T) {
			token := v.Write(t, "auth/token/create", map[string]any{"policies": []string{policy}, "no_parent": true}).Auth.ClientToken
			cfg := withToken(clientConfig(v.Addr), token)
			cfg.Client.Get().Secret.Get().Path = "secret/lightstep/prod"
			h := startExtension(t, cfg)
			h.waitStatus(t, componentstatus.StatusRecoverableError)
			require.NotEmpty(t, h.host.Errors())
			msg := h.host.Errors()[len(h.host.Errors())-1].Error()
			assert.Contains(t, msg, "secret/data/lightstep/prod")
			assert.Contains(t, msg, "KV v2")
			assert.NotContains(t, msg, "no key")
		})
	}
}

// An AppRole secret id delivered response-wrapped is unwrapped at login.
func TestWrappedSecretID(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	roleID, _ := v.AppRole(t, "otel-collector", map[string]any{"token_policies": readPolicy})
	cfg := clientConfig(v.Addr)
	a := auth(cfg)
	a.Method, a.RoleID = "approle", configopaque.String(roleID)
	a.SecretIDFile = writeFile(t, t.TempDir(), "wrapped-secret-id", v.WrappedSecretID(t, "otel-collector"))
	a.SecretIDWrapped = true
	startExtension(t, cfg).waitSent(t, "ls-token-v1")
}

// Behind a Vault Proxy (or Agent) with use_auto_auth_token, method agent
// sends no token and the proxy adds its own: the secret is read, and this
// collector's identity is the proxy's login.
func TestVaultProxyWithAutoAuthToken(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	v.PutPolicy(t, "self", `path "identity/entity/id/{{identity.entity.id}}" { capabilities = ["read"] }`)
	roleID, secretID := v.AppRole(t, "via-proxy", map[string]any{"token_policies": readPolicy + ",self"})
	proxy := v.StartVaultProxy(t, roleID, secretID)

	cfg := clientConfig(proxy)
	auth(cfg).Method = vaultclient.MethodAgent
	h := startExtension(t, cfg)
	h.waitSent(t, "ls-token-v1")
	provider := h.ext.(identity.Provider)
	require.NoError(t, provider.RequireAttributes([]string{identity.EntityID, identity.EntityName}))
	require.Eventually(t, func() bool {
		id, ok := provider.VaultIdentity()
		if !ok {
			return false // withdrawn until the entity name is read
		}
		_, named := id.Get(identity.EntityName)
		return named
	}, eventually, poll, "no identity through the proxy")
}

// Vault Enterprise namespaces, shown against the open-source server through
// a recording proxy: every login, read, version check, lookup and entity
// read carries X-Vault-Namespace; a namespace's issuer is
// <addr>/v1/<ns>/identity/oidc, its keys and discovery document are read
// there, and its identities are stamped with the namespace.
func TestNamespaceOnEveryRequest(t *testing.T) {
	e := newIdentityEnv(t)
	seedLightstep(t, e.v, "ls-token-v1")
	rec := vaulttest.NewCountingProxy(t, e.v)
	rec.Rewrite("team-a/identity/oidc/", "identity/oidc/") // what Enterprise routes by path

	// Client: AppRole login, secret reads and version checks.
	roleID, secretID := e.v.AppRole(t, "otel-collector", map[string]any{"token_policies": readPolicy})
	client := withAppRole(clientConfig(rec.Addr), roleID, secretID)
	client.Vault.Namespace = "team-a"
	startExtension(t, client).waitSent(t, "ls-token-v1")
	require.Eventually(t, func() bool { return rec.Count("secret/metadata/"+lightstepPath) > 0 }, eventually, poll)

	// Client sending this collector's own identity token (an agent): token
	// login and the identity token read.
	agent := withToken(clientConfig(rec.Addr), e.alice.Token)
	agent.Vault.Namespace = "team-a"
	agentClient := agent.Client.Get()
	agentClient.Secret = configoptional.None[vaultclient.SecretConfig]()
	agentClient.IdentityToken = configoptional.Some(IdentityTokenClientConfig{Role: agentRole})
	startExtension(t, agent)
	require.Eventually(t, func() bool { return rec.Count("identity/oidc/token/"+agentRole) > 0 }, eventually, poll)

	// Server, token_lookup: the gateway's login, lookups, entity reads.
	lookup := lookupGatewayAtNamespace(t, e, rec.Addr, "team-a")
	_, err := authenticate(lookup, "Bearer "+e.alice.Token)
	require.NoError(t, err)

	// Server, identity_token, for a namespace's issuer.
	issuer := rec.Addr + "/v1/team-a/identity/oidc"
	srv := serverConfig(rec.Addr, e.audience)
	srv.Server.Get().IdentityToken.Get().Issuers = []string{issuer}
	startExtensionLogging(t, srv, zapcore.DebugLevel)
	require.Eventually(t, func() bool { return rec.Count("team-a/identity/oidc/.well-known/keys") > 0 }, eventually, poll)
	require.Eventually(t, func() bool { return rec.Count("team-a/identity/oidc/.well-known/openid-configuration") > 0 }, eventually, poll)
	// With vault.namespace and no issuers, the namespace's issuer is the
	// default (HCP: admin); issuers that leave the namespace out are warned
	// about at start.
	defaults := serverConfig(rec.Addr, e.audience)
	defaults.Vault.Namespace = "team-a"
	before := rec.Count("team-a/identity/oidc/.well-known/keys")
	startExtension(t, defaults)
	require.Eventually(t, func() bool { return rec.Count("team-a/identity/oidc/.well-known/keys") > before }, eventually, poll)
	rootOnly := serverConfig(rec.Addr, e.audience)
	rootOnly.Vault.Namespace = "team-a"
	rootOnly.Server.Get().IdentityToken.Get().Issuers = []string{rec.Addr + "/v1/identity/oidc"}
	h := startExtensionLogging(t, rootOnly, zapcore.WarnLevel)
	assert.Equal(t, 1, h.logs.FilterMessageSnippet("no issuer is in it").Len(), "issuers outside vault.namespace are warned about")

	var without []string
	for _, r := range rec.Requests() {
		if !strings.Contains(r.Path, "/.well-known/") && r.Namespace != "team-a" {
			without = append(without, r.Path)
		}
	}
	assert.Empty(t, without, "requests without X-Vault-Namespace: team-a")
	for _, path := range []string{
		"auth/approle/login", lightstepAPI, "secret/metadata/" + lightstepPath, "auth/token/lookup-self", "identity/oidc/token/" + agentRole,
		"auth/token/lookup", "identity/entity/id/" + e.alice.EntityID,
	} {
		assert.Positive(t, rec.Count(path), "no request to %s was seen", path)
	}
}

// lookupGatewayAtNamespace is a token_lookup gateway in a namespace.
func lookupGatewayAtNamespace(t *testing.T, e *identityEnv, addr, namespace string) *harness {
	t.Helper()
	e.v.PutPolicy(t, "otel-gateway", gatewayPolicy)
	roleID, secretID := e.v.AppRole(t, "otel-gateway", map[string]any{"token_policies": "otel-gateway"})
	cfg := withAppRole(createDefaultConfig(), roleID, secretID)
	cfg.Vault.Address, cfg.Vault.Namespace = addr, namespace
	cfg.Server.GetOrInsertDefault().TokenLookup.GetOrInsertDefault()
	h := startExtension(t, cfg)
	h.waitStatus(t, componentstatus.StatusOK)
	return h
}

// The issuer Vault puts in its tokens is discovered at start: one that is
// not the configured one (here Vault names the address collectors reach
// it through, a proxy) is a clear warning, not silent refusals.
func TestIssuerMismatchIsAWarningAtStart(t *testing.T) {
	e := newIdentityEnv(t)
	proxy := vaulttest.NewCountingProxy(t, e.v)
	e.v.Write(t, "identity/oidc/config", map[string]any{"issuer": proxy.Addr})
	h := startExtension(t, serverConfig(e.v.Addr, e.audience)) // issuer defaults to <vault.address>/v1/identity/oidc
	require.Eventually(t, func() bool {
		return h.logs.FilterMessageSnippet("Vault issues identity tokens as another issuer than configured").Len() == 1
	}, eventually, poll)
	warning := h.logs.FilterMessageSnippet("another issuer").All()[0].ContextMap()
	assert.Equal(t, proxy.Addr+"/v1/identity/oidc", warning["vault_says"])
	assert.Equal(t, e.v.Addr+"/v1/identity/oidc", warning["configured"])

	// Configured as Vault says: no warning, once the document was read.
	cfg := serverConfig(e.v.Addr, e.audience)
	cfg.Server.Get().IdentityToken.Get().Issuers = []string{proxy.Addr + "/v1/identity/oidc"}
	matching := startExtension(t, cfg)
	require.Eventually(t, func() bool { return proxy.Count("identity/oidc/.well-known/openid-configuration") > 0 }, eventually, poll)
	require.Eventually(t, func() bool {
		return matching.logs.FilterMessage("issuer confirmed by its discovery document").Len() == 1
	}, eventually, poll)
	assert.Zero(t, matching.logs.FilterMessageSnippet("another issuer").Len())
}
