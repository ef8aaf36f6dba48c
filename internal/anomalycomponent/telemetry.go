package anomalycomponent

import (
	"context"
	"errors"
	"math"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
	"github.com/ebpfflow/ebpfflow/internal/semconv"
)

// TelemetryBuilder is what mdatagen generates from the self-telemetry both
// components declare in their metadata.yaml (the same metrics, each under
// its own meter).
type TelemetryBuilder interface {
	RegisterAnomalyDetectionSeriesCallback(metric.Int64Callback) error
	RegisterAnomalyDetectionSeriesEvictedCallback(metric.Int64Callback) error
	RegisterAnomalyDetectionPointsCallback(metric.Int64Callback) error
	RegisterAnomalyDetectionPointsDroppedCallback(metric.Int64Callback) error
	RegisterAnomalyDetectionAlertsCallback(metric.Int64Callback) error
	RegisterAnomalyDetectionAlertsSuppressedCallback(metric.Int64Callback) error
	Shutdown()
}

func attr(k, v string) metric.ObserveOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String(k, v)))
}

var (
	stateLearning  = attr(semconv.SelfAttrState, "learning")
	stateNormal    = attr(semconv.SelfAttrState, "normal")
	stateAnomalous = attr(semconv.SelfAttrState, "anomalous")
	stateFiring    = attr(semconv.SelfAttrState, "firing")
	stateResolved  = attr(semconv.SelfAttrState, "resolved")
	reasonTTL      = attr(semconv.SelfAttrReason, "ttl")
	reasonLimit    = attr(semconv.SelfAttrReason, "limit")
	causeLate      = attr(semconv.SelfAttrCause, "late")
	causeInvalid   = attr(semconv.SelfAttrCause, "invalid")
	causeStreams   = attr(semconv.SelfAttrCause, "stream_limit")
	causes         = func() (o [anomaly.NumCauses]metric.ObserveOption) {
		for c := range anomaly.NumCauses {
			o[c] = attr(semconv.SelfAttrCause, c.String())
		}
		return o
	}()
)

func clamp(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

// registerTelemetry reports the engine's counters through the mdatagen
// telemetry builder (callbacks read atomics; no lock is taken).
func registerTelemetry(tb TelemetryBuilder, st *anomaly.Stats) error {
	return errors.Join(
		tb.RegisterAnomalyDetectionSeriesCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(st.SeriesLearning.Load(), stateLearning)
			o.Observe(st.SeriesNormal.Load(), stateNormal)
			o.Observe(st.SeriesAnomalous.Load(), stateAnomalous)
			return nil
		}),
		tb.RegisterAnomalyDetectionSeriesEvictedCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(clamp(st.EvictedTTL.Load()), reasonTTL)
			o.Observe(clamp(st.EvictedLimit.Load()), reasonLimit)
			return nil
		}),
		tb.RegisterAnomalyDetectionPointsCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(clamp(st.PointsScored.Load()))
			return nil
		}),
		tb.RegisterAnomalyDetectionPointsDroppedCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(clamp(st.DroppedLate.Load()), causeLate)
			o.Observe(clamp(st.DroppedInvalid.Load()), causeInvalid)
			o.Observe(clamp(st.DroppedStreamLimit.Load()), causeStreams)
			return nil
		}),
		tb.RegisterAnomalyDetectionAlertsCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(clamp(st.AlertsFiring.Load()), stateFiring)
			o.Observe(clamp(st.AlertsResolved.Load()), stateResolved)
			return nil
		}),
		tb.RegisterAnomalyDetectionAlertsSuppressedCallback(func(_ context.Context, o metric.Int64Observer) error {
			for c := range anomaly.NumCauses {
				o.Observe(clamp(st.Suppressed[c].Load()), causes[c])
			}
			return nil
		}),
	)
}
