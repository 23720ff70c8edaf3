package deploy

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
)

// Sink is where the Lightstep stand-in delivers: an OTLP receiver that
// remembers every span it got, by span id, with its resource attributes.
type Sink struct {
	GRPCAddr string

	mu    sync.Mutex
	spans map[pcommon.SpanID]map[string]any // span id -> resource attributes
	dups  int
}

// StartSink starts the sink on a loopback port.
func StartSink(t T) *Sink {
	t.Helper()
	s := &Sink{spans: map[pcommon.SpanID]map[string]any{}}
	next, err := consumer.NewTraces(s.consume)
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	s.GRPCAddr = pipelinetest.StartTracesReceiver(t, pipelinetest.NewHost(nil), nil, next).GRPCAddr
	return s
}

func (s *Sink) consume(_ context.Context, td ptrace.Traces) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		res := rs.Resource().Attributes().AsRaw()
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				id := spans.At(k).SpanID()
				if _, seen := s.spans[id]; seen {
					s.dups++
				}
				attrs := res
				if forged, ok := spans.At(k).Attributes().Get("vault.entity.id"); ok {
					attrs = copyWith(res, "span.vault.entity.id", forged.AsString())
				}
				s.spans[id] = attrs
			}
		}
	}
	return nil
}

func copyWith(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}

// Count is the number of distinct spans received.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.spans)
}

// Duplicates counts spans received more than once (retries after a crash).
func (s *Sink) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dups
}

// Missing returns the ids of sent that have not arrived.
func (s *Sink) Missing(sent []pcommon.SpanID) []pcommon.SpanID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []pcommon.SpanID
	for _, id := range sent {
		if _, ok := s.spans[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// Resource returns the resource attributes a span arrived with.
func (s *Sink) Resource(id pcommon.SpanID) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	attrs, ok := s.spans[id]
	return attrs, ok
}
