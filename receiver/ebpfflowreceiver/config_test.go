package ebpfflowreceiver

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/engine"
	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig()
	full.FlushInterval = 2 * time.Second
	full.Flows = FlowsConfig{Enabled: true, IdleTimeout: 30 * time.Second}
	full.MetricSeriesIdleTimeout = 10 * time.Minute
	full.Drops = DropsConfig{Enabled: false, IgnoreReasons: []string{"NOT_SPECIFIED", "SKB_DROP_REASON_SOCKET_FILTER"}}
	full.DNS = DNSConfig{Enabled: false, Timeout: 2 * time.Second, MaxPending: 1000, MetricsQuestionName: true}
	full.HTTP = HTTPConfig{Enabled: false, CaptureBytes: 16384, MaxConnections: 1000, RequestTimeout: 30 * time.Second}
	full.ClusterCIDRs = []string{"10.244.0.0/16", "10.96.0.0/12", "fd00:10::/56"}
	full.MaxFlows = 131072
	full.CgroupRoot = "/host/sys/fs/cgroup"
	full.Kubernetes = KubernetesConfig{Enabled: true, AuthType: "kubeConfig", Context: "staging", AddressRetention: 2 * time.Minute}

	tests := []struct {
		name      string // the receiver's name in testdata/config.yaml
		want      *Config
		errSubstr []string // Validate errors, each naming its key
		unmarshal bool     // the error comes from unmarshalling
	}{
		{name: "", want: createDefaultConfig()}, // plain "ebpfflow"
		{name: "full", want: full},
		{name: "flush_interval_too_short", errSubstr: []string{"flush_interval: must be at least 100ms, got 50ms"}},
		{name: "bad_cluster_cidr", errSubstr: []string{`cluster_cidrs[1]: netip.ParsePrefix("10.0.0.0/33")`, `cluster_cidrs[2]: netip.ParsePrefix("not-a-cidr")`}},
		{name: "relative_cgroup_root", errSubstr: []string{`cgroup_root: must be an absolute path, got "sys/fs/cgroup"`}},
		{name: "max_flows_zero", errSubstr: []string{"max_flows: must be between 1 and 4194304, got 0"}},
		{name: "max_flows_too_large", errSubstr: []string{"max_flows: must be between 1 and 4194304, got 4194305"}},
		{name: "dns_timeout_zero", errSubstr: []string{"dns.timeout: must be positive, got 0s"}},
		{name: "dns_max_pending_zero", errSubstr: []string{"dns.max_pending: must be between 1 and 1048576, got 0"}},
		{name: "flows_idle_timeout_zero", errSubstr: []string{"flows.idle_timeout: must be positive, got 0s"}},
		{name: "metric_series_idle_timeout_zero", errSubstr: []string{"metric_series_idle_timeout: must be positive, got 0s"}},
		{name: "empty_ignore_reason", errSubstr: []string{"drops.ignore_reasons[1]: empty drop reason"}},
		{name: "unknown_ignore_reason", errSubstr: []string{`drops.ignore_reasons[1]: unknown drop reason "NETFILTER"`}},
		{name: "nothing_enabled", errSubstr: []string{"flows.enabled, drops.enabled, dns.enabled, http.enabled: all false leaves nothing to observe"}},
		{name: "http_capture_too_small", errSubstr: []string{"http.capture_bytes: must be between 64 and 16384, got 10"}},
		{name: "http_capture_too_large", errSubstr: []string{"http.capture_bytes: must be between 64 and 16384, got 16385"}},
		{name: "http_max_connections_zero", errSubstr: []string{"http.max_connections: must be between 1 and 1048576, got 0"}},
		{name: "http_request_timeout_zero", errSubstr: []string{"http.request_timeout: must be positive, got 0s"}},
		{name: "unknown_key", errSubstr: []string{"flush_intervall"}, unmarshal: true},
		{name: "kubernetes_bad_auth", errSubstr: []string{`kubernetes.auth_type: must be serviceAccount or kubeConfig, got "token"`}},
		{name: "kubernetes_context_in_cluster", errSubstr: []string{"kubernetes.context: only with auth_type kubeConfig"}},
		{name: "kubernetes_retention_too_short", errSubstr: []string{"kubernetes.address_retention: must be at least flush_interval + flows.idle_timeout (30s), got 25s"}},
	}
	for _, tt := range tests {
		id := component.NewIDWithName(metadata.Type, tt.name)
		t.Run(id.String(), func(t *testing.T) {
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			cfg := NewFactory().CreateDefaultConfig()
			err = sub.Unmarshal(cfg)
			if tt.unmarshal {
				require.Error(t, err)
				for _, s := range tt.errSubstr {
					assert.ErrorContains(t, err, s)
				}
				return
			}
			require.NoError(t, err)
			err = confmap.Validate(cfg)
			if tt.errSubstr == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, cfg)
				return
			}
			require.Error(t, err)
			for _, s := range tt.errSubstr {
				assert.ErrorContains(t, err, s)
			}
		})
	}
}

func TestClusterPrefixes(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.ClusterCIDRs = []string{"10.1.2.3/8", " fd00::/8 "}
	got, err := cfg.clusterPrefixes()
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}, got)

	def, err := createDefaultConfig().clusterPrefixes()
	require.NoError(t, err)
	for _, a := range []string{"10.244.1.5", "172.20.0.1", "192.168.1.1", "100.64.3.4", "fd12::1"} {
		assert.True(t, containsAddr(def, netip.MustParseAddr(a)), a)
	}
	for _, a := range []string{"8.8.8.8", "2001:db8::1", "100.128.0.1"} {
		assert.False(t, containsAddr(def, netip.MustParseAddr(a)), a)
	}
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func TestDropIgnoreReasonsNormalised(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Drops.IgnoreReasons = []string{"NOT_SPECIFIED", "SKB_DROP_REASON_SOCKET_FILTER", " tcp_csum "}
	assert.Equal(t, []string{"NOT_SPECIFIED", "SOCKET_FILTER", "TCP_CSUM"}, cfg.dropIgnoreReasons())
}

// engineConfig passes every setting down as it is, normalised once here.
func TestEngineConfigCarriesTheSettings(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Drops.IgnoreReasons = []string{"skb_drop_reason_no_socket", " queue_purge "}
	cfg.ClusterCIDRs = []string{"10.1.2.3/8"}
	got, err := cfg.engineConfig()
	require.NoError(t, err)
	assert.Equal(t, engine.Config{
		FlushInterval: 10 * time.Second,
		Flows:         engine.FlowsConfig{Enabled: true, MaxFlows: 65536, IdleTimeout: 20 * time.Second},
		Drops:         engine.DropsConfig{Enabled: true, IgnoreReasons: []string{"NO_SOCKET", "QUEUE_PURGE"}},
		DNS:           engine.DNSConfig{Enabled: true, Timeout: 5 * time.Second, MaxPending: 65536},
		HTTP:          engine.HTTPConfig{Enabled: true, CaptureBytes: 4096, MaxConns: 16384, RequestTimeout: 2 * time.Minute, MaxBuffered: maxHTTPBuffered},
		ClusterCIDRs:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}, got)
	b := cfg.builderConfig("1.2.3", "node", "host")
	assert.Equal(t, 5*time.Minute, b.SeriesIdleTimeout)
	assert.Equal(t, maxMetricSeries, b.MaxSeries)
}
