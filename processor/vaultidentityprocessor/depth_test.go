package vaultidentityprocessor

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// nest fills v with n levels of shape around a string: "array" ([[...]]),
// "map" ({k: {k: ...}}), or "mixed" (arrays and maps in turn).
func nest(v pcommon.Value, n int, shape string) {
	for i := 0; i < n; i++ {
		if shape == "array" || (shape == "mixed" && i%2 == 0) {
			v = v.SetEmptySlice().AppendEmpty()
		} else {
			v = v.SetEmptyMap().PutEmpty("k")
		}
	}
	v.SetStr("deep")
}

// placed is one place where a sender's value can sit, in each signal.
type placed struct {
	name   string
	signal string
	build  func(n int, shape string) any // ptrace.Traces, plog.Logs or pmetric.Metrics
}

func places() []placed {
	traces := func(set func(ptrace.Span, ptrace.ResourceSpans) pcommon.Value) func(int, string) any {
		return func(n int, shape string) any {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			span.SetName("s")
			nest(set(span, rs), n, shape)
			return td
		}
	}
	return []placed{
		{"resource attribute", "traces", traces(func(_ ptrace.Span, rs ptrace.ResourceSpans) pcommon.Value {
			return rs.Resource().Attributes().PutEmpty("a")
		})},
		{"span attribute", "traces", traces(func(s ptrace.Span, _ ptrace.ResourceSpans) pcommon.Value { return s.Attributes().PutEmpty("a") })},
		{"event attribute", "traces", traces(func(s ptrace.Span, _ ptrace.ResourceSpans) pcommon.Value {
			return s.Events().AppendEmpty().Attributes().PutEmpty("a")
		})},
		{"link attribute", "traces", traces(func(s ptrace.Span, _ ptrace.ResourceSpans) pcommon.Value {
			return s.Links().AppendEmpty().Attributes().PutEmpty("a")
		})},
		{"log body", "logs", func(n int, shape string) any {
			ld := plog.NewLogs()
			nest(ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body(), n, shape)
			return ld
		}},
		{"log attribute", "logs", func(n int, shape string) any {
			ld := plog.NewLogs()
			nest(ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Attributes().PutEmpty("a"), n, shape)
			return ld
		}},
		{"data point attribute", "metrics", func(n int, shape string) any {
			md := pmetric.NewMetrics()
			m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("m")
			nest(m.SetEmptyGauge().DataPoints().AppendEmpty().Attributes().PutEmpty("a"), n, shape)
			return md
		}},
	}
}

// onTheWire is data as a receiver decodes it: OTLP JSON (no depth limit),
// and whether OTLP protobuf decoding of the same data succeeds.
func onTheWire(t *testing.T, data any) (fromJSON any, protobufOK bool) {
	t.Helper()
	switch d := data.(type) {
	case ptrace.Traces:
		j, err := (&ptrace.JSONMarshaler{}).MarshalTraces(d)
		require.NoError(t, err)
		fromJSON, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(j)
		require.NoError(t, err)
		p, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(d)
		require.NoError(t, err)
		_, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(p)
		return fromJSON, err == nil
	case plog.Logs:
		j, err := (&plog.JSONMarshaler{}).MarshalLogs(d)
		require.NoError(t, err)
		fromJSON, err = (&plog.JSONUnmarshaler{}).UnmarshalLogs(j)
		require.NoError(t, err)
		p, err := (&plog.ProtoMarshaler{}).MarshalLogs(d)
		require.NoError(t, err)
		_, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(p)
		return fromJSON, err == nil
	case pmetric.Metrics:
		j, err := (&pmetric.JSONMarshaler{}).MarshalMetrics(d)
		require.NoError(t, err)
		fromJSON, err = (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(j)
		require.NoError(t, err)
		p, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(d)
		require.NoError(t, err)
		_, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(p)
		return fromJSON, err == nil
	}
	t.Fatalf("unknown data %T", data)
	return nil, false
}

// The processor refuses exactly what the OTLP protobuf decoder refuses: for
// every place a value can sit and every shape of nesting, the deepest value
// the decoder takes passes, one level more is refused for good, with the
// next consumer given nothing. The data reaches the processor as an agent's
// receiver decodes it from OTLP JSON, which takes any depth.
func TestDepthLimitIsTheDecoders(t *testing.T) {
	for _, m := range modes() {
		p := newProcessors(t, configWith(LevelResource, m), m.host)
		for _, place := range places() {
			for _, shape := range []string{"array", "map", "mixed"} {
				deepest := 0
				for deepest < 200 {
					if _, ok := onTheWire(t, place.build(deepest+1, shape)); !ok {
						break
					}
					deepest++
				}
				require.Less(t, deepest, 200, "%s, %s: the decoder took any depth", place.name, shape)
				if m.name == "from auth" {
					t.Logf("%s, %s: the protobuf decoder takes %d levels", place.name, shape, deepest)
				}
				for _, n := range []int{deepest, deepest + 1} {
					name := fmt.Sprintf("%s/%s/%s, %d levels", m.name, place.name, shape, n)
					data, _ := onTheWire(t, place.build(n, shape))
					err := consume(t, p, m, data)
					if n == deepest {
						assert.NoError(t, err, "%s: the decoder takes it", name)
						continue
					}
					require.Error(t, err, "%s: the decoder refuses it", name)
					assert.True(t, consumererror.IsPermanent(err), "%s: %v", name, err)
				}
			}
		}
		assert.Equal(t, len(places())*3, sinkCount(p), "%s: one batch per accepted case, none refused", m.name)
	}
}

func consume(t *testing.T, p *processors, m mode, data any) error {
	t.Helper()
	switch d := data.(type) {
	case ptrace.Traces:
		return p.traces.ConsumeTraces(m.ctx, d)
	case plog.Logs:
		return p.logs.ConsumeLogs(m.ctx, d)
	case pmetric.Metrics:
		return p.metrics.ConsumeMetrics(m.ctx, d)
	}
	t.Fatalf("unknown data %T", data)
	return nil
}

func sinkCount(p *processors) int {
	return len(p.tsink.AllTraces()) + len(p.lsink.AllLogs()) + len(p.msink.AllMetrics())
}
