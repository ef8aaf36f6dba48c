package ebpfflowreceiver // import "github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver"

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/collector/confmap"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/clusterview"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/engine"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/pdatabuild"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/dropprobe"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/probe/httpprobe"
)

const (
	minFlushInterval = 100 * time.Millisecond
	maxMaxFlows      = 1 << 22 // 4M flows: ~0.5 GiB of kernel map at ~128 B/entry
	maxDNSPending    = 1 << 20 // pending queries held in user space, ~200 B each
	// maxMetricSeries bounds the cumulative metric series held: a few tens
	// of MB of state at worst.
	maxMetricSeries = 100000
	minHTTPCapture  = 64 // an HTTP/1 request line and a few fields
	maxHTTPConns    = 1 << 20
	// maxHTTPBuffered bounds the HTTP exchanges held between two reports
	// (one a second): some 30 MB at ~500 B each.
	maxHTTPBuffered = 1 << 16
)

// Config is the ebpfflow receiver's configuration. Every signal is on by
// default, so `receivers: {ebpfflow: {}}` shows everything on the node.
// This file is the only place where settings are defaulted, validated and
// normalised: the engine and the packages below it take engineConfig's and
// builderConfig's values as they are.
type Config struct {
	// FlushInterval is how often aggregated flows, drops and metrics are
	// emitted; a long-lived flow is reported once per interval.
	FlushInterval time.Duration `mapstructure:"flush_interval"`

	Flows FlowsConfig `mapstructure:"flows"`
	Drops DropsConfig `mapstructure:"drops"`
	DNS   DNSConfig   `mapstructure:"dns"`
	HTTP  HTTPConfig  `mapstructure:"http"`

	// ClusterCIDRs are the pod and service ranges: a destination inside
	// them has ebpfflow.destination.scope "cluster", outside "external".
	ClusterCIDRs []string `mapstructure:"cluster_cidrs"`

	// MaxFlows sizes the kernel's flow map (an LRU: beyond it the oldest
	// flows are evicted and counted as lost).
	MaxFlows int `mapstructure:"max_flows"`

	// CgroupRoot is the cgroup v2 mount whose root the flow probe attaches
	// to. Empty: found in /proc/mounts. Set it in a container with its own
	// cgroup namespace, where the host's hierarchy is mounted elsewhere
	// (e.g. /host/sys/fs/cgroup); the path must be absolute.
	CgroupRoot string `mapstructure:"cgroup_root"`

	// MetricSeriesIdleTimeout forgets a cumulative metric series that has
	// not changed for this long (Prometheus' staleness window by default);
	// it restarts from zero with a new start time if it comes back.
	MetricSeriesIdleTimeout time.Duration `mapstructure:"metric_series_idle_timeout"`

	// Kubernetes names the far end of every record from a view of the
	// cluster kept by watches (source/destination.k8s.*), finds the backend
	// behind Service addresses, and emits the workload-edge metrics.
	Kubernetes KubernetesConfig `mapstructure:"kubernetes"`

	_ struct{}
}

// KubernetesConfig controls the cluster view.
type KubernetesConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// AuthType: serviceAccount (in a pod) or kubeConfig ($KUBECONFIG or
	// ~/.kube/config, as kubectl reads it), as k8sattributes names them.
	AuthType string `mapstructure:"auth_type"`
	// Context picks a kubeconfig context (kubeConfig only; "" = current).
	Context string `mapstructure:"context"`
	// ServiceBackends looks up, in the node's connection tracking, the
	// backend that answered each connection to a Service address (needs
	// CAP_NET_ADMIN; kube-proxy in iptables or IPVS mode NATs there).
	ServiceBackends bool `mapstructure:"service_backends"`
	// AddressRetention is how long an address a pod released still names
	// it for traffic from before: at least flush_interval plus
	// flows.idle_timeout, the longest a record can trail its packets.
	AddressRetention time.Duration `mapstructure:"address_retention"`
	_                struct{}
}

// FlowsConfig controls network.flow records and the flow metrics.
type FlowsConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// IdleTimeout ends a flow with no open TCP socket behind it (UDP, or a
	// TCP connection whose close the kernel did not report) after this long
	// without a packet: its final record is emitted at the next flush.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	_           struct{}
}

// DropsConfig controls network.drop records and ebpfflow.network.drops.
type DropsConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// IgnoreReasons are kernel drop reasons (SKB_DROP_REASON_* without the
	// prefix) that are normal frees rather than drops. Names are checked
	// against the running kernel at start.
	IgnoreReasons []string `mapstructure:"ignore_reasons"`
	_             struct{}
}

