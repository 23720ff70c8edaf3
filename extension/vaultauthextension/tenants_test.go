package vaultauthextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

const teamsPolicyHCL = `
path "secret/data/lightstep/teams/*"     { capabilities = ["read"] }
path "secret/metadata/lightstep/teams/*" { capabilities = ["read"] }
`

// tenantsConfig reads secret/data/lightstep/teams/{tenant} for each tenant.
func tenantsConfig(t *testing.T, v *vaulttest.Server) *Config {
	t.Helper()
	v.PutPolicy(t, "teams-read", teamsPolicyHCL)
	token := v.Write(t, "auth/token/create", map[string]any{"policies": []string{"teams-read"}, "no_parent": true}).Auth.ClientToken
	cfg := withToken(clientConfig(v.Addr), token)
	c := cfg.Client.Get()
	c.Secret.Get().Path = "secret/data/lightstep/teams/{tenant}"
	c.Tenants = configoptional.Some(TenantsConfig{MaxTenants: 3, IdleTimeout: time.Hour, Park: defaultParkConfig()})
	return cfg
}

// forTenant is an export's context as the server side leaves it.
func forTenant(tenant string) context.Context {
	return client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{TenantMetadataKey: {tenant}})})
}

func (h *harness) sentFor(ctx context.Context) (string, error) {
	creds, err := h.ext.(extensionauth.GRPCClient).PerRPCCredentials()
	if err != nil {
		return "", err
	}
	md, err := creds.GetRequestMetadata(ctx)
	return md["Lightstep-Access-Token"], err
}

// Each tenant's export carries its own token; a tenant without one waits
// (retryable) until its token is written; an export naming no tenant is
// refused for good; the tenant bound holds.
func TestEachTenantSendsItsOwnToken(t *testing.T) {
	v := vaulttest.Start(t)
	v.PutKV2(t, "lightstep/teams/a", map[string]any{"access_token": "token-a"})
	v.PutKV2(t, "lightstep/teams/b", map[string]any{"access_token": "token-b"})
	h := startExtension(t, tenantsConfig(t, v))

	for tenant, want := range map[string]string{"a": "token-a", "b": "token-b"} {
		require.Eventually(t, func() bool { got, _ := h.sentFor(forTenant(tenant)); return got == want }, eventually, poll, tenant)
	}
	_, err := h.sentFor(forTenant("c"))
	assert.Equal(t, codes.Unavailable, status.Code(err), "a tenant without a token waits")
	v.PutKV2(t, "lightstep/teams/c", map[string]any{"access_token": "token-c"})
	require.Eventually(t, func() bool { got, _ := h.sentFor(forTenant("c")); return got == "token-c" }, eventually, poll)

	_, err = h.sentFor(context.Background())
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "no tenant: refused for good")
	assert.Contains(t, err.Error(), "sending_queue::batch::partition::metadata_keys")
	_, err = h.sentFor(forTenant("d"))
	assert.Contains(t, err.Error(), "max_tenants", "a fourth tenant with max_tenants 3")
	_, err = h.sentFor(forTenant("../prod"))
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "a tenant name that is not a name")
}

// With tenants.default, a tenant that has no token of its own uses the
// default tenant's; a tenant that has one never does.
func TestDefaultTenant(t *testing.T) {
	v := vaulttest.Start(t)
	v.PutKV2(t, "lightstep/teams/shared", map[string]any{"access_token": "token-shared"})
	v.PutKV2(t, "lightstep/teams/a", map[string]any{"access_token": "token-a"})
	cfg := tenantsConfig(t, v)
	cfg.Client.Get().Tenants.Get().Default = "shared"
	h := startExtension(t, cfg)
	require.Eventually(t, func() bool { got, _ := h.sentFor(forTenant("newcomer")); return got == "token-shared" }, eventually, poll)
	require.Eventually(t, func() bool { got, _ := h.sentFor(forTenant("a")); return got == "token-a" }, eventually, poll)
}

