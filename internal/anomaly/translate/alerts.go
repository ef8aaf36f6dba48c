package translate

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
)

// Attributes of an anomaly record (telemetry contract, `anomaly` event).
const (
	AttrSignal   = "ebpfflow.anomaly.signal"
	AttrMeasure  = "ebpfflow.anomaly.measure"
	AttrSeries   = "ebpfflow.anomaly.series"
	AttrEdge     = "ebpfflow.anomaly.edge"
	AttrObserved = "ebpfflow.anomaly.observed"
	AttrExpected = "ebpfflow.anomaly.expected"
	AttrUnit     = "ebpfflow.anomaly.unit"
	AttrScore    = "ebpfflow.anomaly.score"
	AttrSince    = "ebpfflow.anomaly.since"
	AttrState    = "ebpfflow.anomaly.state"
	AttrID       = "ebpfflow.anomaly.id"
	AttrSignals  = "ebpfflow.anomaly.signals"
)

// AppendAlerts appends one `anomaly` log record per alert to ld, in a
// resource of their own under the given instrumentation scope. observed is
// the records' ObservedTimestamp.
func AppendAlerts(ld plog.Logs, alerts []anomaly.Alert, scopeName, scopeVersion string, observed time.Time) {
	if len(alerts) == 0 {
		return
	}
	rl := ld.ResourceLogs().AppendEmpty()
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(scopeName)
	sl.Scope().SetVersion(scopeVersion)
	lrs := sl.LogRecords()
	lrs.EnsureCapacity(len(alerts))
	obs := pcommon.NewTimestampFromTime(observed)
	for i := range alerts {
		putAlert(lrs.AppendEmpty(), &alerts[i], obs)
	}
}

func putAlert(lr plog.LogRecord, a *anomaly.Alert, observed pcommon.Timestamp) {
	lr.SetEventName(EventAnomaly)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(a.Time))
	lr.SetObservedTimestamp(observed)
	switch a.Severity {
	case anomaly.SeverityError:
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.SetSeverityText("ERROR")
	case anomaly.SeverityWarn:
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	default:
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
	}
	lr.Body().SetStr(a.Body)
	m := lr.Attributes()
	m.EnsureCapacity(14)
	m.PutStr(attrEventName, EventAnomaly)
	m.PutStr(AttrState, a.State.String())
	m.PutStr(AttrSignal, a.Signal)
	m.PutStr(AttrMeasure, a.Measure)
	m.PutStr(AttrEdge, a.Edge)
	series := m.PutEmptyMap(AttrSeries)
	series.EnsureCapacity(len(a.Series))
	for _, at := range a.Series {
		if at.IsInt {
			series.PutInt(at.Key, at.Int)
		} else {
			series.PutStr(at.Key, at.Value)
		}
	}
	m.PutDouble(AttrObserved, a.Observed)
	m.PutDouble(AttrExpected, a.Expected)
	m.PutStr(AttrUnit, a.Unit)
	if a.State == anomaly.Firing {
		m.PutDouble(AttrScore, a.Score)
	}
	m.PutStr(AttrSince, a.Since.UTC().Format(time.RFC3339Nano))
	m.PutStr(AttrID, a.ID)
	sigs := m.PutEmptySlice(AttrSignals)
	sigs.EnsureCapacity(len(a.Signals))
	for _, s := range a.Signals {
		sigs.AppendEmpty().SetStr(s)
	}
}
