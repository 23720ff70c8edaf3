package vaultidentityprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor/internal/metadata"
)

var alice = &identity.Identity{EntityID: "ent-alice", EntityName: "alice", Namespace: "root", Policies: "default,otel"}

func withIdentity(id *identity.Identity) context.Context {
	return client.NewContext(context.Background(), client.Info{Auth: identity.AuthData{Identity: id}})
}

// forge puts a forged vault.* attribute, and an ordinary one, everywhere a
// sender can put attributes in a span.
func forgedTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	for range 2 {
		rs := td.ResourceSpans().AppendEmpty()
		forge(rs.Resource().Attributes())
		ss := rs.ScopeSpans().AppendEmpty()
		forge(ss.Scope().Attributes())
		for range 3 {
			span := ss.Spans().AppendEmpty()
			forge(span.Attributes())
			forge(span.Events().AppendEmpty().Attributes())
			forge(span.Links().AppendEmpty().Attributes())
		}
	}
	return td
}

func forge(m pcommon.Map) {
	m.PutStr("vault.entity.id", "forged")
	m.PutStr("vault.anything", "forged")
	m.PutStr("http.method", "GET")
}

// collect gathers every attribute map of a trace by place.
func collectTraces(td ptrace.Traces) map[string][]pcommon.Map {
	out := map[string][]pcommon.Map{}
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		out["resource"] = append(out["resource"], rs.Resource().Attributes())
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			out["scope"] = append(out["scope"], ss.Scope().Attributes())
			for k := 0; k < ss.Spans().Len(); k++ {
				span := ss.Spans().At(k)
				out["span"] = append(out["span"], span.Attributes())
				out["event"] = append(out["event"], span.Events().At(0).Attributes())
				out["link"] = append(out["link"], span.Links().At(0).Attributes())
			}
		}
	}
	return out
}

// vaultAttrs returns the vault.* attributes of m.
func vaultAttrs(m pcommon.Map) map[string]string {
	out := map[string]string{}
	for k, v := range m.All() {
		if len(k) > 6 && k[:6] == "vault." {
			out[k] = v.Str()
		}
	}
	return out
}