// DNSConfig controls dns.lookup records and spans and dns.lookup.duration.
type DNSConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Timeout after which an unanswered query is reported as TIMEOUT.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxPending bounds the queries awaiting an answer; beyond it the oldest
	// is forgotten and counted (ebpfflow_events_lost{probe="dns",cause="evicted"}).
	MaxPending int `mapstructure:"max_pending"`
	// MetricsQuestionName adds dns.question.name to dns.lookup.duration:
	// a series per name asked, so off by default.
	MetricsQuestionName bool `mapstructure:"metrics_question_name"`
	_                   struct{}
}

// HTTPConfig controls HTTP spans and http.{server,client}.request.duration:
// plaintext HTTP/1.x, HTTP/2 and gRPC that local processes serve and send.
type HTTPConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// CaptureBytes is how many bytes of each socket read or write are copied
	// from the kernel: what is parsed must be in them (a request's or
	// response's head, HTTP/2 frame headers and header blocks); bodies are
	// followed by count. An HTTP/2 connection whose frame header falls past
	// it (one write carrying a large DATA frame and more frames after it)
	// can no longer be decoded: raise it for gRPC with large messages.
	CaptureBytes int `mapstructure:"capture_bytes"`
	// MaxConnections bounds the connections tracked at once (in the kernel
	// and in the collector); a connection beyond it is not captured and
	// counted (ebpfflow_events_lost{probe="http",cause="map_full"}).
	MaxConnections int `mapstructure:"max_connections"`
	// RequestTimeout: a request whose response has not moved for this long
	// is reported as a span with error.type "timeout".
	RequestTimeout time.Duration `mapstructure:"request_timeout"`
	_              struct{}
}

var _ confmap.Validator = (*Config)(nil)

func createDefaultConfig() *Config {
	return &Config{
		FlushInterval: 10 * time.Second,
		Flows:         FlowsConfig{Enabled: true, IdleTimeout: 20 * time.Second},
		Drops:         DropsConfig{Enabled: true, IgnoreReasons: []string{"NOT_SPECIFIED", "QUEUE_PURGE"}},
		DNS:           DNSConfig{Enabled: true, Timeout: 5 * time.Second, MaxPending: 65536},
		HTTP:          HTTPConfig{Enabled: true, CaptureBytes: 4096, MaxConnections: 16384, RequestTimeout: 2 * time.Minute},
		ClusterCIDRs: []string{
			"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", // RFC 1918
			"100.64.0.0/10", // RFC 6598 shared address space (used by several CNIs)
			"fc00::/7",      // RFC 4193 unique local addresses
		},
		// A busy node holds a few 10k connections: ~13 MB of kernel
		// memory for each of the flow and tcp maps.
		MaxFlows:                65536,
		MetricSeriesIdleTimeout: 5 * time.Minute,
		Kubernetes: KubernetesConfig{
			AuthType:         clusterview.AuthServiceAccount,
			ServiceBackends:  true,
			AddressRetention: 5 * time.Minute,
		},
	}
}

// Validate checks the configuration; each error names the offending key.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.FlushInterval < minFlushInterval {
		errs = append(errs, fmt.Errorf("flush_interval: must be at least %v, got %v", minFlushInterval, cfg.FlushInterval))
	}
	if cfg.Flows.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("flows.idle_timeout: must be positive, got %v", cfg.Flows.IdleTimeout))
	}
	if cfg.MetricSeriesIdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("metric_series_idle_timeout: must be positive, got %v", cfg.MetricSeriesIdleTimeout))
	}
	if !cfg.Flows.Enabled && !cfg.Drops.Enabled && !cfg.DNS.Enabled && !cfg.HTTP.Enabled {
		errs = append(errs, errors.New("flows.enabled, drops.enabled, dns.enabled, http.enabled: all false leaves nothing to observe"))
	}
	for i, r := range cfg.dropIgnoreReasons() {
		switch {
		case r == "":
			errs = append(errs, fmt.Errorf("drops.ignore_reasons[%d]: empty drop reason", i))
		case !dropprobe.KnownReason(r):
			errs = append(errs, fmt.Errorf("drops.ignore_reasons[%d]: unknown drop reason %q (the kernel's SKB_DROP_REASON_* names, e.g. NOT_SPECIFIED, NO_SOCKET, NETFILTER_DROP)", i, cfg.Drops.IgnoreReasons[i]))
		}
	}
	if cfg.DNS.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("dns.timeout: must be positive, got %v", cfg.DNS.Timeout))
	}
	if cfg.DNS.MaxPending < 1 || cfg.DNS.MaxPending > maxDNSPending {
		errs = append(errs, fmt.Errorf("dns.max_pending: must be between 1 and %d, got %d", maxDNSPending, cfg.DNS.MaxPending))
	}
	if cfg.HTTP.CaptureBytes < minHTTPCapture || cfg.HTTP.CaptureBytes > httpprobe.CaptureMax {
		errs = append(errs, fmt.Errorf("http.capture_bytes: must be between %d and %d, got %d", minHTTPCapture, httpprobe.CaptureMax, cfg.HTTP.CaptureBytes))
	}
	if cfg.HTTP.MaxConnections < 1 || cfg.HTTP.MaxConnections > maxHTTPConns {
		errs = append(errs, fmt.Errorf("http.max_connections: must be between 1 and %d, got %d", maxHTTPConns, cfg.HTTP.MaxConnections))
	}
	if cfg.HTTP.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("http.request_timeout: must be positive, got %v", cfg.HTTP.RequestTimeout))
	}
	if _, err := cfg.clusterPrefixes(); err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxFlows < 1 || cfg.MaxFlows > maxMaxFlows {
		errs = append(errs, fmt.Errorf("max_flows: must be between 1 and %d, got %d", maxMaxFlows, cfg.MaxFlows))
	}
	if cfg.CgroupRoot != "" && !filepath.IsAbs(cfg.CgroupRoot) {
		errs = append(errs, fmt.Errorf("cgroup_root: must be an absolute path, got %q", cfg.CgroupRoot))
	}
	if k := &cfg.Kubernetes; k.Enabled {
		switch k.AuthType {
		case clusterview.AuthServiceAccount, clusterview.AuthKubeConfig:
		default:
			errs = append(errs, fmt.Errorf("kubernetes.auth_type: must be %s or %s, got %q", clusterview.AuthServiceAccount, clusterview.AuthKubeConfig, k.AuthType))
		}
		if k.Context != "" && k.AuthType != clusterview.AuthKubeConfig {
			errs = append(errs, fmt.Errorf("kubernetes.context: only with auth_type %s", clusterview.AuthKubeConfig))
		}
		if least := cfg.FlushInterval + cfg.Flows.IdleTimeout; k.AddressRetention < least {
			errs = append(errs, fmt.Errorf("kubernetes.address_retention: must be at least flush_interval + flows.idle_timeout (%v), got %v", least, k.AddressRetention))
		}
	}
	return errors.Join(errs...)
}