// A sending queue that batches without partitioning by tenant merges two
// tenants' data into one export, which names no tenant: it is refused, and
// nothing reaches the backend with either token. Partitioned, both arrive,
// each with its own.
func TestMergedTenantsAreNeverSent(t *testing.T) {
	v := vaulttest.Start(t)
	v.PutKV2(t, "lightstep/teams/a", map[string]any{"access_token": "token-a"})
	v.PutKV2(t, "lightstep/teams/b", map[string]any{"access_token": "token-b"})
	h := startExtension(t, tenantsConfig(t, v))
	rec := newHeaderRecorder()
	rcv := pipelinetest.StartTracesReceiver(t, h.host, map[string]any{"include_metadata": true}, rec.consumer(t))

	send := func(batch map[string]any) {
		exp := pipelinetest.StartTracesExporter(t, h.host, "otlp_grpc", rcv.ExporterConfig("otlp_grpc", map[string]any{
			"auth":             map[string]any{"authenticator": extID.String()},
			"retry_on_failure": map[string]any{"enabled": false},
			"sending_queue":    map[string]any{"enabled": true, "batch": batch},
		}))
		require.NoError(t, exp.ConsumeTraces(forTenant("a"), traces("a")))
		require.NoError(t, exp.ConsumeTraces(forTenant("b"), traces("b")))
	}
	send(map[string]any{"flush_timeout": "200ms"})
	require.Eventually(t, func() bool {
		return h.logs.FilterMessage("refused an export without a tenant").Len() > 0
	}, eventually, poll, "the merged batch was not refused")
	assert.Empty(t, rec.values("a"), "a merged batch reached the backend")
	assert.Empty(t, rec.values("b"), "a merged batch reached the backend")

	// The tenants' tokens are read on first use (exports retry meanwhile;
	// here retries are off, so they are read first).
	for tenant, want := range map[string]string{"a": "token-a", "b": "token-b"} {
		require.Eventually(t, func() bool { got, _ := h.sentFor(forTenant(tenant)); return got == want }, eventually, poll)
	}
	send(map[string]any{"flush_timeout": "200ms", "partition": map[string]any{"metadata_keys": []any{TenantMetadataKey}}})
	require.Eventually(t, func() bool { return len(rec.values("a")) == 1 && len(rec.values("b")) == 1 }, eventually, poll)
	assert.Equal(t, []string{"token-a"}, rec.values("a"))
	assert.Equal(t, []string{"token-b"}, rec.values("b"))
}

// The server side names the tenant from the verified identity only: a
// token claim here. A tenant key a sender put in its metadata is replaced;
// an identity without the attribute is refused.
func TestServerNamesTheTenantFromTheIdentity(t *testing.T) {
	e := newIdentityEnv(t)
	e.v.OIDCRole(t, "otel", "teams", `{"entity_name": {{identity.entity.name}}, "team": {{identity.entity.metadata.team}}}`, "1h")
	e.v.Write(t, "identity/entity/id/"+e.alice.EntityID, map[string]any{"metadata": map[string]any{"team": "payments"}})
	cfg := serverConfig(e.v.Addr, e.v.Read(t, "identity/oidc/role/teams").Data["client_id"].(string))
	srv := cfg.Server.Get()
	srv.Attributes = map[string]string{"vault.entity.metadata.team": "claim:team"}
	srv.Tenant = configoptional.Some(TenantConfig{Attribute: "vault.entity.metadata.team"})
	h := startExtension(t, cfg)

	forged := client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{
		TenantMetadataKey: {"checkout"}, "vault.tenant": {"checkout"},
	})})
	ctx, err := h.ext.(extensionauth.Server).Authenticate(forged, map[string][]string{
		"authorization": {"Bearer " + e.v.IdentityToken(t, e.alice.Token, "teams")},
	})
	require.NoError(t, err)
	info := client.FromContext(ctx)
	assert.Equal(t, []string{"payments"}, info.Metadata.Get(TenantMetadataKey))
	assert.Equal(t, "payments", info.Auth.GetAttribute(identity.Tenant))
	assert.Equal(t, []string{"checkout"}, info.Metadata.Get("vault.tenant"), "other keys are left alone")

	// bob has no team: no tenant, refused.
	_, err = h.ext.(extensionauth.Server).Authenticate(context.Background(), map[string][]string{
		"authorization": {"Bearer " + e.v.IdentityToken(t, e.bob.Token, "teams")},
	})
	require.ErrorIs(t, err, errUnauthenticated)
	assert.EqualValues(t, 1, h.refusals(t, "refused", reasonNoTenant))
}

