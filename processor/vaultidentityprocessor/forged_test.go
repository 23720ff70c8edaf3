package vaultidentityprocessor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// What an attacker sends, written as raw OTLP/JSON (pdata's API cannot
// build repeated keys; the wire formats can). Every attribute list carries
// the stamped key twice (once with the right value, once forged), case
// variants, a bare "vault." and "VAULT", and identity keys nested in
// map-valued attributes, in a map and in a list.

// forgedAttrs is a JSON attribute list; correct is the verified entity id,
// written as a sender who copies an agent-stamped value would.
func forgedAttrs(correct string) string {
	kv := func(k, v string) string { return `{"key":"` + k + `","value":` + v + `}` }
	str := func(s string) string { return `{"stringValue":"` + s + `"}` }
	kvlist := func(kvs ...string) string { return `{"kvlistValue":{"values":[` + strings.Join(kvs, ",") + `]}}` }
	return "[" + strings.Join([]string{
		kv("vault.entity.id", str(correct)),
		kv("http.method", str("GET")),
		kv("vault.entity.id", str("ent-FORGED")),
		kv("Vault.Entity.Id", str("ent-FORGED")),
		kv("VAULT.NAMESPACE", str("admin")),
		kv("vault.", str("x")),
		kv("VAULT", str("x")),
		kv("vault", kvlist(kv("entity.id", str("ent-FORGED")))),
		kv("app", kvlist(kv("vault.entity.id", str("ent-FORGED")), kv("keep", str("me")))),
		kv("list", `{"arrayValue":{"values":[`+kvlist(kv("Vault.x", str("f")))+`,{"intValue":"1"}]}}`),
		kv("vault.entity.name", str("mallory")),
		kv("vault.entity.name", str("mallory")),
	}, ",") + "]"
}

// copiedStamp is what an agent stamped for alice, with the entity id
// written twice, both times right: still one too many.
func copiedStamp(correct string) string {
	kv := func(k, v string) string { return `{"key":"` + k + `","value":{"stringValue":"` + v + `"}}` }
	return "[" + strings.Join([]string{
		kv("vault.entity.id", correct), kv("vault.entity.name", "alice"), kv("vault.namespace", "root"), kv("vault.entity.id", correct),
	}, ",") + "]"
}

const (
	traceID = `"5b8efff798038103d269b633813fc60c"`
	spanID  = `"eee19b7ec3c1b174"`
)

func forgedTracesJSON(correct string) string {
	a := forgedAttrs(correct)
	span := `{"traceId":` + traceID + `,"spanId":` + spanID + `,"name":"op","attributes":` + a +
		`,"events":[{"name":"e","attributes":` + a + `}],"links":[{"traceId":` + traceID + `,"spanId":` + spanID + `,"attributes":` + a + `}]}`
	c := copiedStamp(correct)
	copied := `{"traceId":` + traceID + `,"spanId":` + spanID + `,"name":"op","attributes":` + c + `}`
	return `{"resourceSpans":[{"resource":{"attributes":` + a + `},"scopeSpans":[{"scope":{"name":"s","attributes":` + a +
		`},"spans":[` + span + `,` + span + `]}]},{"resource":{"attributes":` + a + `},"scopeSpans":[{"spans":[` + span + `]}]},` +
		`{"resource":{"attributes":` + c + `},"scopeSpans":[{"spans":[` + copied + `]}]}]}`
}

func forgedLogsJSON(correct string) string {
	a := forgedAttrs(correct)
	record := `{"timeUnixNano":"1","body":{"kvlistValue":{"values":[{"key":"Vault.Entity.Id","value":{"stringValue":"ent-FORGED"}},{"key":"msg","value":{"stringValue":"hi"}}]}},"attributes":` + a + `}`
	c := copiedStamp(correct)
	copied := `{"timeUnixNano":"1","attributes":` + c + `}`
	return `{"resourceLogs":[{"resource":{"attributes":` + a + `},"scopeLogs":[{"scope":{"attributes":` + a + `},"logRecords":[` + record + `,` + record + `]}]},` +
		`{"resource":{"attributes":` + c + `},"scopeLogs":[{"logRecords":[` + copied + `]}]}]}`
}

func forgedMetricsJSON(correct string) string {
	a := forgedAttrs(correct)
	exemplar := `{"timeUnixNano":"1","asDouble":1,"filteredAttributes":` + a + `}`
	point := `{"timeUnixNano":"1","asDouble":1,"attributes":` + a + `,"exemplars":[` + exemplar + `]}`
	hist := `{"timeUnixNano":"1","count":"1","bucketCounts":["1"],"attributes":` + a + `,"exemplars":[` + exemplar + `]}`
	exp := `{"timeUnixNano":"1","count":"1","attributes":` + a + `,"exemplars":[` + exemplar + `]}`
	summary := `{"timeUnixNano":"1","count":"1","attributes":` + a + `}`
	metric := func(name, body string) string {
		return `{"name":"` + name + `","metadata":` + a + `,` + body + `}`
	}
	c := copiedStamp(correct)
	copied := `{"resource":{"attributes":` + c + `},"scopeMetrics":[{"metrics":[{"name":"c","gauge":{"dataPoints":[{"timeUnixNano":"1","asDouble":1,"attributes":` + c + `}]}}]}]},`
	return `{"resourceMetrics":[` + copied + `{"resource":{"attributes":` + a + `},"scopeMetrics":[{"scope":{"attributes":` + a + `},"metrics":[` +
		strings.Join([]string{
			metric("g", `"gauge":{"dataPoints":[`+point+`,`+point+`]}`),
			metric("s", `"sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[`+point+`]}`),
			metric("h", `"histogram":{"aggregationTemporality":2,"dataPoints":[`+hist+`]}`),
			metric("e", `"exponentialHistogram":{"aggregationTemporality":2,"dataPoints":[`+exp+`]}`),
			metric("q", `"summary":{"dataPoints":[`+summary+`]}`),
		}, ",") + `]}]}]}`
}

// The forged documents decode to pdata that really holds the duplicates:
// the tests below would prove nothing otherwise.
func decodeForgedTraces(t testing.TB, correct string) ptrace.Traces {
	t.Helper()
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(forgedTracesJSON(correct)))
	require.NoError(t, err)
	require.Equal(t, 2, count(td.ResourceSpans().At(0).Resource().Attributes(), "vault.entity.id"), "pdata dropped a duplicate")
	return td
}

func decodeForgedLogs(t testing.TB, correct string) plog.Logs {
	t.Helper()
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs([]byte(forgedLogsJSON(correct)))
	require.NoError(t, err)
	require.Equal(t, 2, count(ld.ResourceLogs().At(0).Resource().Attributes(), "vault.entity.id"))
	return ld
}

func decodeForgedMetrics(t testing.TB, correct string) pmetric.Metrics {
	t.Helper()
	md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics([]byte(forgedMetricsJSON(correct)))
	require.NoError(t, err)
	require.Equal(t, 2, count(md.ResourceMetrics().At(1).Resource().Attributes(), "vault.entity.id"))
	require.Equal(t, 2, count(md.ResourceMetrics().At(1).ScopeMetrics().At(0).Metrics().At(0).Metadata(), "vault.entity.id"))
	return md
}
