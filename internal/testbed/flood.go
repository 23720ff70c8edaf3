package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Flooder sends many spans for little of its own CPU, so that what a flood
// costs lands on the collectors, not on the test process beside them: one
// OTLP protobuf request encoded once, sent again and again with new span
// ids written into it, over a raw gRPC connection. Like a Sender it
// retries what is refused retryably, and remembers what was taken.
type Flooder struct {
	Workload string
	// MaxBackoff caps the wait before a retry (default 1s); a sender that
	// ignores backoff retries at its own pace.
	MaxBackoff time.Duration
	conn       *grpc.ClientConn
	md         metadata.MD
	template   []byte
	offsets    []int // where each span's id is in template
	index      uint32

	mu      sync.Mutex
	next    uint32
	taken   [][2]uint32 // [first id counter, count] of each request taken
	refused int         // requests refused for good (not retryable)
}

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// NewFlooder sends requests of spans spans as workload to an OTLP gRPC
// endpoint (with identityToken as bearer, when set). index must differ from
// every other sender's.
func NewFlooder(t T, workload string, index int, endpoint, identityToken string, spans int) *Flooder {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", workload)
	rs.Resource().Attributes().PutStr("workload", workload)
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	markers := make([][8]byte, spans)
	for i := range markers {
		_, _ = rand.Read(markers[i][:])
		s := ss.AppendEmpty()
		s.SetName("flood")
		s.SetTraceID(pcommon.TraceID{1, byte(index), 3})
		s.SetSpanID(markers[i])
	}
	template, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatalf("flooder: %v", err)
	}
	f := &Flooder{Workload: workload, template: template, index: uint32(index), MaxBackoff: time.Second}
	for _, m := range markers {
		off := bytes.Index(template, m[:])
		if off < 0 || bytes.Count(template, m[:]) != 1 {
			t.Fatalf("flooder: a span id marker is not unique in the encoded request")
		}
		f.offsets = append(f.offsets, off)
	}
	if identityToken != "" {
		f.md = metadata.Pairs("authorization", "Bearer "+identityToken)
	}
	f.conn, err = grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(RawCodec{})))
	if err != nil {
		t.Fatalf("flooder: %v", err)
	}
	t.Cleanup(func() { _ = f.conn.Close() })
	return f
}

// Send sends one request, retrying it for up to a minute while it is
// refused retryably; it reports whether it was taken.
func (f *Flooder) Send() bool {
	f.mu.Lock()
	first := f.next
	f.next += uint32(len(f.offsets))
	f.mu.Unlock()
	body := bytes.Clone(f.template)
	for i, off := range f.offsets {
		binary.BigEndian.PutUint32(body[off:], f.index+1)
		binary.BigEndian.PutUint32(body[off+4:], first+uint32(i))
	}
	ctx := context.Background()
	if f.md != nil {
		ctx = metadata.NewOutgoingContext(ctx, f.md)
	}
	backoff, give := 50*time.Millisecond, time.Now().Add(time.Minute)
	for {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f.conn.Invoke(callCtx, exportMethod, body, new([]byte))
		cancel()
		switch status.Code(err) {
		case codes.OK:
			f.mu.Lock()
			f.taken = append(f.taken, [2]uint32{first, uint32(len(f.offsets))})
			f.mu.Unlock()
			return true
		case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted:
			if time.Now().After(give) {
				return false
			}
			time.Sleep(backoff)
			backoff = min(2*backoff, f.MaxBackoff)
		default:
			f.mu.Lock()
			f.refused++
			f.mu.Unlock()
			return false
		}
	}
}

// Refused counts requests refused for good (Unauthenticated, say): a
// flood that never reached the collectors.
func (f *Flooder) Refused() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// Sent returns the ids of the spans taken.
func (f *Flooder) Sent() []pcommon.SpanID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []pcommon.SpanID
	for _, r := range f.taken {
		for i := range r[1] {
			var id pcommon.SpanID
			binary.BigEndian.PutUint32(id[:4], f.index+1)
			binary.BigEndian.PutUint32(id[4:], r[0]+i)
			ids = append(ids, id)
		}
	}
	return ids
}

// RawCodec is a gRPC codec that sends a request's bytes as they are,
// whatever the method expects (raw OTLP, floods and attacks), and ignores
// the reply.
type RawCodec struct{}

func (RawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (RawCodec) Unmarshal([]byte, any) error   { return nil }
func (RawCodec) Name() string                  { return "proto" }
