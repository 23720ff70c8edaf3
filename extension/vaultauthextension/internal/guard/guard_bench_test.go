package guard

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/zap"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/stats"

	"github.com/vaultlightstep/vaultlightstep/extension/vaultauthextension/internal/telemetry"
)

// agentBatch is what an agent sends a gateway: 100 spans, ten attributes each.
func agentBatch() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range 100 {
		s := spans.AppendEmpty()
		s.SetName("GET /cart")
		s.SetTraceID(pcommon.TraceID{1, byte(i)})
		s.SetSpanID(pcommon.SpanID{2, byte(i)})
		for j := range 10 {
			s.Attributes().PutStr("attr."+strconv.Itoa(j), "value-"+strconv.Itoa(i*j))
		}
	}
	return td
}

// otlpMessage lets pdata's gRPC codec decode into a public ExportRequest,
// as it decodes into the receiver's.
type otlpMessage struct{ req ptraceotlp.ExportRequest }

func (m *otlpMessage) SizeProto() int                { return 0 }
func (m *otlpMessage) MarshalProto([]byte) int       { return 0 }
func (m *otlpMessage) UnmarshalProto(b []byte) error { return m.req.UnmarshalProto(b) }

// BenchmarkGuardRequest is the guard's cost per request beside what the
// receiver does with the same request anyway: impl=contrib reads and
// decodes it (HTTP: the body, protobuf or JSON; gRPC: the codec),
// impl=ours does the same behind the guard.
func BenchmarkGuardRequest(b *testing.B) {
	g := newTestGuard(b)
	td := agentBatch()
	pb, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	js, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	for _, enc := range []struct {
		name, contentType string
		body              []byte
	}{{"protobuf", "application/x-protobuf", pb}, {"json", "application/json", js}} {
		decode := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, _ := io.ReadAll(r.Body)
			req := ptraceotlp.NewExportRequest()
			var err error
			if enc.name == "json" {
				err = req.UnmarshalJSON(raw)
			} else {
				err = req.UnmarshalProto(raw)
			}
			if err != nil {
				b.Fatal(err)
			}
		})
		guarded, _ := g.WrapHTTP(context.Background(), decode)
		for impl, h := range map[string]http.Handler{"contrib": decode, "ours": guarded} {
			b.Run("http/"+enc.name+"/impl="+impl, func(b *testing.B) {
				b.ReportAllocs()
				w := httptest.NewRecorder()
				for b.Loop() {
					r := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(enc.body))
					r.Header.Set("Content-Type", enc.contentType)
					h.ServeHTTP(w, r)
				}
			})
		}
	}
	protobuf := encoding.GetCodecV2("proto")
	codec, handler := guardCodec{g}, guardStats{g}
	b.Run("grpc/protobuf/impl=contrib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := &otlpMessage{req: ptraceotlp.NewExportRequest()}
			if err := protobuf.Unmarshal(mem.BufferSlice{mem.SliceBuffer(pb)}, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("grpc/protobuf/impl=ours", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx := handler.TagRPC(context.Background(), nil)
			m := &otlpMessage{req: ptraceotlp.NewExportRequest()}
			if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(pb)}, m); err != nil {
				b.Fatal(err)
			}
			handler.HandleRPC(ctx, &stats.InPayload{Payload: m})
			handler.HandleRPC(ctx, &stats.End{})
		}
	})
}

// BenchmarkJSONDepthScan is the guard's nesting scan alone, over an agent batch in OTLP/JSON.
func BenchmarkJSONDepthScan(b *testing.B) {
	js, _ := ptraceotlp.NewExportRequestFromTraces(agentBatch()).MarshalJSON()
	b.SetBytes(int64(len(js)))
	for b.Loop() {
		d := jsonDepth{max: 256}
		if err := d.scan(js); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONDepthScanAtTheLimit is a document that stays one level
// under max for 4 MiB (`[` 255 times, then `[]` repeated), read at once:
// the cost of nesting that never passes the limit but keeps the fast
// paths from running. Linear: about the byte loop's speed.
func BenchmarkJSONDepthScanAtTheLimit(b *testing.B) {
	doc := append(bytes.Repeat([]byte("["), 255), bytes.Repeat([]byte("[]"), 2<<20)...)
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		d := jsonDepth{max: 256}
		if err := d.scan(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// newTestGuard is a guard with the shipped examples' limits.
func newTestGuard(tb testing.TB) *Guard {
	tb.Helper()
	tel, err := telemetry.New(componenttest.NewNopTelemetrySettings(), component.MustNewID("vaultauth"))
	if err != nil {
		tb.Fatal(err)
	}
	return New(Settings{MaxInflightBytes: 4 << 20, MaxJSONDepth: 256, MaxWait: 5 * time.Second}, tel, zap.NewNop())
}
