package tcpprobe

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/observed"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
)

// Config sizes the kernel map.
type Config struct {
	// MaxSockets bounds the `socks` LRU map: a busy node's open sockets plus
	// one interval of closes (~160 B of kernel memory each). The engine
	// gives it the receiver's max_flows.
	MaxSockets uint32
}

var _ probe.Probe = (*Probe)(nil)

// Probe is the loaded tcp lifecycle probe.
type Probe struct {
	objs         tcpObjects
	links        probe.Links
	decodeErrors atomic.Uint64
}

// Load loads the programs and maps into the kernel without attaching them.
func Load(cfg Config) (*Probe, error) {
	spec, err := loadTcp()
	if err != nil {
		return nil, fmt.Errorf("load tcp spec: %w", err)
	}
	spec.Maps[tcpMapSocks].MaxEntries = cfg.MaxSockets

	p := &Probe{}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load tcp probe: %+v", ve)
		}
		return nil, fmt.Errorf("load tcp probe: %w", err)
	}
	return p, nil
}

// Attach attaches the four BTF tracepoint programs.
func (p *Probe) Attach() error {
	progs := []struct {
		name string
		prog *ebpf.Program
	}{
		{"inet_sock_set_state", p.objs.TcpSetState},
		{"tcp_send_reset", p.objs.TcpSendReset},
		{"tcp_receive_reset", p.objs.TcpReceiveReset},
		{"tcp_retransmit_skb", p.objs.TcpRetransmit},
	}
	for _, pr := range progs {
		l, err := link.AttachTracing(link.TracingOptions{Program: pr.prog})
		if err != nil {
			p.links.Close()
			return fmt.Errorf("attach tcp tp_btf/%s: %w", pr.name, err)
		}
		p.links = append(p.links, l)
	}
	return nil
}

// Snapshot reads every socket entry. Entries that fail to decode are counted
// in Counters().DecodeErrors and skipped.
func (p *Probe) Snapshot(boot time.Time) ([]observed.TCPSample, error) {
	var out []observed.TCPSample
	err := p.Each(boot, func(batch []observed.TCPSample) { out = append(out, batch...) })
	return out, err
}

// Each is Snapshot handing the samples to each in batches of at most 1024
// as they are read (a batch is valid only during the call), so that the
// engine never holds every socket of the node at once.
func (p *Probe) Each(boot time.Time, each func([]observed.TCPSample)) error {
	return probe.SnapshotBatches(p.objs.Socks, func(cookie *uint64, v *tcpTcpSockInfo) (observed.TCPSample, error) {
		return decodeInfo(*cookie, v, boot)
	}, &p.decodeErrors, each)
}

// Delete removes the entries of these sockets (already reported as closed).
// Sockets the LRU already evicted are not an error.
func (p *Probe) Delete(cookies []uint64) error {
	return probe.Delete(p.objs.Socks, cookies)
}

// Counters returns the kernel loss counters plus user-space decode errors.
func (p *Probe) Counters() (probe.Counters, error) {
	c, err := probe.ReadStats(p.objs.Stats)
	if err != nil {
		return c, fmt.Errorf("tcp counters: %w", err)
	}
	c.DecodeErrors = p.decodeErrors.Load()
	return c, nil
}

// Close detaches and unloads everything.
func (p *Probe) Close() error {
	p.links.Close()
	return p.objs.Close()
}

// programs lists the loaded programs, for run-time statistics in benchmarks.
func (p *Probe) programs() []*ebpf.Program {
	return []*ebpf.Program{p.objs.TcpSetState, p.objs.TcpSendReset, p.objs.TcpReceiveReset, p.objs.TcpRetransmit}
}
