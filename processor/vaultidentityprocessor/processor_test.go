package vaultidentityprocessor

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
	"github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor/internal/metadata"
)

var alice = identity.New("ent-alice", "root",
	identity.Attribute{Key: identity.EntityName, Value: "alice"},
	identity.Attribute{Key: identity.Policies, Value: "default,otel"},
	identity.Attribute{Key: "vault.entity.metadata.team", Value: "payments"},
)

// aliceStamp is what the default attributes stamp for alice.
var aliceStamp = []identity.Attribute{
	{Key: "vault.entity.id", Value: "ent-alice"}, {Key: "vault.entity.name", Value: "alice"}, {Key: "vault.namespace", Value: "root"},
}

func withIdentity(id *identity.Identity) context.Context {
	return client.NewContext(context.Background(), client.Info{Auth: identity.AuthData{Identity: id}})
}

// selfProvider stands in for a vaultauth extension's own identity (agent
// mode); the real extension is used in integration_test.go.
type selfProvider struct {
	component.StartFunc
	component.ShutdownFunc
	id       atomic.Pointer[identity.Identity]
	required []string
}

func (p *selfProvider) RequireAttributes(names []string) error { p.required = names; return nil }

func (p *selfProvider) VaultIdentity() (*identity.Identity, bool) {
	id := p.id.Load()
	return id, id != nil
}

var selfID = component.MustNewIDWithName("vaultauth", "self")

// mode is where the identity comes from in a test: the request's auth
// context, or this collector's own (the provider holds alice).
type mode struct {
	name string
	ctx  context.Context
	host component.Host
	set  func(*Config)
}

func modes() []mode {
	p := &selfProvider{}
	p.id.Store(alice)
	return []mode{
		{name: "from auth", ctx: withIdentity(alice), host: componenttest.NewNopHost(), set: func(*Config) {}},
		{
			name: "from extension", ctx: context.Background(),
			host: pipelinetest.NewHost(map[component.ID]component.Component{selfID: p}),
			set:  func(c *Config) { c.From, c.Extension = FromExtension, selfID },
		},
	}
}

// processors are the three signals' processors made from one config.
type processors struct {
	traces  processor.Traces
	logs    processor.Logs
	metrics processor.Metrics
	tsink   *consumertest.TracesSink
	lsink   *consumertest.LogsSink
	msink   *consumertest.MetricsSink
	logged  *observer.ObservedLogs
}

func newProcessors(t testing.TB, cfg *Config, host component.Host) *processors {
	t.Helper()
	require.NoError(t, cfg.Validate())
	core, logged := observer.New(zapcore.DebugLevel)
	set := processortest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	p := &processors{tsink: &consumertest.TracesSink{}, lsink: &consumertest.LogsSink{}, msink: &consumertest.MetricsSink{}, logged: logged}
	var err error
	f := NewFactory()
	p.traces, err = f.CreateTraces(context.Background(), set, cfg, p.tsink)
	require.NoError(t, err)
	p.logs, err = f.CreateLogs(context.Background(), set, cfg, p.lsink)
	require.NoError(t, err)
	p.metrics, err = f.CreateMetrics(context.Background(), set, cfg, p.msink)
	require.NoError(t, err)
	for _, c := range []component.Component{p.traces, p.logs, p.metrics} {
		require.NoError(t, c.Start(context.Background(), host))
		t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	}
	return p
}

func configWith(level string, m mode) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Level = level
	m.set(cfg)
	return cfg
}

func stampPlace(level string) place {
	if level == LevelResource {
		return atResource
	}
	return atItem
}

