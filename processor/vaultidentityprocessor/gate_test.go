package vaultidentityprocessor

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor/internal/metadata"
)

// tenantGate stands in for a vaultauth client with tenants (the real one,
// with Vault and a built gateway, is in e2e/tenants_test.go).
type tenantGate struct {
	component.StartFunc
	component.ShutdownFunc
	ready, noTenant atomic.Bool
	asked           atomic.Int64
}

func (g *tenantGate) CredentialReady(context.Context) error {
	g.asked.Add(1)
	switch {
	case g.noTenant.Load():
		return consumererror.NewPermanent(status.Error(codes.PermissionDenied, `vaultauth/lightstep: the export names no tenant (client metadata "vault:tenant")`))
	case g.ready.Load():
		return nil
	}
	return status.Error(codes.Unavailable, `vaultauth/lightstep: no credential for tenant "team-c" yet (secret/data/lightstep/teams/team-c)`)
}

var lightstepID = component.MustNewIDWithName("vaultauth", "lightstep")

// With tenant_credentials, a request whose tenant has no export credential
// yet is refused with a retryable error that says nothing of tenants or
// paths, nothing goes on, and the gateway logs why; once the credential is
// ready, the same request is stamped and forwarded. Requests without an
// identity never reach the gate.
func TestTenantCredentialsHoldAtTheDoor(t *testing.T) {
	gate := &tenantGate{}
	cfg := createDefaultConfig().(*Config)
	cfg.TenantCredentials = lightstepID
	p := newProcessors(t, cfg, pipelinetest.NewHost(map[component.ID]component.Component{lightstepID: gate}))

	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("op")
	err := p.traces.ConsumeTraces(withIdentity(alice), td)
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "retryable: the sender keeps the data")
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.NotContains(t, err.Error(), "team-c")
	assert.NotContains(t, err.Error(), "secret/")
	assert.Zero(t, p.tsink.SpanCount(), "held data went on")
	held := p.logged.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("holding requests")
	require.Equal(t, 1, held.Len())
	assert.Contains(t, held.All()[0].ContextMap()["error"], "team-c", "the gateway's log says which tenant")

	gate.ready.Store(true)
	require.NoError(t, p.traces.ConsumeTraces(withIdentity(alice), td))
	assert.Equal(t, 1, p.tsink.SpanCount())

	// A request that names no tenant (the receiver's authenticator has no
	// tenant block) can never be exported: refused for good, not held.
	gate.noTenant.Store(true)
	err = p.traces.ConsumeTraces(withIdentity(alice), td)
	assert.True(t, consumererror.IsPermanent(err), "retrying cannot give it a tenant")
	assert.NotContains(t, err.Error(), "vault:tenant")
	gate.noTenant.Store(false)

	asked := gate.asked.Load()
	err = p.traces.ConsumeTraces(context.Background(), td)
	assert.True(t, consumererror.IsPermanent(err), "no identity: refused as before")
	assert.Equal(t, asked, gate.asked.Load(), "the gate is not asked for data without an identity")
}

// tenant_credentials naming no extension, or one that sends no credential,
// stops the collector at start.
func TestTenantCredentialsNeedsAClient(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.TenantCredentials = lightstepID
	f := NewFactory()
	proc, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = proc.Start(context.Background(), pipelinetest.NewHost(nil))
	assert.ErrorContains(t, err, `tenant_credentials: extension "vaultauth/lightstep" not found`)
	err = proc.Start(context.Background(), pipelinetest.NewHost(map[component.ID]component.Component{lightstepID: &selfProvider{}}))
	assert.ErrorContains(t, err, `tenant_credentials: extension "vaultauth/lightstep" sends no credential`)
}
