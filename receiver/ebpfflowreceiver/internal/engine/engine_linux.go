package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/cilium/ebpf/rlimit"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/conntrack"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/dnsmatch"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/flowtable"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/identity"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/kallsyms"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/preflight"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/dnsprobe"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/dropprobe"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/flowprobe"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/httpprobe"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/tcpprobe"
)

// start runs preflight, loads and attaches the enabled probes and builds the
// flow table. Callers hold e.mu; on error they close what was loaded.
func (e *Node) start() error {
	if !e.cfg.Flows.Enabled && !e.cfg.Drops.Enabled && !e.cfg.DNS.Enabled && !e.cfg.HTTP.Enabled {
		return errors.New("no probe enabled: enable flows, drops, dns or http")
	}
	var matcher *dnsmatch.Matcher
	if e.cfg.DNS.Enabled {
		m, err := dnsmatch.New(dnsmatch.Config{Timeout: e.cfg.DNS.Timeout, MaxPending: e.cfg.DNS.MaxPending})
		if err != nil {
			return fmt.Errorf("dns: %w", err)
		}
		matcher = m
	}
	var httpPath *httpPath
	if e.cfg.HTTP.Enabled {
		h, err := newHTTPPath(nil, e.cfg.HTTP, e.log)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		httpPath = h
	}
	pre, err := preflight.Check(preflight.Options{MountMissing: true, CgroupV2Root: e.cfg.CgroupRoot})
	if err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	for _, w := range pre.Warnings {
		e.log.Warn("preflight", zap.Error(w))
	}
	if len(pre.Mounted) > 0 {
		e.log.Info("mounted missing filesystems", zap.Strings("paths", pre.Mounted))
	}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK (a 64 KiB default
	// on many distributions); later ones to the cgroup, and this is a no-op.
	if err := rlimit.RemoveMemlock(); err != nil {
		e.log.Warn("cannot raise RLIMIT_MEMLOCK: on kernels before 5.11 map creation may fail; grant CAP_SYS_RESOURCE or run with `ulimit -l unlimited`",
			zap.Error(err))
	}
	if e.boot, err = bootTime(); err != nil {
		return err
	}

	// One program per packet and direction counts flows and captures DNS:
	// with both enabled, the dns probe reads the flow probe's capture.
	var fp *flowprobe.Probe
	if e.cfg.Flows.Enabled {
		fp, err = loadFlow(e.cfg.Flows.MaxFlows, e.cfg.DNS.Enabled, pre.CgroupV2Root)
		e.addSlot(ProbeFlow, fp, err)
		if err == nil {
			e.flows = fp
			if e.flowOwnerErr = fp.OwnerError(); e.flowOwnerErr != nil {
				e.log.Warn("flows carry no process.pid or process.executable.name: the kernel refused the socket-owner program",
					zap.String("probe", ProbeFlowOwner), zap.Error(e.flowOwnerErr))
			}
		}
		tp, err := loadTCP(e.cfg.Flows.MaxFlows)
		e.addSlot(ProbeTCP, tp, err)
		if err == nil {
			e.tcp = tp
		}
	}
	var dp *dropprobe.Probe
	if e.cfg.Drops.Enabled {
		dp, err = loadDrop(e.cfg.Drops.IgnoreReasons)
		e.addSlot(ProbeDrop, dp, err)
		if err == nil {
			e.drops = dp
			if absent := dp.AbsentIgnoreReasons(); len(absent) > 0 {
				e.log.Warn("drops.ignore_reasons: this kernel has no such drop reason (another kernel line's); nothing to ignore",
					zap.Strings("reasons", absent))
			}
		}
	}

	if e.cfg.DNS.Enabled {
		var np *dnsprobe.Probe
		if e.flows != nil {
			np, err = dnsprobe.Of(fp)
		} else {
			np, err = loadDNS(pre.CgroupV2Root) // DNS alone, or the flow probe failed
		}
		e.addSlot(ProbeDNS, np, err)
		if err == nil {
			e.dns, e.matcher = np, matcher
		}
	}

	if httpPath != nil {
		hp, err := loadHTTP(e.cfg.HTTP)
		e.addSlot(ProbeHTTP, hp, err)
		if err == nil {
			httpPath.src, e.http = httpProbe{hp}, httpPath
		}
	}

	var failed []error
	var live, down []string
	for _, s := range e.slots {
		if s.err != nil {
			failed = append(failed, fmt.Errorf("probe %s: %w", s.name, s.err))
			down = append(down, s.name)
			e.log.Warn("probe failed; running without it", zap.String("probe", s.name), zap.Error(s.err))
		} else {
			live = append(live, s.name)
		}
	}
	if len(live) == 0 {
		return fmt.Errorf("every enabled probe failed: %w", errors.Join(failed...))
	}

	res := identity.NewResolver(pre.CgroupV2Root)
	e.identity = res.Workload
	cfg := flowtable.Config{
		Identity:      res.Workload,
		IsNodeAddr:    res.IsHostAddr,
		ClusterCIDRs:  e.cfg.ClusterCIDRs,
		IdleIntervals: e.cfg.idleIntervals(),
	}
	if dp != nil {
		cfg.ReasonName = dp.ReasonName
		syms, err := kallsyms.Load("/proc/kallsyms")
		switch {
		case err != nil:
			e.log.Warn("drop locations stay hexadecimal: cannot read kernel symbols", zap.Error(err))
		case syms.Hidden():
			e.log.Warn("drop locations stay hexadecimal: /proc/kallsyms hides addresses (kernel.kptr_restrict; run as root or grant CAP_SYSLOG)")
		}
		if err == nil {
			cfg.Symbol, e.syms = syms.Symbol, syms
		}
	}
	e.table = flowtable.New(cfg)
	if e.cfg.Services != nil {
		ct, err := conntrack.Open()
		if err != nil {
			e.backendsErr = fmt.Errorf("service backends: %w", err)
			e.log.Warn("connections to Services carry no backend: cannot query connection tracking (needs CAP_NET_ADMIN)", zap.Error(err))
		} else {
			e.backends = newBackends(e.cfg.Services, conntrackSource{ct})
		}
	}
	e.log.Info("ebpfflow engine started", zap.String("cgroup2", pre.CgroupV2Root),
		zap.Strings("probes", live), zap.Strings("failed_probes", down), zap.Duration("flush_interval", e.cfg.FlushInterval))
	return nil
}

// conntrackSource is the node's connection tracking as a replySource.
type conntrackSource struct{ *conntrack.Client }

func (c conntrackSource) ReplySource(proto uint8, src, dst netip.AddrPort) (netip.AddrPort, bool, error) {
	ap, err := c.Client.ReplySource(proto, src, dst)
	if errors.Is(err, conntrack.ErrNotFound) {
		return netip.AddrPort{}, false, nil
	}
	return ap, err == nil, err
}

// addSlot records a probe. On error p is a typed nil and is not kept.
func (e *Node) addSlot(name string, p probe.Probe, err error) {
	s := &slot{name: name, err: err}
	if err == nil {
		s.p = p
	}
	e.slots = append(e.slots, s)
}

func loadFlow(maxFlows uint32, dns bool, cgroupRoot string) (*flowprobe.Probe, error) {
	p, err := flowprobe.Load(flowprobe.Config{MaxFlows: maxFlows, DNS: dns})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := p.Attach(cgroupRoot); err != nil {
		return nil, errors.Join(fmt.Errorf("attach to cgroup %s: %w", cgroupRoot, err), p.Close())
	}
	return p, nil
}

func loadDNS(cgroupRoot string) (*dnsprobe.Probe, error) {
	p, err := dnsprobe.Load(dnsprobe.Config{})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := p.Attach(cgroupRoot); err != nil {
		return nil, errors.Join(fmt.Errorf("attach to cgroup %s: %w", cgroupRoot, err), p.Close())
	}
	return p, nil
}

// httpProbe adapts the http probe's reader to the engine's handler type.
type httpProbe struct{ *httpprobe.Probe }

func (p httpProbe) Run(ctx context.Context, boot time.Time, h httpHandler) error {
	return p.Probe.Run(ctx, boot, h)
}

func loadHTTP(cfg HTTPConfig) (*httpprobe.Probe, error) {
	p, err := httpprobe.Load(httpprobe.Config{
		CaptureBytes: cfg.CaptureBytes,
		MaxConns:     uint32(cfg.MaxConns),
		// The collector's own exports are not captured: each would be a
		// span of the export that carries it.
		SelfPID: uint32(os.Getpid()),
	})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := p.Attach(); err != nil {
		return nil, errors.Join(fmt.Errorf("attach: %w", err), p.Close())
	}
	return p, nil
}

func loadTCP(maxSockets uint32) (*tcpprobe.Probe, error) {
	p, err := tcpprobe.Load(tcpprobe.Config{MaxSockets: maxSockets})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := p.Attach(); err != nil {
		return nil, errors.Join(fmt.Errorf("attach: %w", err), p.Close())
	}
	return p, nil
}

func loadDrop(ignore []string) (*dropprobe.Probe, error) {
	p, err := dropprobe.Load(dropprobe.Config{IgnoreReasons: ignore})
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := p.Attach(); err != nil {
		return nil, errors.Join(fmt.Errorf("attach: %w", err), p.Close())
	}
	return p, nil
}

// bootTime is the wall-clock time of boot, to convert the probes'
// bpf_ktime_get_boot_ns (CLOCK_BOOTTIME: counts suspend) to time.Time.
func bootTime() (time.Time, error) {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, fmt.Errorf("read CLOCK_BOOTTIME: %w", err)
	}
	return now.Add(-time.Duration(ts.Nano())), nil
}
