package vaultauthextension

import (
	"os"
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
	e := identityEnvOn(t, v)
	aud, w := e.audience, e.alice

	t.Run("trusted CA", func(t *testing.T) {
		cfg := clientConfig(v.Addr)
		cfg.Vault.TLS.CAFile = v.CAFile
		startExtension(t, withToken(cfg, readerToken(t, v, "1h"))).waitSent(t, "ls-token-v1")

		srv := serverConfig(v.Addr, aud)
		srv.Vault.TLS.CAFile = v.CAFile
		id, err := authenticate(startExtension(t, srv), "Bearer "+v.IdentityToken(t, w.Token, agentRole))
		require.NoError(t, err)
		assert.Equal(t, w.EntityID, id.EntityID())
	})

	t.Run("VAULT_CACERT when vault.tls sets no CA", func(t *testing.T) {
		t.Setenv("VAULT_CACERT", v.CAFile)
		startExtension(t, withToken(clientConfig(v.Addr), readerToken(t, v, "1h"))).waitSent(t, "ls-token-v1")
		id, err := authenticate(startExtension(t, serverConfig(v.Addr, aud)), "Bearer "+v.IdentityToken(t, w.Token, agentRole))
		require.NoError(t, err, "the JWKS client honours VAULT_CACERT too")
		assert.Equal(t, w.EntityID, id.EntityID())
	})

	t.Run("VAULT_CAPATH and VAULT_TLS_SERVER_NAME", func(t *testing.T) {
		dir := t.TempDir()
		ca, err := os.ReadFile(v.CAFile)
		require.NoError(t, err)
		writeFile(t, dir, "vault-ca.pem", string(ca))
		t.Setenv("VAULT_CAPATH", dir)
		startExtension(t, withToken(clientConfig(v.Addr), readerToken(t, v, "1h"))).waitSent(t, "ls-token-v1")

		t.Setenv("VAULT_TLS_SERVER_NAME", "not-this-server.example")
		h := startExtension(t, withToken(clientConfig(v.Addr), readerToken(t, v, "1h")))
		h.waitStatus(t, componentstatus.StatusRecoverableError)
		assert.Contains(t, h.host.Errors()[0].Error(), "not-this-server.example")
	})

	t.Run("VAULT_SKIP_VERIFY", func(t *testing.T) {
		t.Setenv("VAULT_SKIP_VERIFY", "true")
		startExtension(t, withToken(clientConfig(v.Addr), readerToken(t, v, "1h"))).waitSent(t, "ls-token-v1")
	})

	t.Run("server_name checked against the certificate", func(t *testing.T) {
		cfg := clientConfig(v.Addr)
		cfg.Vault.TLS.CAFile = v.CAFile
		cfg.Vault.TLS.ServerName = "not-this-server.example"
		withToken(cfg, readerToken(t, v, "1h"))
		h := startExtension(t, cfg)
		h.waitStatus(t, componentstatus.StatusRecoverableError)
		assert.Contains(t, h.host.Errors()[0].Error(), "not-this-server.example")
		assert.Empty(t, h.sent(t))
	})

	t.Run("untrusted server", func(t *testing.T) {
		cfg := clientConfig(v.Addr)
		withToken(cfg, readerToken(t, v, "1h"))
		h := startExtension(t, cfg)
		h.waitStatus(t, componentstatus.StatusRecoverableError)
		assert.Contains(t, h.host.Errors()[0].Error(), "certificate")
		assert.Empty(t, h.sent(t))
	})
}

// A Vault listener that requires a client certificate (as many production
// clusters do): vault.tls cert_file/key_file, or VAULT_CLIENT_CERT and
// VAULT_CLIENT_KEY when vault.tls sets none, present it; without one the
// handshake fails and nothing is sent.
func TestVaultRequiringClientCertificate(t *testing.T) {
	v, mtls := vaulttest.StartWithClientCerts(t)
	seedLightstep(t, v, "ls-token-v1")
	e := identityEnvOn(t, v)
	aud, w := e.audience, e.alice

	t.Run("vault.tls cert_file and key_file", func(t *testing.T) {
		cfg := clientConfig(mtls.Addr)
		cfg.Vault.TLS.CAFile, cfg.Vault.TLS.CertFile, cfg.Vault.TLS.KeyFile = mtls.CAFile, mtls.CertFile, mtls.KeyFile
		startExtension(t, withToken(cfg, readerToken(t, v, "1h"))).waitSent(t, "ls-token-v1")
	})

	t.Run("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY", func(t *testing.T) {
		t.Setenv("VAULT_CACERT", mtls.CAFile)
		t.Setenv("VAULT_CLIENT_CERT", mtls.CertFile)
		t.Setenv("VAULT_CLIENT_KEY", mtls.KeyFile)
		startExtension(t, withToken(clientConfig(mtls.Addr), readerToken(t, v, "1h"))).waitSent(t, "ls-token-v1")

		// The gateway's JWKS client presents the same certificate: the
		// issuer, and so the JWKS, is the client-certificate listener.
		v.Write(t, "identity/oidc/config", map[string]any{"issuer": mtls.Addr})
		srv := serverConfig(mtls.Addr, aud)
		id, err := authenticate(startExtension(t, srv), "Bearer "+v.IdentityToken(t, w.Token, agentRole))
		require.NoError(t, err)
		assert.Equal(t, w.EntityID, id.EntityID())
	})

	t.Run("no client certificate", func(t *testing.T) {
		cfg := clientConfig(mtls.Addr)
		cfg.Vault.TLS.CAFile = mtls.CAFile
		h := startExtension(t, withToken(cfg, readerToken(t, v, "1h")))
		h.waitStatus(t, componentstatus.StatusRecoverableError)
		assert.Empty(t, h.sent(t))
	})
}
