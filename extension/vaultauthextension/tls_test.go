package vaultauthextension

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componentstatus"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Vault over TLS (Vault's own -dev-tls): the secret is read when vault.tls
// trusts the server's CA, refused when it does not, and server_name is the
// name checked against the certificate. The JWKS is fetched over TLS too.
func TestVaultOverTLS(t *testing.T) {
	v := vaulttest.StartTLS(t)
	require.True(t, strings.HasPrefix(v.Addr, "https://"))
	seedLightstep(t, v, "ls-token-v1")
	aud := v.OIDCRole(t, "otel", agentRole, `{"entity_name": {{identity.entity.name}}}`, "1h")
	v.PutPolicy(t, "otel-agent", `path "identity/oidc/token/*" { capabilities = ["read"] }`)
	w := v.UserpassWorkload(t, "alice", "otel-agent")

	t.Run("trusted CA", func(t *testing.T) {
		cfg := newConfig(v.Addr)
		cfg.Vault.TLS.CAFile = v.CAFile
		cfg.Auth.Token = configToken(t, v)
		srv := cfg.Server.GetOrInsertDefault()
		srv.IdentityToken.GetOrInsertDefault().Audience = aud
		h := start(t, cfg)
		h.waitValue(t, "ls-token-v1")
		id, err := authenticate(h, "Bearer "+v.IdentityToken(t, w.Token, agentRole))
		require.NoError(t, err)
		assert.Equal(t, w.EntityID, id.EntityID)
	})

	t.Run("server_name checked against the certificate", func(t *testing.T) {
		cfg := newConfig(v.Addr)
		cfg.Vault.TLS.CAFile = v.CAFile
		cfg.Vault.TLS.ServerName = "not-this-server.example"
		cfg.Auth.Token = configToken(t, v)
		h := start(t, cfg)
		h.waitStatus(t, componentstatus.StatusRecoverableError)
		assert.Contains(t, h.host.Errors()[0].Error(), "not-this-server.example")
		assert.Empty(t, h.value())
	})

	t.Run("untrusted server", func(t *testing.T) {
		cfg := newConfig(v.Addr)
		cfg.Auth.Token = configToken(t, v)
		h := start(t, cfg)
		h.waitStatus(t, componentstatus.StatusRecoverableError)
		assert.Contains(t, h.host.Errors()[0].Error(), "certificate")
		assert.Empty(t, h.value())
	})
}