func newTraces(t *testing.T, cfg *Config, next *consumertest.TracesSink) (processor.Traces, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	set := processortest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	p, err := NewFactory().CreateTraces(context.Background(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p, logs
}

func TestStampTracesReplacesForgedIdentity(t *testing.T) {
	stamped := map[string]string{"vault.entity.id": "ent-alice", "vault.entity.name": "alice", "vault.namespace": "root"}
	for _, level := range []string{LevelResource, LevelSpan} {
		t.Run(level, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Level = level
			sink := &consumertest.TracesSink{}
			p, _ := newTraces(t, cfg, sink)
			require.NoError(t, p.ConsumeTraces(withIdentity(alice), forgedTraces()))

			places := collectTraces(sink.AllTraces()[0])
			for place, maps := range places {
				for _, m := range maps {
					want := map[string]string{}
					if place == level {
						want = stamped
					}
					assert.Equal(t, want, vaultAttrs(m), "%s attributes at level %s", place, level)
					v, ok := m.Get("http.method")
					assert.True(t, ok && v.Str() == "GET", "%s: other attributes must stay", place)
				}
			}
		})
	}
}

func TestUnauthenticatedDataIsScrubbed(t *testing.T) {
	sink := &consumertest.TracesSink{}
	p, _ := newTraces(t, createDefaultConfig().(*Config), sink)
	require.NoError(t, p.ConsumeTraces(context.Background(), forgedTraces()))
	for place, maps := range collectTraces(sink.AllTraces()[0]) {
		for _, m := range maps {
			assert.Empty(t, vaultAttrs(m), "forged identity survived at %s level", place)
		}
	}
}

func TestOnMissing(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.OnMissing = OnMissingDrop
	sink := &consumertest.TracesSink{}
	p, _ := newTraces(t, cfg, sink)
	require.NoError(t, p.ConsumeTraces(context.Background(), forgedTraces()))
	assert.Zero(t, sink.SpanCount(), "on_missing: drop forwarded data")

	cfg = createDefaultConfig().(*Config)
	cfg.OnMissing = OnMissingReject
	sink = &consumertest.TracesSink{}
	p, _ = newTraces(t, cfg, sink)
	err := p.ConsumeTraces(context.Background(), forgedTraces())
	require.Error(t, err)
	assert.True(t, consumererror.IsPermanent(err), "the sender must not retry data it cannot authenticate")
	assert.Zero(t, sink.SpanCount())
	require.NoError(t, p.ConsumeTraces(withIdentity(alice), forgedTraces()))
	assert.Equal(t, 6, sink.SpanCount())
}

// No auth context on consecutive requests (processor after batch, or a
// receiver without an authenticator): one warning, not one per request.
func TestWarnsOnceWithoutAuthContext(t *testing.T) {
	p, logs := newTraces(t, createDefaultConfig().(*Config), &consumertest.TracesSink{})
	for range 50 {
		require.NoError(t, p.ConsumeTraces(context.Background(), forgedTraces()))
	}
	assert.Equal(t, 1, logs.FilterLevelExact(zapcore.WarnLevel).Len())
	assert.Contains(t, logs.FilterLevelExact(zapcore.WarnLevel).All()[0].Message, "before the batch processor")
}

// Another authenticator's auth data (e.g. contrib's, with the same string
// attributes) is read through GetAttribute.
func TestForeignAuthData(t *testing.T) {
	sink := &consumertest.TracesSink{}
	p, _ := newTraces(t, createDefaultConfig().(*Config), sink)
	ctx := client.NewContext(context.Background(), client.Info{Auth: mapAuth{"vault.entity.id": "ent-bob", "vault.namespace": "team-a"}})
	require.NoError(t, p.ConsumeTraces(ctx, forgedTraces()))
	res := sink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()
	assert.Equal(t, map[string]string{"vault.entity.id": "ent-bob", "vault.namespace": "team-a"}, vaultAttrs(res))
}

type mapAuth map[string]string

func (m mapAuth) GetAttribute(k string) any {
	if v, ok := m[k]; ok {
		return v
	}
	return nil
}
func (m mapAuth) GetAttributeNames() []string { return nil }

func TestStampLogs(t *testing.T) {
	for _, level := range []string{LevelResource, LevelSpan} {
		cfg := createDefaultConfig().(*Config)
		cfg.Level = level
		cfg.Attributes = []string{identity.EntityID, identity.Policies}
		sink := &consumertest.LogsSink{}
		p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		forge(rl.Resource().Attributes())
		sl := rl.ScopeLogs().AppendEmpty()
		forge(sl.Scope().Attributes())
		forge(sl.LogRecords().AppendEmpty().Attributes())
		require.NoError(t, p.ConsumeLogs(withIdentity(alice), ld))

		out := sink.AllLogs()[0].ResourceLogs().At(0)
		want := map[string]string{"vault.entity.id": "ent-alice", "vault.policies": "default,otel"}
		res, rec := map[string]string{}, map[string]string{}
		if level == LevelResource {
			res = want
		} else {
			rec = want
		}
		assert.Equal(t, res, vaultAttrs(out.Resource().Attributes()), level)
		assert.Empty(t, vaultAttrs(out.ScopeLogs().At(0).Scope().Attributes()), level)
		assert.Equal(t, rec, vaultAttrs(out.ScopeLogs().At(0).LogRecords().At(0).Attributes()), level)
	}
}

func TestStampMetrics(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Level = LevelSpan
	sink := &consumertest.MetricsSink{}
	p, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	forge(rm.Resource().Attributes())
	sm := rm.ScopeMetrics().AppendEmpty()
	forge(sm.Scope().Attributes())
	var points []pcommon.Map
	g := sm.Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty()
	s := sm.Metrics().AppendEmpty().SetEmptySum().DataPoints().AppendEmpty()
	h := sm.Metrics().AppendEmpty().SetEmptyHistogram().DataPoints().AppendEmpty()
	e := sm.Metrics().AppendEmpty().SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	q := sm.Metrics().AppendEmpty().SetEmptySummary().DataPoints().AppendEmpty()
	points = append(points, g.Attributes(), s.Attributes(), h.Attributes(), e.Attributes(), q.Attributes())
	exemplar := g.Exemplars().AppendEmpty().FilteredAttributes()
	forge(exemplar)
	for _, m := range points {
		forge(m)
	}
	require.NoError(t, p.ConsumeMetrics(withIdentity(alice), md))

	stamped := map[string]string{"vault.entity.id": "ent-alice", "vault.entity.name": "alice", "vault.namespace": "root"}
	for i, m := range points {
		assert.Equal(t, stamped, vaultAttrs(m), "data point %d", i)
	}
	assert.Empty(t, vaultAttrs(rm.Resource().Attributes()))
	assert.Empty(t, vaultAttrs(sm.Scope().Attributes()))
	assert.Empty(t, vaultAttrs(exemplar))
}
