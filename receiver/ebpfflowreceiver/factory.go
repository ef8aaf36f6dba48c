package ebpfflowreceiver // import "github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/ebpfflow/ebpfflow/internal/sharedcomponent"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/metadata"
)

// receiverCore is what the platform file provides: one eBPF engine feeding
// the logs, metrics and traces consumers of one receiver ID.
type receiverCore interface {
	component.Component
	setLogs(consumer.Logs)
	setMetrics(consumer.Metrics)
	setTraces(consumer.Traces)
}

// receivers holds one core per receiver ID across its logs, metrics and
// traces pipelines: the probes attach once, however many pipelines use them.
var receivers = sharedcomponent.NewMap[*Config, receiverCore]()

// NewFactory returns the factory of the ebpfflow receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		receiver.WithLogs(createLogs, metadata.LogsStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
		receiver.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := getReceiver(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.Unwrap().setLogs(next)
	return r, nil
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := getReceiver(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.Unwrap().setMetrics(next)
	return r, nil
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := getReceiver(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	r.Unwrap().setTraces(next)
	return r, nil
}

func getReceiver(set receiver.Settings, cfg *Config) (*sharedcomponent.Component[receiverCore], error) {
	return receivers.LoadOrStore(cfg, func() (receiverCore, error) { return newReceiver(set, cfg) })
}
