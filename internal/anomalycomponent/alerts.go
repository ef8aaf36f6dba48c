package anomalycomponent

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/ebpfflow/ebpfflow/internal/anomaly"
	"github.com/ebpfflow/ebpfflow/internal/semconv"
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
	lr.SetEventName(semconv.EventAnomaly)
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
	m.PutStr(semconv.AttrEventName, semconv.EventAnomaly)
	m.PutStr(semconv.AttrAnomalyState, a.State.String())
	m.PutStr(semconv.AttrAnomalySignal, a.Signal)
	m.PutStr(semconv.AttrAnomalyMeasure, a.Measure)
	m.PutStr(semconv.AttrAnomalyEdge, a.Edge)
	series := m.PutEmptyMap(semconv.AttrAnomalySeries)
	series.EnsureCapacity(len(a.Series))
	for _, at := range a.Series {
		if at.IsInt {
			series.PutInt(at.Key, at.Int)
		} else {
			series.PutStr(at.Key, at.Value)
		}
	}
	m.PutDouble(semconv.AttrAnomalyObserved, a.Observed)
	m.PutDouble(semconv.AttrAnomalyExpected, a.Expected)
	m.PutStr(semconv.AttrAnomalyUnit, a.Unit)
	if a.State == anomaly.Firing {
		m.PutDouble(semconv.AttrAnomalyScore, a.Score)
	}
	m.PutStr(semconv.AttrAnomalySince, a.Since.UTC().Format(time.RFC3339Nano))
	m.PutStr(semconv.AttrAnomalyID, a.ID)
	sigs := m.PutEmptySlice(semconv.AttrAnomalySignals)
	sigs.EnsureCapacity(len(a.Signals))
	for _, s := range a.Signals {
		sigs.AppendEmpty().SetStr(s)
	}
}
