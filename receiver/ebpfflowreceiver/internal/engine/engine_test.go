package engine

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/flowtable"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// journal records calls across fakes, to check ordering.
type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.calls = append(j.calls, s)
	j.mu.Unlock()
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.calls)
}

type fakeBase struct {
	name string
	j    *journal
	mu   sync.Mutex
	err  error // returned by Snapshot
}

func (f *fakeBase) Name() string { return f.name }
func (f *fakeBase) Counters() (probe.Counters, error) {
	return probe.Counters{Events: 7}, nil
}
func (f *fakeBase) Close() error { f.j.add("close " + f.name); return nil }
func (f *fakeBase) snapErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
func (f *fakeBase) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

type fakeFlows struct {
	fakeBase
	samples []observed.FlowSample
	deleted []observed.FlowSample
}

// Each hands every sample over before it fails, if it does: a read that
// fails part way.
func (f *fakeFlows) Each(_ time.Time, each func([]observed.FlowSample)) error {
	f.j.add("snapshot flow")
	each(f.samples)
	return f.snapErr()
}
func (f *fakeFlows) Delete(k []observed.FlowSample) error {
	f.j.add("delete flow")
	f.deleted = append(f.deleted, k...)
	return nil
}

type fakeTCP struct {
	fakeBase
	samples []observed.TCPSample
	deleted []uint64
}

func (f *fakeTCP) Each(_ time.Time, each func([]observed.TCPSample)) error {
	f.j.add("snapshot tcp")
	each(f.samples)
	return f.snapErr()
}
func (f *fakeTCP) Delete(c []uint64) error {
	f.j.add("delete tcp")
	f.deleted = append(f.deleted, c...)
	return nil
}

type fakeDrops struct {
	fakeBase
	samples []observed.DropSample
}

func (f *fakeDrops) Snapshot(time.Time) ([]observed.DropSample, error) {
	f.j.add("snapshot drop")
	return f.samples, f.snapErr()
}
func (f *fakeDrops) Delete([]observed.DropSample) error { f.j.add("delete drop"); return nil }

// withFakes wires fakes in place of start (which needs the kernel).
func withFakes(e *Node, j *journal) (*fakeFlows, *fakeTCP, *fakeDrops) {
	fl := &fakeFlows{fakeBase: fakeBase{name: ProbeFlow, j: j}}
	tc := &fakeTCP{fakeBase: fakeBase{name: ProbeTCP, j: j}}
	dr := &fakeDrops{fakeBase: fakeBase{name: ProbeDrop, j: j}}
	e.flows, e.tcp, e.drops = fl, tc, dr
	e.slots = []*slot{{name: ProbeFlow, p: fl}, {name: ProbeTCP, p: tc}, {name: ProbeDrop, p: dr}}
	e.table = flowtable.New(flowtable.Config{IdleIntervals: 2})
	return fl, tc, dr
}

var (
	local  = netip.MustParseAddrPort("10.201.0.1:40000")
	remote = netip.MustParseAddrPort("10.201.0.2:80")
)