// A sender writes vault.* keys twice (the verified value and a forged one),
// in other letter cases, bare, and nested in map-valued attributes, in every
// place OTLP has attributes, over OTLP/JSON. What leaves the processor
// holds each stamped key exactly once, with the verified value, and no
// other identity key anywhere: traces, logs and metrics, both levels, both
// modes.
func TestForgedIdentityKeysAreRemovedEverywhere(t *testing.T) {
	for _, m := range modes() {
		for _, level := range []string{LevelResource, LevelSpan} {
			t.Run(m.name+"/"+level, func(t *testing.T) {
				p := newProcessors(t, configWith(level, m), m.host)
				check := &checker{want: aliceStamp, stampAt: stampPlace(level)}

				require.NoError(t, p.traces.ConsumeTraces(m.ctx, decodeForgedTraces(t, "ent-alice")))
				check.traces(p.tsink.AllTraces()[0])
				require.NoError(t, p.logs.ConsumeLogs(m.ctx, decodeForgedLogs(t, "ent-alice")))
				check.logs(p.lsink.AllLogs()[0])
				require.NoError(t, p.metrics.ConsumeMetrics(m.ctx, decodeForgedMetrics(t, "ent-alice")))
				check.metrics(p.msink.AllMetrics()[0])

				assert.Empty(t, check.violations)
				// 3 resources (traces) + 2 + 2, or 4 spans + 3 log records + 7 data points.
				assert.Equal(t, map[string]int{LevelResource: 7, LevelSpan: 14}[level], check.stamped)
				// Attributes of the sender's own are untouched, nested ones too.
				res := p.tsink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()
				assert.Equal(t, []string{"GET"}, values(res, "http.method"))
				app, _ := res.Get("app")
				assert.Equal(t, []string{"me"}, values(app.Map(), "keep"))
			})
		}
	}
}

// Data an agent already stamped with the same identity passes through
// unchanged: same keys, same order (the read-only pass found nothing to do).
func TestRestampingLeavesCleanDataAlone(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			p := newProcessors(t, configWith(LevelResource, m), m.host)
			td := ptrace.NewTraces()
			res := td.ResourceSpans().AppendEmpty().Resource().Attributes()
			res.PutStr("service.name", "checkout")
			for _, a := range aliceStamp {
				res.PutStr(a.Key, a.Value)
			}
			res.PutStr("host.name", "n1")
			var before []string
			for k := range res.All() {
				before = append(before, k)
			}
			require.NoError(t, p.traces.ConsumeTraces(m.ctx, td))
			var after []string
			for k := range p.tsink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes().All() {
				after = append(after, k)
			}
			assert.Equal(t, before, after)
		})
	}
}

// Attributes beyond the default three, filled by the extension's rules,
// are stamped when configured, once each.
func TestStampsConfiguredAttributes(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Attributes = []string{identity.EntityID, "vault.entity.metadata.team", identity.Policies, "vault.entity.groups"}
	p := newProcessors(t, cfg, componenttest.NewNopHost())
	require.NoError(t, p.traces.ConsumeTraces(withIdentity(alice), decodeForgedTraces(t, "x")))
	check := &checker{stampAt: atResource, want: []identity.Attribute{
		{Key: identity.EntityID, Value: "ent-alice"}, {Key: "vault.entity.metadata.team", Value: "payments"},
		{Key: identity.Policies, Value: "default,otel"}, // alice has no groups: not stamped
	}}
	check.traces(p.tsink.AllTraces()[0])
	assert.Empty(t, check.violations)
}

// on_missing: pass forwards data without an identity scrubbed and unstamped.
func TestOnMissingPassScrubs(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.OnMissing = OnMissingPass
	p := newProcessors(t, cfg, componenttest.NewNopHost())
	require.NoError(t, p.traces.ConsumeTraces(context.Background(), decodeForgedTraces(t, "ent-alice")))
	check := &checker{stampAt: atResource}
	check.traces(p.tsink.AllTraces()[0])
	assert.Empty(t, check.violations)
}

