package vaultauthextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.uber.org/zap/zapcore"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Each login method the dev server supports reads the secret with the
// token it got, and the extension sends the value.
func TestLoginMethods(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")

	t.Run("token", func(t *testing.T) {
		startExtension(t, withToken(clientConfig(v.Addr), readerToken(t, v, "1h"))).waitSent(t, "ls-token-v1")
	})

	t.Run("token_file", func(t *testing.T) {
		cfg := clientConfig(v.Addr)
		auth(cfg).TokenFile = writeFile(t, t.TempDir(), "token", readerToken(t, v, "1h")+"\n")
		startExtension(t, cfg).waitSent(t, "ls-token-v1")
	})

	t.Run("approle", func(t *testing.T) {
		roleID, secretID := v.AppRole(t, "otel-collector", map[string]any{"token_policies": readPolicy})
		dir := t.TempDir()
		cfg := clientConfig(v.Addr)
		a := auth(cfg)
		a.Method = "approle"
		a.RoleIDFile = writeFile(t, dir, "role-id", roleID)
		a.SecretIDFile = writeFile(t, dir, "secret-id", secretID)
		startExtension(t, cfg).waitSent(t, "ls-token-v1")
	})

	t.Run("jwt", func(t *testing.T) {
		signer := vaulttest.NewSigner(t)
		v.EnableAuth(t, "jwt", "jwt")
		v.Write(t, "auth/jwt/config", map[string]any{
			"jwt_validation_pubkeys": []string{signer.PublicPEM(t)},
			"bound_issuer":           "https://ci.example",
		})
		v.Write(t, "auth/jwt/role/otel-collector", map[string]any{
			"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"vault"},
			"token_policies": []string{readPolicy}, "token_ttl": "1h",
		})
		jwt := signer.Sign(t, map[string]any{
			"iss": "https://ci.example", "sub": "collector-1", "aud": "vault",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		})
		cfg := clientConfig(v.Addr)
		a := auth(cfg)
		a.Method, a.Role = "jwt", "otel-collector"
		a.JWTFile = writeFile(t, t.TempDir(), "jwt", jwt)
		startExtension(t, cfg).waitSent(t, "ls-token-v1")
	})
	// Kubernetes: against a real kube-apiserver, in kubernetes_test.go.
}

// A wrong credential never logs in: nothing is sent, the status says why.
func TestLoginFailureReportsStatus(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	h := startExtension(t, withToken(clientConfig(v.Addr), "hvs.not-a-token"))
	h.waitStatus(t, componentstatus.StatusRecoverableError)
	require.Empty(t, h.sent(t))
	creds, err := h.ext.(extensionauth.GRPCClient).PerRPCCredentials()
	require.NoError(t, err)
	_, err = creds.GetRequestMetadata(context.Background())
	require.ErrorContains(t, err, "no credential from Vault yet ("+lightstepAPI+")")
}

// A login keeps what it learned: the token method looks the token up once
// per login, and an instance whose own identity nobody stamps never reads
// its entity nor warns about it (the gateway's lightstep-reader policy
// cannot read entities). A processor that asks for the name gets it read,
// once.
func TestLoginReadsOnlyWhatIsNeeded(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	proxy := vaulttest.NewCountingProxy(t, v)
	h := startExtension(t, withToken(clientConfig(proxy.Addr), readerToken(t, v, "1h")))
	h.waitSent(t, "ls-token-v1")
	require.Eventually(t, func() bool { return proxy.Count("secret/metadata/"+lightstepPath) > 2 }, eventually, poll)
	assert.Equal(t, 1, proxy.Count("auth/token/lookup-self"), "lookup-self per login")
	for _, r := range proxy.Requests() {
		assert.NotContains(t, r.Path, "identity/entity", "an entity read nobody asked for")
	}
	assert.Zero(t, h.logs.FilterLevelExact(zapcore.WarnLevel).Len(), "a warning for an identity nobody stamps")

	// userpass: a login with an entity, whose policy reads its own entity.
	v.PutPolicy(t, "self", `path "identity/entity/id/{{identity.entity.id}}" { capabilities = ["read"] }`)
	w := v.UserpassWorkload(t, "payments", readPolicy, "self")
	self := startExtension(t, withToken(clientConfig(proxy.Addr), w.Token))
	provider := self.ext.(identity.Provider)
	require.NoError(t, provider.RequireAttributes([]string{identity.EntityID, identity.EntityName}))
	require.Eventually(t, func() bool {
		id, ok := provider.VaultIdentity()
		if !ok {
			return false
		}
		name, _ := id.Get(identity.EntityName)
		return name == "payments" && id.EntityID() == w.EntityID
	}, eventually, poll)
	assert.Equal(t, 1, proxy.Count("identity/entity/id/"+w.EntityID), "the entity read once")
}
