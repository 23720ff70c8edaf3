package vaultidentityprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

// One tenant sending far over its limit passes its limit over time, never
// more; a tenant with its own limit and one exempt pass what they send;
// a request larger than the bucket still passes (in debt), never refused
// for good.
func TestTenantLimits(t *testing.T) {
	clock := time.Unix(0, 0)
	l := newTenantLimiter(TenantLimitsConfig{
		TenantLimit: TenantLimit{ItemsPerSecond: 3000},
		Tenants:     map[string]TenantLimit{"team-a": {ItemsPerSecond: 10000}, "team-b": {}},
	})
	l.now = func() time.Time { return clock }
	passed := map[string]int{}
	const request = 100
	// 10 s in steps of 5 ms, a request of 100 items every `every` steps:
	// team c 20,000 items/s, team a 5,000, team b 20,000.
	every := map[string]int{"team-c": 1, "team-a": 4, "team-b": 1}
	const steps = 2000
	for step := range steps {
		clock = time.Unix(0, 0).Add(time.Duration(step) * 5 * time.Millisecond)
		for tenant, n := range every {
			if step%n == 0 && l.admit(tenant, request) {
				passed[tenant] += request
			}
		}
	}
	// 10 s at 3,000/s, plus the first second's bucket.
	assert.InDelta(t, 33000, passed["team-c"], 200, "team c over its limit")
	assert.Equal(t, steps/4*request, passed["team-a"], "team a under its own limit")
	assert.Equal(t, steps*request, passed["team-b"], "team b exempt")

	big := newTenantLimiter(TenantLimitsConfig{TenantLimit: TenantLimit{ItemsPerSecond: 1000}})
	big.now = func() time.Time { return clock }
	assert.True(t, big.admit("x", 8192), "a batch larger than the bucket passes when it is full")
	assert.False(t, big.admit("x", 1), "and leaves it in debt")
	clock = clock.Add(8192 * time.Millisecond)
	assert.True(t, big.admit("x", 1), "until the debt is paid")
}

// Buckets of senders that went quiet are forgotten; one still in debt is
// kept (forgetting it would forgive the debt).
func TestTenantLimitsForgetQuietSenders(t *testing.T) {
	clock := time.Unix(0, 0)
	l := newTenantLimiter(TenantLimitsConfig{TenantLimit: TenantLimit{ItemsPerSecond: 10}})
	l.now = func() time.Time { return clock }
	for i := range 1000 {
		l.admit(string(rune('a'+i%26))+string(rune(i)), 1)
	}
	l.admit("indebted", 10000)
	clock = clock.Add(2 * sweepEvery)
	l.admit("new", 1)
	assert.Len(t, l.buckets, 2)
	assert.False(t, l.admit("indebted", 1), "its debt is still owed")
}

// Through the processor: a tenant over its limit is refused with a
// retryable error that does not name it, nothing of the request goes on,
// and the gateway's log names the tenant; another tenant still passes.
func TestTenantLimitsHoldAtTheDoor(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Attributes = append(cfg.Attributes, identity.Tenant)
	cfg.TenantLimits.ItemsPerSecond = 150
	p := newProcessors(t, cfg, componenttest.NewNopHost())
	of := func(tenant string) context.Context {
		return withIdentity(identity.New("ent-"+tenant, "root", identity.Attribute{Key: identity.Tenant, Value: tenant}))
	}
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for range 100 {
		spans.AppendEmpty().SetName("op")
	}
	require.NoError(t, p.traces.ConsumeTraces(of("team-c"), td))
	err := p.traces.ConsumeTraces(of("team-c"), td)
	require.Error(t, err)
	assert.False(t, consumererror.IsPermanent(err), "retryable: the sender keeps the data")
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.NotContains(t, err.Error(), "team-c")
	assert.Equal(t, 100, p.tsink.SpanCount(), "only the request within the limit went on")
	warned := p.logged.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("over its rate limit")
	require.Equal(t, 1, warned.Len())
	assert.Equal(t, "team-c", warned.All()[0].ContextMap()["tenant"])

	require.NoError(t, p.traces.ConsumeTraces(of("team-a"), td), "another tenant has its own limit")
	assert.Equal(t, 200, p.tsink.SpanCount())
}