// In token_lookup mode the tenant comes from the entity's metadata, read
// from Vault with the sender's entity: alice's team, whatever she sends.
func TestLookupNamesTheTenantFromEntityMetadata(t *testing.T) {
	e := newIdentityEnv(t)
	e.v.Write(t, "identity/entity/id/"+e.alice.EntityID, map[string]any{"metadata": map[string]any{"team": "payments"}})
	e.v.PutPolicy(t, "otel-gateway", gatewayPolicy)
	roleID, secretID := e.v.AppRole(t, "otel-gateway", map[string]any{"token_policies": "otel-gateway"})
	cfg := withAppRole(createDefaultConfig(), roleID, secretID)
	cfg.Vault.Address = e.v.Addr
	srv := cfg.Server.GetOrInsertDefault()
	srv.TokenLookup.GetOrInsertDefault()
	srv.Attributes = map[string]string{"vault.entity.metadata.team": "entity:metadata.team"}
	srv.Tenant = configoptional.Some(TenantConfig{Attribute: "vault.entity.metadata.team"})
	h := startExtension(t, cfg)
	h.waitStatus(t, componentstatus.StatusOK) // logged in

	forged := client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(map[string][]string{TenantMetadataKey: {"checkout"}})})
	ctx, err := h.ext.(extensionauth.Server).Authenticate(forged, map[string][]string{"authorization": {"Bearer " + e.alice.Token}})
	require.NoError(t, err)
	assert.Equal(t, []string{"payments"}, client.FromContext(ctx).Metadata.Get(TenantMetadataKey))

	_, err = h.ext.(extensionauth.Server).Authenticate(context.Background(), map[string][]string{"authorization": {"Bearer " + e.bob.Token}})
	require.ErrorIs(t, err, errUnauthenticated, "bob's entity has no team")
	assert.EqualValues(t, 1, h.refusals(t, "refused", reasonNoTenant))

	// Groups name a tenant only when there is one: bob in one group is
	// routed to it, alice in two is refused rather than sent to either.
	e.v.Write(t, "identity/group/name/payments", map[string]any{"member_entity_ids": []string{e.alice.EntityID, e.bob.EntityID}})
	e.v.Write(t, "identity/group/name/checkout", map[string]any{"member_entity_ids": []string{e.alice.EntityID}})
	e.v.PutPolicy(t, "otel-gateway", gatewayPolicy+`path "identity/group/id/*" { capabilities = ["read"] }`)
	srv.Attributes = map[string]string{"vault.entity.groups": "entity:groups"}
	srv.Tenant = configoptional.Some(TenantConfig{Attribute: "vault.entity.groups"})
	groups := startExtension(t, cfg)
	groups.waitStatus(t, componentstatus.StatusOK)
	ctx, err = groups.ext.(extensionauth.Server).Authenticate(context.Background(), map[string][]string{"authorization": {"Bearer " + e.bob.Token}})
	require.NoError(t, err)
	assert.Equal(t, []string{"payments"}, client.FromContext(ctx).Metadata.Get(TenantMetadataKey))
	_, err = groups.ext.(extensionauth.Server).Authenticate(context.Background(), map[string][]string{"authorization": {"Bearer " + e.alice.Token}})
	require.ErrorIs(t, err, errUnauthenticated, "alice is in two groups")
	assert.EqualValues(t, 1, groups.refusals(t, "refused", reasonNoTenant))
}

// A tenant without a token it may read is that tenant's wait: its exports
// get Unavailable, its failures are counted under its name and its gauge
// says 0, and the gateway stays healthy for every other tenant (the health
// status gates readiness for all of them). Vault itself unreachable is the
// gateway's fault and turns the status to RecoverableError.
func TestTenantWithoutATokenLeavesTheGatewayHealthy(t *testing.T) {
	v := vaulttest.Start(t)
	proxy := vaulttest.NewProxy(t, v.HostPort())
	v.PutKV2(t, "lightstep/teams/a", map[string]any{"access_token": "token-a"})
	cfg := tenantsConfig(t, v)
	cfg.Vault.Address = proxy.Addr
	h := startExtension(t, cfg)

	require.Eventually(t, func() bool { got, _ := h.sentFor(forTenant("a")); return got == "token-a" }, eventually, poll)
	_, err := h.sentFor(forTenant("c"))
	assert.Equal(t, codes.Unavailable, status.Code(err))
	require.Eventually(t, func() bool {
		n, _ := h.sumWhere(t, "otelcol_vaultauth_vault_request_failures", "activity=secret read", "tenant=c")
		return n > 0
	}, eventually, poll, "team c's failed reads are counted under its name")
	require.Eventually(t, func() bool {
		n, _ := h.sumWhere(t, "otelcol_vaultauth_vault_request_failures", "activity=secret read", "tenant=c")
		return n >= 3
	}, eventually, poll, "and retried")
	available, _ := h.sumWhere(t, "otelcol_vaultauth_credential_available", "tenant=c")
	assert.Zero(t, available)
	assert.Equal(t, componentstatus.StatusOK, h.host.LastStatus(), "one team's missing token does not make the gateway unhealthy")
	assert.NotContains(t, h.host.Statuses(), componentstatus.StatusRecoverableError)
	warned := h.logs.FilterLevelExact(zapcore.WarnLevel).FilterField(zap.String("tenant", "c")).Len()
	assert.Positive(t, warned, "a warning names the tenant")

	proxy.SetDown(true)
	h.waitStatus(t, componentstatus.StatusRecoverableError)
	proxy.SetDown(false)
	h.waitStatus(t, componentstatus.StatusOK)
	got, err := h.sentFor(forTenant("a"))
	require.NoError(t, err)
	assert.Equal(t, "token-a", got, "the last good value flowed throughout")
}

