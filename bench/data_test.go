package bench

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
)

const (
	resources    = 100
	perResource  = 100
	itemsPerCall = resources * perResource
)

// authContext is a request's context after vaultauth verified it: what both
// our processor and contrib's from_context actions read.
func authContext() context.Context { return authContextWith() }

// authContextWith is authContext whose identity also has extra.
func authContextWith(extra ...identity.Attribute) context.Context {
	return client.NewContext(context.Background(), client.Info{Auth: identity.AuthData{Identity: identity.New(
		"3f2d1c0b-8a9e-4d7f-b6c5-1e2f3a4b5c6d", "root", append([]identity.Attribute{{Key: identity.EntityName, Value: "payments"}}, extra...)...,
	)}})
}

func resourceAttrs(m pcommon.Map, i int) {
	m.PutStr("service.name", fmt.Sprintf("service-%d", i%10))
	m.PutStr("service.version", "1.4.2")
	m.PutStr("host.name", fmt.Sprintf("node-%d.cluster.local", i))
	m.PutStr("k8s.namespace.name", "shop")
	m.PutStr("k8s.pod.name", fmt.Sprintf("payments-7d9f8c6b5-%05d", i))
	m.PutStr("telemetry.sdk.language", "go")
	m.PutStr("telemetry.sdk.version", "1.38.0")
}

func itemAttrs(m pcommon.Map, j int) {
	m.PutStr("http.request.method", "POST")
	m.PutStr("http.route", "/api/v1/orders/{id}")
	m.PutInt("http.response.status_code", 200)
	m.PutStr("server.address", "orders.shop.svc")
	m.PutInt("server.port", 8080)
	m.PutStr("user_agent.original", "Go-http-client/1.1")
	m.PutInt("messaging.batch.index", int64(j))
}

// traces is 100 resources x 100 spans with realistic attributes.
func traces() ptrace.Traces {
	td := ptrace.NewTraces()
	for i := range resources {
		rs := td.ResourceSpans().AppendEmpty()
		resourceAttrs(rs.Resource().Attributes(), i)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp")
		for j := range perResource {
			s := ss.Spans().AppendEmpty()
			s.SetName("POST /api/v1/orders/{id}")
			s.SetSpanID(pcommon.SpanID{byte(i), byte(j), 1, 2, 3, 4, 5, 6})
			s.SetTraceID(pcommon.TraceID{byte(i), byte(j), 1})
			s.SetKind(ptrace.SpanKindServer)
			itemAttrs(s.Attributes(), j)
		}
	}
	return td
}

func logs() plog.Logs {
	ld := plog.NewLogs()
	for i := range resources {
		rl := ld.ResourceLogs().AppendEmpty()
		resourceAttrs(rl.Resource().Attributes(), i)
		sl := rl.ScopeLogs().AppendEmpty()
		for j := range perResource {
			r := sl.LogRecords().AppendEmpty()
			r.Body().SetStr("order accepted")
			itemAttrs(r.Attributes(), j)
		}
	}
	return ld
}

func metrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for i := range resources {
		rm := md.ResourceMetrics().AppendEmpty()
		resourceAttrs(rm.Resource().Attributes(), i)
		sm := rm.ScopeMetrics().AppendEmpty()
		sum := sm.Metrics().AppendEmpty()
		sum.SetName("http.server.request.count")
		dps := sum.SetEmptySum().DataPoints()
		for j := range perResource {
			dp := dps.AppendEmpty()
			dp.SetIntValue(int64(j))
			itemAttrs(dp.Attributes(), j)
		}
	}
	return md
}