// The default fails closed: a request without a verified identity is
// refused permanently (gateway), and an agent whose own identity is not
// known yet refuses with a retryable error, so its data waits.
func TestOnMissing(t *testing.T) {
	t.Run("from auth: reject by default, permanent", func(t *testing.T) {
		p := newProcessors(t, createDefaultConfig().(*Config), componenttest.NewNopHost())
		err := p.traces.ConsumeTraces(context.Background(), decodeForgedTraces(t, "x"))
		require.Error(t, err)
		assert.True(t, consumererror.IsPermanent(err), "the sender must not retry data it cannot authenticate")
		assert.Zero(t, p.tsink.SpanCount())
		require.NoError(t, p.traces.ConsumeTraces(withIdentity(alice), decodeForgedTraces(t, "x")))
		assert.Equal(t, 4, p.tsink.SpanCount())
	})
	t.Run("from extension: reject by default, retryable until the identity is known", func(t *testing.T) {
		provider := &selfProvider{}
		cfg := createDefaultConfig().(*Config)
		cfg.From, cfg.Extension = FromExtension, selfID
		p := newProcessors(t, cfg, pipelinetest.NewHost(map[component.ID]component.Component{selfID: provider}))
		assert.Equal(t, cfg.Attributes, provider.required, "the processor tells the extension what it stamps")
		err := p.logs.ConsumeLogs(context.Background(), decodeForgedLogs(t, "x"))
		require.Error(t, err)
		assert.False(t, consumererror.IsPermanent(err), "the data must wait for the login, not be dropped")
		provider.id.Store(alice)
		require.NoError(t, p.logs.ConsumeLogs(context.Background(), decodeForgedLogs(t, "x")))
		assert.Equal(t, 3, p.lsink.LogRecordCount())
	})
	t.Run("drop", func(t *testing.T) {
		cfg := createDefaultConfig().(*Config)
		cfg.OnMissing = OnMissingDrop
		p := newProcessors(t, cfg, componenttest.NewNopHost())
		require.NoError(t, p.traces.ConsumeTraces(context.Background(), decodeForgedTraces(t, "x")))
		assert.Zero(t, p.tsink.SpanCount())
	})
}

// No auth context on consecutive requests (processor after batch, or a
// receiver without an authenticator): one warning, not one per request.
func TestWarnsOnceWithoutAuthContext(t *testing.T) {
	p := newProcessors(t, createDefaultConfig().(*Config), componenttest.NewNopHost())
	for range 50 {
		require.Error(t, p.traces.ConsumeTraces(context.Background(), ptrace.NewTraces()))
	}
	warnings := p.logged.FilterLevelExact(zapcore.WarnLevel)
	require.Equal(t, 1, warnings.Len())
	assert.Contains(t, warnings.All()[0].Message, "before the batch processor")
}

// Another authenticator's auth data (contrib's, with the same string
// attributes) is read through GetAttribute.
func TestForeignAuthData(t *testing.T) {
	p := newProcessors(t, createDefaultConfig().(*Config), componenttest.NewNopHost())
	ctx := client.NewContext(context.Background(), client.Info{Auth: mapAuth{"vault.entity.id": "ent-bob", "vault.namespace": "team-a"}})
	require.NoError(t, p.traces.ConsumeTraces(ctx, decodeForgedTraces(t, "ent-bob")))
	check := &checker{stampAt: atResource, want: []identity.Attribute{{Key: identity.EntityID, Value: "ent-bob"}, {Key: identity.Namespace, Value: "team-a"}}}
	check.traces(p.tsink.AllTraces()[0])
	assert.Empty(t, check.violations)
}

type mapAuth map[string]string

func (m mapAuth) GetAttribute(k string) any {
	if v, ok := m[k]; ok {
		return v
	}
	return nil
}
func (m mapAuth) GetAttributeNames() []string { return nil }

// Empty data and metrics without data points pass.
func TestEmptyData(t *testing.T) {
	p := newProcessors(t, createDefaultConfig().(*Config), componenttest.NewNopHost())
	require.NoError(t, p.traces.ConsumeTraces(withIdentity(alice), ptrace.NewTraces()))
	require.NoError(t, p.logs.ConsumeLogs(withIdentity(alice), plog.NewLogs()))
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetName("empty")
	require.NoError(t, p.metrics.ConsumeMetrics(withIdentity(alice), md))
	check := &checker{want: aliceStamp, stampAt: atResource}
	check.metrics(p.msink.AllMetrics()[0])
	assert.Empty(t, check.violations)
}