// A wrong config fails closed: a gateway whose policy reads no tenant's
// path sends nothing at all, and its status says so.
func TestNoTenantReadableIsTheGatewaysFault(t *testing.T) {
	v := vaulttest.Start(t)
	v.PutKV2(t, "lightstep/teams/a", map[string]any{"access_token": "token-a"})
	cfg := tenantsConfig(t, v)
	cfg.Client.Get().Secret.Get().Path = "secret/data/lightstep/other/{tenant}" // outside the policy: 403
	h := startExtension(t, cfg)

	_, err := h.sentFor(forTenant("a"))
	assert.Equal(t, codes.Unavailable, status.Code(err))
	h.waitStatus(t, componentstatus.StatusRecoverableError)
	require.NotEmpty(t, h.host.Errors())
	assert.Contains(t, h.host.Errors()[len(h.host.Errors())-1].Error(), "none of the 1 tenants seen has a credential")
}

// A tenant that sends nothing for idle_timeout is let go: its watcher stops,
// its gauges go, and its place under max_tenants is free for another; when it
// sends again, its token is read again.
func TestIdleTenantsAreLetGo(t *testing.T) {
	v := vaulttest.Start(t)
	for _, tenant := range []string{"a", "b", "c"} {
		v.PutKV2(t, "lightstep/teams/"+tenant, map[string]any{"access_token": "token-" + tenant})
	}
	cfg := tenantsConfig(t, v)
	*cfg.Client.Get().Tenants.Get() = TenantsConfig{MaxTenants: 2, IdleTimeout: time.Second, Park: defaultParkConfig()}
	h := startExtension(t, cfg)

	for _, tenant := range []string{"a", "b"} {
		require.Eventually(t, func() bool { got, _ := h.sentFor(forTenant(tenant)); return got == "token-"+tenant }, eventually, poll, tenant)
	}
	_, err := h.sentFor(forTenant("c"))
	require.ErrorContains(t, err, "max_tenants", "a third tenant while two are active")

	require.Eventually(t, func() bool {
		return h.logs.FilterMessage("stopped watching an idle tenant's secret").Len() == 2
	}, 5*time.Second, poll, "a and b sent nothing for idle_timeout")
	_, watched := h.sumWhere(t, "otelcol_vaultauth_credential_available", "tenant=a")
	assert.Empty(t, watched, "an idle tenant's gauge is gone")

	require.Eventually(t, func() bool { got, _ := h.sentFor(forTenant("c")); return got == "token-c" }, eventually, poll, "c takes a free place")
	require.Eventually(t, func() bool { got, _ := h.sentFor(forTenant("a")); return got == "token-a" }, eventually, poll, "a is read again")
}

// The default tenant stands in only for a tenant Vault says has no secret.
// Attack (finding 5 of issue 19): the gateway's own token is revoked, so
// every read answers 403; a tenant seen for the first time then must wait,
// never leave with the default tenant's token.
func TestDefaultTenantNeverStandsInForAForbiddenRead(t *testing.T) {
	v := vaulttest.Start(t)
	v.PutKV2(t, "lightstep/teams/shared", map[string]any{"access_token": "token-shared"})
	v.PutKV2(t, "lightstep/teams/a", map[string]any{"access_token": "token-a"})
	cfg := tenantsConfig(t, v)
	cfg.Client.Get().Tenants.Get().Default = "shared"
	h := startExtension(t, cfg)
	require.Eventually(t, func() bool { got, _ := h.sentFor(forTenant("shared")); return got == "token-shared" }, eventually, poll)

	v.Write(t, "auth/token/revoke", map[string]any{"token": string(auth(cfg).Token)})
	sent := 0                               // exports that carried a token (which one is never printed)
	deadline := time.Now().Add(time.Second) // several reads of team a's path, each refused
	for time.Now().Before(deadline) {
		_, err := h.sentFor(forTenant("a"))
		if err == nil {
			sent++
			continue
		}
		require.Equal(t, codes.Unavailable, status.Code(err), "team a waits, retryable")
		time.Sleep(20 * time.Millisecond)
	}
	assert.Zero(t, sent, "team a's exports carried a token while the gateway could not read team a's secret")
	require.Eventually(t, func() bool { return h.failures(t) > 0 }, eventually, poll, "the forbidden read was not counted")
}