// clusterPrefixes parses cluster_cidrs. Host bits are masked off, so
// "10.1.2.3/8" means 10.0.0.0/8.
func (cfg *Config) clusterPrefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cfg.ClusterCIDRs))
	var errs []error
	for i, s := range cfg.ClusterCIDRs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster_cidrs[%d]: %w", i, err))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}

// engineConfig is what the engine runs with. Validate has passed.
func (cfg *Config) engineConfig() (engine.Config, error) {
	prefixes, err := cfg.clusterPrefixes()
	if err != nil {
		return engine.Config{}, err
	}
	return engine.Config{
		FlushInterval: cfg.FlushInterval,
		Flows: engine.FlowsConfig{
			Enabled:     cfg.Flows.Enabled,
			MaxFlows:    uint32(cfg.MaxFlows), // Validate bounds it to 1..1<<22
			IdleTimeout: cfg.Flows.IdleTimeout,
		},
		Drops: engine.DropsConfig{Enabled: cfg.Drops.Enabled, IgnoreReasons: cfg.dropIgnoreReasons()},
		DNS:   engine.DNSConfig{Enabled: cfg.DNS.Enabled, Timeout: cfg.DNS.Timeout, MaxPending: cfg.DNS.MaxPending},
		HTTP: engine.HTTPConfig{
			Enabled:        cfg.HTTP.Enabled,
			CaptureBytes:   cfg.HTTP.CaptureBytes,
			MaxConns:       cfg.HTTP.MaxConnections,
			RequestTimeout: cfg.HTTP.RequestTimeout,
			MaxBuffered:    maxHTTPBuffered,
		},
		ClusterCIDRs: prefixes,
		CgroupRoot:   cfg.CgroupRoot,
	}, nil
}

// viewConfig is what the cluster view runs with (without its client).
// Validate has passed.
func (cfg *Config) viewConfig() clusterview.Config {
	prefixes, _ := cfg.clusterPrefixes()
	return clusterview.Config{ClusterCIDRs: prefixes, Retention: cfg.Kubernetes.AddressRetention}
}

// builderConfig is what the pdata builder runs with.
func (cfg *Config) builderConfig(version, nodeName, hostName string) pdatabuild.Config {
	return pdatabuild.Config{
		NodeName:                 nodeName,
		HostName:                 hostName,
		ScopeVersion:             version,
		DNSQuestionNameOnMetrics: cfg.DNS.MetricsQuestionName,
		SeriesIdleTimeout:        cfg.MetricSeriesIdleTimeout,
		MaxSeries:                maxMetricSeries,
	}
}

// dropIgnoreReasons returns the reasons as the kernel names them, accepting
// the full SKB_DROP_REASON_ form too.
func (cfg *Config) dropIgnoreReasons() []string {
	out := make([]string, 0, len(cfg.Drops.IgnoreReasons))
	for _, r := range cfg.Drops.IgnoreReasons {
		out = append(out, strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(r)), "SKB_DROP_REASON_"))
	}
	return out
}
