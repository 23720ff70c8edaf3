package vaultidentityprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/vaultlightstep/vaultlightstep/processor/vaultidentityprocessor/internal/metadata"
)

// NewFactory returns the factory of the vaultidentity processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability),
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
		processor.WithLogs(createLogs, metadata.LogsStability),
	)
}

var capabilities = consumer.Capabilities{MutatesData: true}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := newStamper(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, p.observeTraces(next), p.processTraces,
		processorhelper.WithStart(p.start), processorhelper.WithShutdown(p.shutdown),
		processorhelper.WithCapabilities(capabilities))
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	p, err := newStamper(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, p.observeMetrics(next), p.processMetrics,
		processorhelper.WithStart(p.start), processorhelper.WithShutdown(p.shutdown),
		processorhelper.WithCapabilities(capabilities))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := newStamper(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, p.observeLogs(next), p.processLogs,
		processorhelper.WithStart(p.start), processorhelper.WithShutdown(p.shutdown),
		processorhelper.WithCapabilities(capabilities))
}
