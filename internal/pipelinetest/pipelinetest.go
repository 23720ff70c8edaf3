// Package pipelinetest wires real Collector components (the OTLP receiver,
// the OTLP gRPC and HTTP exporters) around the component under test, with
// configs written as users write them, so tests exercise what runs in a
// collector rather than a mock of it.
package pipelinetest

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// T is the part of testing.TB the helpers use (see vaulttest.T).
type T = vaulttest.T

// Host is a component.Host that serves extensions and records status events.
type Host struct {
	Extensions map[component.ID]component.Component

	mu     sync.Mutex
	events []*componentstatus.Event
}

var _ componentstatus.Reporter = (*Host)(nil)

// NewHost returns a host serving the given extensions.
func NewHost(exts map[component.ID]component.Component) *Host {
	return &Host{Extensions: exts}
}

func (h *Host) GetExtensions() map[component.ID]component.Component { return h.Extensions }

// Report records a status event (componentstatus.Reporter).
func (h *Host) Report(ev *componentstatus.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

// LastStatus is the latest reported status (StatusNone if none).
func (h *Host) LastStatus() componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == 0 {
		return componentstatus.StatusNone
	}
	return h.events[len(h.events)-1].Status()
}

// Statuses returns every status reported so far, in order.
func (h *Host) Statuses() []componentstatus.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]componentstatus.Status, len(h.events))
	for i, ev := range h.events {
		out[i] = ev.Status()
	}
	return out
}

// Errors returns the errors of every status event reported so far.
func (h *Host) Errors() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []error
	for _, ev := range h.events {
		if ev.Err() != nil {
			out = append(out, ev.Err())
		}
	}
	return out
}

// Receiver is a running OTLP receiver.
type Receiver struct {
	GRPCAddr string // host:port
	HTTPAddr string // http://host:port
}

// StartTracesReceiver starts an OTLP receiver on loopback with extra settings
// merged into both protocols (e.g. include_metadata, auth), sending to next.
func StartTracesReceiver(t T, host component.Host, protocolSettings map[string]any, next consumer.Traces) Receiver {
	t.Helper()
	return StartReceiver(t, host, protocolSettings, next, nil)
}

// StartReceiver is StartTracesReceiver that also takes logs, into logs
// (when not nil).
func StartReceiver(t T, host component.Host, protocolSettings map[string]any, next consumer.Traces, logs consumer.Logs) Receiver {
	t.Helper()
	var err error
	for range 3 { // a port free a moment ago can be taken before the bind
		var r Receiver
		if r, err = startTracesReceiver(t, host, protocolSettings, next, logs); err == nil {
			return r
		}
	}
	t.Fatalf("start otlp receiver: %v", err)
	return Receiver{}
}

func startTracesReceiver(t T, host component.Host, protocolSettings map[string]any, next consumer.Traces, logs consumer.Logs) (Receiver, error) {
	r := Receiver{GRPCAddr: vaulttest.FreeAddr(t), HTTPAddr: vaulttest.FreeAddr(t)}
	grpc := map[string]any{"endpoint": r.GRPCAddr}
	http := map[string]any{"endpoint": r.HTTPAddr}
	for k, v := range protocolSettings {
		grpc[k], http[k] = v, v
	}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig()
	unmarshal(t, map[string]any{"protocols": map[string]any{"grpc": grpc, "http": http}}, cfg)
	rcv, err := f.CreateTraces(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, next)
	if err != nil {
		t.Fatalf("create otlp receiver: %v", err)
	}
	if logs != nil {
		// The same config: the otlp receiver shares one instance (and its
		// ports) between signals.
		if _, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, logs); err != nil {
			t.Fatalf("create otlp receiver: %v", err)
		}
	}
	if err := rcv.Start(context.Background(), host); err != nil {
		_ = rcv.Shutdown(context.Background())
		return Receiver{}, err
	}
	t.Cleanup(func() { _ = rcv.Shutdown(context.Background()) })
	r.HTTPAddr = "http://" + r.HTTPAddr
	return r, nil
}

// ExporterConfig is the config of an exporter of kind ("otlp_grpc" or
// "otlp_http") sending to this receiver (plaintext), with settings added.
func (r Receiver) ExporterConfig(kind string, settings map[string]any) map[string]any {
	conf := map[string]any{"endpoint": r.HTTPAddr}
	if kind == "otlp_grpc" {
		conf = map[string]any{"endpoint": r.GRPCAddr, "tls": map[string]any{"insecure": true}}
	}
	for k, v := range settings {
		conf[k] = v
	}
	return conf
}

// StartTracesExporter starts an OTLP exporter, "otlp_grpc" or "otlp_http",
// from a user-style config map.
func StartTracesExporter(t T, host component.Host, kind string, conf map[string]any) exporter.Traces {
	t.Helper()
	var f exporter.Factory
	switch kind {
	case "otlp_grpc":
		f = otlpexporter.NewFactory()
	case "otlp_http":
		f = otlphttpexporter.NewFactory()
	default:
		t.Fatalf("unknown exporter kind %q", kind)
	}
	cfg := f.CreateDefaultConfig()
	unmarshal(t, conf, cfg)
	exp, err := f.CreateTraces(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		t.Fatalf("create %s exporter: %v", kind, err)
	}
	if err := exp.Start(context.Background(), host); err != nil {
		t.Fatalf("start %s exporter: %v", kind, err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

func unmarshal(t T, m map[string]any, cfg component.Config) {
	t.Helper()
	if err := confmap.NewFromStringMap(m).Unmarshal(cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
}
