package vaultauthextension

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// The collector's token is revoked: the next Vault call gets 403, the
// extension logs in again and picks up the version written after the revocation.
func TestRevokedTokenLogsInAgain(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	roleID, secretID := v.AppRole(t, "otel-collector", map[string]any{"token_policies": readPolicy})
	cfg := clientConfig(v.Addr)
	auth(cfg).Method, auth(cfg).RoleID = "approle", configopaque.String(roleID)
	auth(cfg).SecretIDFile = writeFile(t, t.TempDir(), "secret-id", secretID)
	h := startExtension(t, cfg)
	h.waitSent(t, "ls-token-v1")

	v.Write(t, "sys/leases/revoke-prefix/auth/approle/login", nil)
	v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v2"})
	// The old token cannot read v2: seeing it proves a new login.
	h.waitSent(t, "ls-token-v2")
	require.NotEmpty(t, h.logs.FilterMessage("Vault rejected the current token; logging in again").All())
}

// A token file replaced by rename, then by a symlink swap (Vault Agent sinks,
// Kubernetes projected volumes): each new token is used, the old revoked one is not.
func TestTokenFileSwaps(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	dir := t.TempDir()
	tokenA := readerToken(t, v, "1h")
	// path -> data/token -> the real file, as Kubernetes lays out projected volumes.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "data-1"), 0o700))
	writeFile(t, filepath.Join(dir, "data-1"), "token", tokenA)
	require.NoError(t, os.Symlink("data-1", filepath.Join(dir, "data")))
	path := filepath.Join(dir, "token")
	require.NoError(t, os.Symlink(filepath.Join("data", "token"), path))

	cfg := clientConfig(v.Addr)
	auth(cfg).TokenFile = path
	auth(cfg).TokenFilePollInterval = 20 * time.Millisecond
	h := startExtension(t, cfg)
	h.waitSent(t, "ls-token-v1")

	// Symlink swap: data -> data-2.
	tokenB := readerToken(t, v, "1h")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "data-2"), 0o700))
	writeFile(t, filepath.Join(dir, "data-2"), "token", tokenB)
	require.NoError(t, os.Symlink("data-2", filepath.Join(dir, "data.new")))
	require.NoError(t, os.Rename(filepath.Join(dir, "data.new"), filepath.Join(dir, "data")))
	v.Write(t, "auth/token/revoke", map[string]any{"token": tokenA})
	v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v2"})
	h.waitSent(t, "ls-token-v2")

	// Atomic rename over the path itself.
	tokenC := readerToken(t, v, "1h")
	tmp := writeFile(t, dir, "token.tmp", tokenC)
	require.NoError(t, os.Rename(tmp, path))
	v.Write(t, "auth/token/revoke", map[string]any{"token": tokenB})
	v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v3"})
	h.waitSent(t, "ls-token-v3")
	require.Len(t, h.logs.FilterMessage("Vault token file changed; using the new token").All(), 2)
}

// A short-lived renewable token is renewed by the LifetimeWatcher and the
// extension keeps reading without a new login.
func TestTokenIsRenewed(t *testing.T) {
	v := vaulttest.Start(t)
	seedLightstep(t, v, "ls-token-v1")
	roleID, secretID := v.AppRole(t, "short", map[string]any{
		"token_policies": readPolicy, "token_ttl": "3s", "token_max_ttl": "1h",
	})
	h := startExtension(t, withAppRole(clientConfig(v.Addr), roleID, secretID))
	h.waitSent(t, "ls-token-v1")
	require.Eventually(t, func() bool {
		// The watcher renews once at start, then at about 2/3 of the 3s TTL.
		return h.logs.FilterMessage("Vault token renewed").Len() >= 2
	}, eventually, poll)
	// The renewed token still reads, and no second login was needed.
	v.PutKV2(t, lightstepPath, map[string]any{"access_token": "ls-token-v2"})
	h.waitSent(t, "ls-token-v2")
	require.Equal(t, 1, h.logs.FilterMessage("Vault login succeeded").Len())
}
