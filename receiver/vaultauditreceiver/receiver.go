package vaultauditreceiver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/vaultlightstep/vaultlightstep/internal/auditevent"
	"github.com/vaultlightstep/vaultlightstep/receiver/vaultauditreceiver/internal/metadata"
)

// scopeName names the instrumentation scope of the log records.
const scopeName = "github.com/vaultlightstep/vaultlightstep/receiver/vaultauditreceiver"

// maxBatch bounds the log records of one ConsumeLogs call.
const maxBatch = 100

// auditReceiver turns the audit events of the subscribed extensions into
// log records. Extensions hand events over without blocking (a bounded
// queue); one goroutine batches them into the logs pipeline.
type auditReceiver struct {
	cfg       *Config
	next      consumer.Logs
	logger    *zap.Logger
	obsrecv   *receiverhelper.ObsReport
	telemetry *metadata.TelemetryBuilder

	queue       chan auditevent.Event
	unsubscribe []func()
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

func newAuditReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*auditReceiver, error) {
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "vaultauth", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &auditReceiver{cfg: cfg, next: next, logger: set.Logger, obsrecv: obsrecv, telemetry: tb,
		queue: make(chan auditevent.Event, cfg.QueueSize)}, nil
}

// Start subscribes to each named extension; a name that is not a started
// vaultauth extension fails the start, naming it.
func (r *auditReceiver) Start(_ context.Context, host component.Host) error {
	exts := host.GetExtensions()
	sources := make([]auditevent.Source, 0, len(r.cfg.Extensions))
	for _, id := range r.cfg.Extensions {
		ext, ok := exts[id]
		if !ok {
			return fmt.Errorf("extensions: %s is not an extension of this collector (add it to service.extensions)", id)
		}
		src, ok := ext.(auditevent.Source)
		if !ok {
			return fmt.Errorf("extensions: %s is not a vaultauth extension", id)
		}
		sources = append(sources, src)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.run(ctx) }()
	for _, src := range sources {
		r.unsubscribe = append(r.unsubscribe, src.SubscribeAuditEvents(r.enqueue))
	}
	return nil
}

// enqueue takes one event from an extension, never blocking it.
func (r *auditReceiver) enqueue(e auditevent.Event) {
	select {
	case r.queue <- e:
	default:
		r.telemetry.VaultauditEventsDropped.Add(context.Background(), 1)
	}
}

// run sends queued events on in batches until ctx ends, then sends what is
// left.
func (r *auditReceiver) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			r.drain()
			return
		case e := <-r.queue:
			batch := append(make([]auditevent.Event, 0, maxBatch), e)
			batch = r.fill(batch)
			r.send(batch)
		}
	}
}

// fill adds what is already queued, up to maxBatch.
func (r *auditReceiver) fill(batch []auditevent.Event) []auditevent.Event {
	for len(batch) < maxBatch {
		select {
		case e := <-r.queue:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

func (r *auditReceiver) drain() {
	for {
		batch := r.fill(nil)
		if len(batch) == 0 {
			return
		}
		r.send(batch)
	}
}

func (r *auditReceiver) send(batch []auditevent.Event) {
	ld := toLogs(batch)
	for _, e := range batch {
		r.telemetry.VaultauditEvents.Add(context.Background(), 1,
			metric.WithAttributeSet(attribute.NewSet(attribute.String("event", e.Name))))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = r.obsrecv.StartLogsOp(ctx)
	err := r.next.ConsumeLogs(ctx, ld)
	r.obsrecv.EndLogsOp(ctx, metadata.Type.String(), len(batch), err)
	if err != nil {
		r.telemetry.VaultauditEventsDropped.Add(context.Background(), int64(len(batch)))
		r.logger.Warn("the logs pipeline refused audit events", zap.Int("events", len(batch)), zap.Error(err))
	}
}

func (r *auditReceiver) Shutdown(context.Context) error {
	for _, u := range r.unsubscribe {
		u()
	}
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
	}
	r.telemetry.Shutdown()
	return nil
}

// toLogs makes one log record per event, following the OTel event
// conventions: the event name in the record's EventName, its attributes as
// record attributes, severity INFO (WARN for refusals).
func toLogs(batch []auditevent.Event) plog.Logs {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName(scopeName)
	records := sl.LogRecords()
	records.EnsureCapacity(len(batch))
	now := pcommon.NewTimestampFromTime(time.Now())
	for _, e := range batch {
		lr := records.AppendEmpty()
		lr.SetEventName(e.Name)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(e.Time))
		lr.SetObservedTimestamp(now)
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		if e.Warn {
			lr.SetSeverityNumber(plog.SeverityNumberWarn)
			lr.SetSeverityText("WARN")
		}
		attrs := lr.Attributes()
		attrs.EnsureCapacity(len(e.Attrs))
		for _, a := range e.Attrs {
			if a.IsInt {
				attrs.PutInt(a.Key, a.Int)
			} else {
				attrs.PutStr(a.Key, a.Str)
			}
		}
	}
	return ld
}
