package testbed

import (
	"context"
	"encoding/binary"
	"sync"

	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
)

// Sender is one workload's application: an OTLP gRPC client (the
// Collector's own exporter, retrying, without a queue, so a nil error means
// its agent has the data) that sends spans with ids it remembers. Each batch
// also carries forged identity attributes at resource and span level, as an
// attacker writes them on the wire (forgedAttributes), that must never
// survive.
type Sender struct {
	Workload string
	exp      exporter.Traces
	index    uint32

	mu   sync.Mutex
	next uint32
	sent []pcommon.SpanID
	errs int
}

// ForgedEntity and ForgedTenant are what senders put in vault.entity.id and vault.tenant.
const (
	ForgedEntity = "forged-entity"
	ForgedTenant = "forged-tenant"
	// ForgedHMAC is what senders put in vault.credential.hmac: the join key
	// to another request's audit entry, were it kept.
	ForgedHMAC = "hmac-sha256:forged"
)

// forgedAttributes is what every sent resource and span carries besides its
// own attributes: vault.entity.id and vault.tenant repeated (pdata keeps
// repeated keys from the wire; a map built from them keeps the last), in
// other letter cases, and nested in map values.
var forgedAttributes = func() pcommon.Map {
	forged := `{"key":"vault.entity.id","value":{"stringValue":"x"}},
{"key":"vault.entity.id","value":{"stringValue":"` + ForgedEntity + `"}},
{"key":"vault.tenant","value":{"stringValue":"` + ForgedTenant + `"}},
{"key":"vault.tenant","value":{"stringValue":"` + ForgedTenant + `"}},
{"key":"vault.credential.hmac","value":{"stringValue":"` + ForgedHMAC + `"}},
{"key":"VAULT.Tenant","value":{"stringValue":"` + ForgedTenant + `"}},
{"key":"Vault.Entity.Id","value":{"stringValue":"` + ForgedEntity + `"}},
{"key":"vault","value":{"kvlistValue":{"values":[{"key":"tenant","value":{"stringValue":"` + ForgedTenant + `"}}]}}},
{"key":"app.meta","value":{"kvlistValue":{"values":[{"key":"vault.tenant","value":{"stringValue":"` + ForgedTenant + `"}},{"key":"ok","value":{"stringValue":"kept"}}]}}}`
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces([]byte(`{"resourceSpans":[{"resource":{"attributes":[` + forged + `]}}]}`))
	if err != nil {
		panic(err)
	}
	return td.ResourceSpans().At(0).Resource().Attributes()
}()

// withForged is m's own attributes followed by forgedAttributes, repeats kept.
func withForged(m pcommon.Map) {
	own := pcommon.NewMap()
	m.CopyTo(own)
	forgedAttributes.CopyTo(m)
	for k, v := range own.All() {
		v.CopyTo(m.PutEmpty(k))
	}
}

// NewSender connects a workload's application to its agent's OTLP gRPC endpoint.
func NewSender(t T, workload string, index int, agentGRPC string) *Sender {
	t.Helper()
	return newSender(t, workload, index, agentGRPC, nil)
}

func newSender(t T, workload string, index int, endpoint string, headers map[string]any) *Sender {
	t.Helper()
	cfg := map[string]any{
		"endpoint":      endpoint,
		"tls":           map[string]any{"insecure": true},
		"sending_queue": map[string]any{"enabled": false},
		"retry_on_failure": map[string]any{
			"enabled": true, "initial_interval": "50ms", "max_interval": "1s", "max_elapsed_time": "1m",
		},
	}
	if headers != nil {
		cfg["headers"] = headers
	}
	exp := pipelinetest.StartTracesExporter(t, pipelinetest.NewHost(nil), "otlp_grpc", cfg)
	return &Sender{Workload: workload, exp: exp, index: uint32(index)}
}

// Send sends one request of n spans; it reports whether the agent took it.
func (s *Sender) Send(n int) bool {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", s.Workload)
	rs.Resource().Attributes().PutStr("workload", s.Workload)
	withForged(rs.Resource().Attributes())
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	s.mu.Lock()
	ids := make([]pcommon.SpanID, n)
	for i := range ids {
		binary.BigEndian.PutUint32(ids[i][:4], s.index+1)
		binary.BigEndian.PutUint32(ids[i][4:], s.next)
		s.next++
	}
	s.mu.Unlock()
	for _, id := range ids {
		span := spans.AppendEmpty()
		span.SetName("checkout")
		span.SetSpanID(id)
		span.SetTraceID(pcommon.TraceID([16]byte{1, byte(s.index), 3}))
		withForged(span.Attributes())
	}
	err := s.exp.ConsumeTraces(context.Background(), td)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs++
		return false
	}
	s.sent = append(s.sent, ids...)
	return true
}

// Sent returns the ids of spans the agent accepted.
func (s *Sender) Sent() []pcommon.SpanID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pcommon.SpanID(nil), s.sent...)
}

// Errors counts requests the agent did not take.
func (s *Sender) Errors() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs
}
