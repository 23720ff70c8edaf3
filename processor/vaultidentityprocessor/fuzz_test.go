package vaultidentityprocessor

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The fuzz targets feed raw OTLP bytes, as a receiver would decode them,
// through the processor in both modes at both levels, and check the
// anti-spoofing invariant on the output by counting entries.

type codec struct {
	traces  ptrace.Unmarshaler
	logs    plog.Unmarshaler
	metrics pmetric.Unmarshaler
}

var (
	protoCodec = codec{&ptrace.ProtoUnmarshaler{}, &plog.ProtoUnmarshaler{}, &pmetric.ProtoUnmarshaler{}}
	jsonCodec  = codec{&ptrace.JSONUnmarshaler{}, &plog.JSONUnmarshaler{}, &pmetric.JSONUnmarshaler{}}
)

// seedDocuments are the forged documents, with the verified value written
// once (an agent-stamped copy) and not at all.
func seedDocuments() (traces, logs, metrics []string) {
	for _, correct := range []string{"ent-alice", "x"} {
		traces = append(traces, forgedTracesJSON(correct))
		logs = append(logs, forgedLogsJSON(correct))
		metrics = append(metrics, forgedMetricsJSON(correct))
	}
	return traces, logs, metrics
}

// fuzzStamping runs data through every configuration and fails on any
// violation of the invariant.
func fuzzStamping(f *testing.F, c codec) {
	type setup struct {
		p     *processors
		m     mode
		level string
	}
	var setups []setup
	for _, m := range modes() {
		for _, level := range []string{LevelResource, LevelSpan} {
			setups = append(setups, setup{newProcessors(f, configWith(level, m), m.host), m, level})
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range setups {
			check := &checker{want: aliceStamp, stampAt: stampPlace(s.level)}
			if td, err := c.traces.UnmarshalTraces(data); err == nil {
				s.p.tsink.Reset()
				if err := s.p.traces.ConsumeTraces(s.m.ctx, td); err != nil {
					t.Fatalf("%s/%s: traces: %v", s.m.name, s.level, err)
				}
				check.traces(s.p.tsink.AllTraces()[0])
			}
			if ld, err := c.logs.UnmarshalLogs(data); err == nil {
				s.p.lsink.Reset()
				if err := s.p.logs.ConsumeLogs(s.m.ctx, ld); err != nil {
					t.Fatalf("%s/%s: logs: %v", s.m.name, s.level, err)
				}
				check.logs(s.p.lsink.AllLogs()[0])
			}
			if md, err := c.metrics.UnmarshalMetrics(data); err == nil {
				s.p.msink.Reset()
				if err := s.p.metrics.ConsumeMetrics(s.m.ctx, md); err != nil {
					t.Fatalf("%s/%s: metrics: %v", s.m.name, s.level, err)
				}
				check.metrics(s.p.msink.AllMetrics()[0])
			}
			if len(check.violations) > 0 {
				t.Fatalf("%s/%s: %d violations, first: %v", s.m.name, s.level, len(check.violations), check.violations)
			}
		}
	})
}

func FuzzStampOTLPJSON(f *testing.F) {
	traces, logs, metrics := seedDocuments()
	for _, doc := range append(append(traces, logs...), metrics...) {
		f.Add([]byte(doc))
	}
	fuzzStamping(f, jsonCodec)
}

func FuzzStampOTLPProtobuf(f *testing.F) {
	traces, logs, metrics := seedDocuments()
	for _, doc := range traces {
		td, _ := jsonCodec.traces.UnmarshalTraces([]byte(doc))
		b, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		f.Add(b)
	}
	for _, doc := range logs {
		ld, _ := jsonCodec.logs.UnmarshalLogs([]byte(doc))
		b, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		f.Add(b)
	}
	for _, doc := range metrics {
		md, _ := jsonCodec.metrics.UnmarshalMetrics([]byte(doc))
		b, _ := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
		f.Add(b)
	}
	fuzzStamping(f, protoCodec)
}