func TestFlushJoinsAndDeletes(t *testing.T) {
	var reports []observed.Report
	e := New(Config{FlushInterval: 10 * time.Second, Flows: FlowsConfig{Enabled: true}}, nil, func(r observed.Report) { reports = append(reports, r) })
	j := &journal{}
	fl, tc, _ := withFakes(e, j)
	fl.samples = []observed.FlowSample{{Cookie: 5, Transport: observed.TransportTCP, Local: local, Remote: remote, TxBytes: 100, TxPackets: 2, RxBytes: 60, RxPackets: 1, Initiator: observed.InitiatorLocal}}
	tc.samples = []observed.TCPSample{{Cookie: 5, Local: local, Remote: remote, State: observed.TCPClose, CloseCause: observed.CloseFIN, Initiator: observed.InitiatorLocal}}

	e.flush(time.Now())
	if got, want := j.get(), []string{"snapshot drop", "snapshot tcp", "snapshot flow", "delete flow", "delete tcp"}; !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if len(reports) != 1 || len(reports[0].Flows) != 1 {
		t.Fatalf("reports %+v", reports)
	}
	f := reports[0].Flows[0]
	if !f.Closed || f.CloseCause != observed.CloseFIN || f.SourceBytes != 100 || f.DestBytes != 60 {
		t.Fatalf("final record %+v", f)
	}
	if len(fl.deleted) != 1 || fl.deleted[0].Cookie != 5 || !slices.Equal(tc.deleted, []uint64{5}) {
		t.Fatalf("deleted flows %v tcp %v", fl.deleted, tc.deleted)
	}
	if st := e.Stats(); st.FlowsActive != 0 || st.Probes[ProbeFlow].Counters.Events != 7 || len(st.Probes) != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReadErrorSkipsFlush(t *testing.T) {
	var reports []observed.Report
	e := New(Config{FlushInterval: 10 * time.Second, Flows: FlowsConfig{Enabled: true}}, nil, func(r observed.Report) { reports = append(reports, r) })
	fl, _, _ := withFakes(e, &journal{})
	fl.samples = []observed.FlowSample{{Cookie: 5, Transport: observed.TransportUDP, Local: local, Remote: remote, TxBytes: 100, TxPackets: 1}}
	e.flush(time.Now())

	readErr := errors.New("batch lookup: interrupted")
	fl.setErr(readErr)
	fl.samples[0].TxBytes = 120 // folded by the failing reads, reported after
	e.flush(time.Now())
	e.flush(time.Now())
	if len(reports) != 1 {
		t.Fatalf("failed reads must not report (or age flows): %d reports", len(reports))
	}
	if err := e.Stats().Probes[ProbeFlow].Err; !errors.Is(err, readErr) {
		t.Fatalf("stats err %v", err)
	}
	fl.setErr(nil)
	fl.samples[0].TxBytes = 150
	e.flush(time.Now())
	if len(reports) != 2 || reports[1].Flows[0].SourceBytes != 50 {
		t.Fatalf("the next good read catches up: %+v", reports)
	}
	if st := e.Stats(); st.Probes[ProbeFlow].Err != nil || st.Evicted != 0 {
		t.Fatalf("recovered: %+v", st)
	}
}

// A TCP read that fails part way skips the flush before the flows are read:
// TCP before flows holds even for a flush that does not happen.
func TestTCPReadErrorSkipsFlush(t *testing.T) {
	var reports []observed.Report
	e := New(Config{FlushInterval: 10 * time.Second, Flows: FlowsConfig{Enabled: true}}, nil, func(r observed.Report) { reports = append(reports, r) })
	j := &journal{}
	fl, tc, _ := withFakes(e, j)
	fl.samples = []observed.FlowSample{{Cookie: 5, Transport: observed.TransportTCP, Local: local, Remote: remote, TxBytes: 100, TxPackets: 2, Initiator: observed.InitiatorLocal}}
	tc.samples = []observed.TCPSample{{Cookie: 5, Local: local, Remote: remote, State: observed.TCPEstablished, Initiator: observed.InitiatorLocal}}
	readErr := errors.New("batch lookup: interrupted")
	tc.setErr(readErr)
	e.flush(time.Now())
	if got, want := j.get(), []string{"snapshot drop", "snapshot tcp"}; !slices.Equal(got, want) || len(reports) != 0 {
		t.Fatalf("calls %v (want %v), reports %+v", got, want, reports)
	}
	if err := e.Stats().Probes[ProbeTCP].Err; !errors.Is(err, readErr) {
		t.Fatalf("stats err %v", err)
	}
	tc.setErr(nil)
	e.flush(time.Now())
	if len(reports) != 1 || len(reports[0].Flows) != 1 || reports[0].Flows[0].SourceBytes != 100 {
		t.Fatalf("the next good read reports: %+v", reports)
	}
	if st := e.Stats(); st.Probes[ProbeTCP].Err != nil || st.Evicted != 0 {
		t.Fatalf("recovered: %+v", st)
	}
}

func TestLoopAndClose(t *testing.T) {
	var mu sync.Mutex
	n := 0
	var e *Node
	e = New(Config{Flows: FlowsConfig{Enabled: true}, FlushInterval: 5 * time.Millisecond}, nil, func(observed.Report) {
		_ = e.Stats() // the receiver reads stats from its sink: no deadlock
		mu.Lock()
		n++
		mu.Unlock()
	})
	j := &journal{}
	withFakes(e, j)
	e.mu.Lock()
	e.started = true
	e.run()
	e.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := n
		mu.Unlock()
		if got >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no flushes")
		}
		time.Sleep(time.Millisecond)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	after := n
	mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if n != after {
		t.Fatal("flushed after Close returned")
	}
	calls := j.get()
	if got := calls[len(calls)-3:]; !slices.Equal(got, []string{"close drop", "close tcp", "close flow"}) {
		t.Fatalf("close order %v", got)
	}
	if err := e.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	for name, ps := range e.Stats().Probes {
		if ps.Err == nil {
			t.Fatalf("probe %s reported healthy after Close", name)
		}
	}
	if err := e.Start(); err == nil {
		t.Fatal("Start after Close")
	}
}

func TestCloseWithoutStart(t *testing.T) {
	e := New(Config{}, nil, nil)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); len(st.Probes) != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestNothingEnabled(t *testing.T) {
	e := New(Config{}, nil, nil)
	if err := e.Start(); err == nil {
		t.Fatal("want error")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

// The flow table's idle limit counts flushes: the first flush at or after
// the idle timeout, whatever the flush interval.
func TestIdleIntervals(t *testing.T) {
	for _, c := range []struct {
		flush, idle time.Duration
		want        int
	}{
		{10 * time.Second, 20 * time.Second, 2}, // the defaults: two quiet flushes, as before
		{time.Second, 20 * time.Second, 20},
		{100 * time.Millisecond, 20 * time.Second, 200},
		{10 * time.Second, 25 * time.Second, 3},
		{time.Minute, 20 * time.Second, 1},
	} {
		cfg := Config{FlushInterval: c.flush, Flows: FlowsConfig{IdleTimeout: c.idle}}
		if got := cfg.idleIntervals(); got != c.want {
			t.Errorf("flush %v, idle %v: %d intervals, want %d", c.flush, c.idle, got, c.want)
		}
	}
}
