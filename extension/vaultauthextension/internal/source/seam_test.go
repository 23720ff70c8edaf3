package source

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/status"
	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"
	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaultclient"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Routing, unit-tested through the seam (vaultclient.Vault) without a
// Vault process; the extension's integration tests run the same behaviour
// against the real server.

const (
	eventually = 20 * time.Second
	poll       = 10 * time.Millisecond
)

// forTenant is an export's context as the server side leaves it.
func forTenant(tenant string) context.Context {
	return client.NewContext(context.Background(), client.Info{Metadata: identity.TenantMetadata(tenant)})
}

// startTenants starts a tenants source reading through v, with the default
// tenant def (none when empty), until the test ends; edit changes its
// settings first.
func startTenants(t *testing.T, v vaultclient.Vault, def string, edit ...func(*TenantsSettings)) *Tenants {
	t.Helper()
	tel, err := telemetry.New(componenttest.NewNopTelemetrySettings(), component.MustNewID("vaultauth"))
	require.NoError(t, err)
	s := Settings{Header: "lightstep-access-token", RefreshInterval: 50 * time.Millisecond,
		Secret: vaultclient.SecretConfig{Path: "secret/data/teams/{tenant}", Key: "access_token"},
		Tenants: &TenantsSettings{MaxTenants: 10, IdleTimeout: time.Hour, Default: def,
			Park: ParkSettings{MaxBytes: 1 << 20, InitialInterval: 10 * time.Millisecond, MaxInterval: 100 * time.Millisecond}}}
	for _, e := range edit {
		e(s.Tenants)
	}
	src := newTenants(component.MustNewID("vaultauth"), s)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	env := Env{Vault: v, Retry: vaultclient.RetryConfig{InitialInterval: 10 * time.Millisecond, MaxInterval: 100 * time.Millisecond},
		Logger: zap.NewNop(), Telemetry: tel, Status: status.NewFolder(pipelinetest.NewHost(nil)), Run: func(f func()) { wg.Go(f) }}
	require.NoError(t, src.Start(ctx, ctx, pipelinetest.NewHost(nil), env))
	t.Cleanup(func() { cancel(); wg.Wait() })
	return src
}

func TestTenantRoutingWithoutVault(t *testing.T) {
	f := vaulttest.NewFake()
	f.Read = func(path string) (*api.Secret, error) {
		switch path {
		case "secret/data/teams/a":
			return vaulttest.KV2(t, "token-a", 1), nil
		case "secret/data/teams/shared":
			return vaulttest.KV2(t, "token-shared", 3), nil
		case "secret/metadata/teams/a", "secret/metadata/teams/shared":
			return vaulttest.Secret(t, `{"data":{"current_version":1}}`), nil
		}
		return nil, nil // not there: Vault's 404
	}
	src := startTenants(t, f, "shared")
	sent := func(tenant string) string {
		cred, err := src.Credential(forTenant(tenant))
		if err != nil {
			return ""
		}
		return cred.values[0]
	}
	require.Eventually(t, func() bool { return sent("a") == "token-a" }, eventually, poll)
	require.Eventually(t, func() bool { return sent("b") == "token-shared" }, eventually, poll, "b has no secret: the default's")
	assert.Equal(t, 1, f.Count("secret/data/teams/a"), "a's secret read once, then its version watched")
}

// Tenant eviction, without Vault: a tenant that sent nothing for
// idle_timeout is let go (its secret no longer watched), one still sending
// is kept, and so is one with exports parked.
func TestIdleTenantsAreEvicted(t *testing.T) {
	f := vaulttest.NewFake()
	f.Read = func(path string) (*api.Secret, error) {
		switch path {
		case "secret/data/teams/idle", "secret/data/teams/busy", "secret/data/teams/parked":
			return vaulttest.KV2(t, "token", 1), nil
		}
		return vaulttest.Secret(t, `{"data":{"current_version":1}}`), nil
	}
	src := startTenants(t, f, "", func(s *TenantsSettings) { s.IdleTimeout = 200 * time.Millisecond })
	for _, tenant := range []string{"idle", "busy", "parked"} {
		require.Eventually(t, func() bool { return src.Admit(forTenant(tenant)) == nil }, eventually, poll, tenant)
	}
	parked := (*src.snapshot.Load())["parked"].park
	parked.mu.Lock()
	parked.setParkedLocked(parkBackendUnavailable)
	parked.mu.Unlock()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && (*src.snapshot.Load())["idle"] != nil {
		_, _ = src.Credential(forTenant("busy"))
		time.Sleep(20 * time.Millisecond)
	}
	slots := *src.snapshot.Load()
	assert.Nil(t, slots["idle"], "an idle tenant was kept")
	assert.NotNil(t, slots["busy"], "a tenant still sending was let go")
	assert.NotNil(t, slots["parked"], "a tenant with exports parked was let go")
}
