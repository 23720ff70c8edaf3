package testbed

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vaultlightstep/vaultlightstep/internal/identity"
	"github.com/vaultlightstep/vaultlightstep/internal/pipelinetest"
)

// Sink is where the Lightstep stand-in delivers: an OTLP receiver that
// remembers every span it got, by span id, with its resource's and its own
// attributes as they arrived: lists, duplicates kept, so a test can count.
type Sink struct {
	GRPCAddr string

	mu     sync.Mutex
	spans  map[pcommon.SpanID]Arrived
	dups   int
	events []Event
}

// Arrived is one span as it reached the backend.
type Arrived struct {
	Resource Attributes
	Span     Attributes
}

// Attributes is an attribute list in arrival order, repeated keys kept.
type Attributes []KeyValue

// KeyValue is one attribute entry.
type KeyValue struct {
	Key, Value string
	nested     []string // identity keys inside a map value, at any depth
}

// Values lists the values of every entry with key.
func (a Attributes) Values(key string) []string {
	var out []string
	for _, kv := range a {
		if kv.Key == key {
			out = append(out, kv.Value)
		}
	}
	return out
}

// IdentityKeys lists every identity key an entry carries, as it arrived: a
// key equal to vault or starting with vault. in any letter case, and such a
// key inside a map value (as "<key>/<nested key>"), repeats kept, in order.
func (a Attributes) IdentityKeys() []string {
	var out []string
	for _, kv := range a {
		if identity.IsReserved(kv.Key) {
			out = append(out, kv.Key)
		}
		for _, nested := range kv.nested {
			out = append(out, kv.Key+"/"+nested)
		}
	}
	return out
}

// One is the value of key when it occurs exactly once, "" otherwise.
func (a Attributes) One(key string) string {
	if v := a.Values(key); len(v) == 1 {
		return v[0]
	}
	return ""
}

func listOf(m pcommon.Map) Attributes {
	out := make(Attributes, 0, m.Len())
	for k, v := range m.All() {
		out = append(out, KeyValue{Key: k, Value: v.AsString(), nested: nestedIdentityKeys(v, "")})
	}
	return out
}

func nestedIdentityKeys(v pcommon.Value, prefix string) []string {
	var out []string
	switch v.Type() {
	case pcommon.ValueTypeMap:
		for k, nv := range v.Map().All() {
			if identity.IsReserved(k) {
				out = append(out, prefix+k)
			}
			out = append(out, nestedIdentityKeys(nv, prefix+k+"/")...)
		}
	case pcommon.ValueTypeSlice:
		for i := 0; i < v.Slice().Len(); i++ {
			out = append(out, nestedIdentityKeys(v.Slice().At(i), prefix)...)
		}
	}
	return out
}

// StartSink starts the sink on a loopback port.
func StartSink(t T) *Sink {
	t.Helper()
	s := &Sink{spans: map[pcommon.SpanID]Arrived{}}
	next, err := consumer.NewTraces(s.consume)
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	logs, err := consumer.NewLogs(s.consumeLogs)
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	s.GRPCAddr = pipelinetest.StartReceiver(t, pipelinetest.NewHost(nil), nil, next, logs).GRPCAddr
	return s
}

// Event is one log record that arrived with an event name (an audit event).
type Event struct {
	Name       string
	Attributes Attributes
}

func (s *Sink) consumeLogs(_ context.Context, ld plog.Logs) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		for j := 0; j < ld.ResourceLogs().At(i).ScopeLogs().Len(); j++ {
			records := ld.ResourceLogs().At(i).ScopeLogs().At(j).LogRecords()
			for k := 0; k < records.Len(); k++ {
				if name := records.At(k).EventName(); name != "" {
					s.events = append(s.events, Event{Name: name, Attributes: listOf(records.At(k).Attributes())})
				}
			}
		}
	}
	return nil
}

// Events are the events that arrived, in order.
func (s *Sink) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

func (s *Sink) consume(_ context.Context, td ptrace.Traces) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		res := listOf(rs.Resource().Attributes())
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			spans := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				id := spans.At(k).SpanID()
				if _, seen := s.spans[id]; seen {
					s.dups++
				}
				s.spans[id] = Arrived{Resource: res, Span: listOf(spans.At(k).Attributes())}
			}
		}
	}
	return nil
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

// Span returns a span as it arrived.
func (s *Sink) Span(id pcommon.SpanID) (Arrived, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.spans[id]
	return a, ok
}
