package manifests

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

const (
	dir   = "../../distribution/k8s"
	chart = "../../distribution/helm/ebpfflow"
	// generated is the file `make manifests` renders from the chart.
	generated = "ebpfflow.yaml"
)

type objects struct {
	namespaces []corev1.Namespace
	configMaps []corev1.ConfigMap
	daemonSets []appsv1.DaemonSet
	accounts   []corev1.ServiceAccount
	roles      []rbacv1.ClusterRole
	bindings   []rbacv1.ClusterRoleBinding
}

// decode strictly decodes every document into its API type.
func decode(t *testing.T, name string, data []byte) objects {
	t.Helper()
	var o objects
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s doc %d: %v", name, i, err)
		}
		into := func(v any) {
			if err := yaml.UnmarshalStrict(doc, v); err != nil {
				t.Fatalf("%s doc %d (%s): %v", name, i, meta.Kind, err)
			}
		}
		switch meta.APIVersion + "/" + meta.Kind {
		case "v1/Namespace":
			var v corev1.Namespace
			into(&v)
			o.namespaces = append(o.namespaces, v)
		case "v1/ConfigMap":
			var v corev1.ConfigMap
			into(&v)
			o.configMaps = append(o.configMaps, v)
		case "v1/ServiceAccount":
			var v corev1.ServiceAccount
			into(&v)
			o.accounts = append(o.accounts, v)
		case "apps/v1/DaemonSet":
			var v appsv1.DaemonSet
			into(&v)
			o.daemonSets = append(o.daemonSets, v)
		case "rbac.authorization.k8s.io/v1/ClusterRole":
			var v rbacv1.ClusterRole
			into(&v)
			o.roles = append(o.roles, v)
		case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
			var v rbacv1.ClusterRoleBinding
			into(&v)
			o.bindings = append(o.bindings, v)
		default:
			t.Fatalf("%s doc %d: unexpected %s %s", name, i, meta.APIVersion, meta.Kind)
		}
	}
	return o
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		if !strings.HasPrefix(strings.TrimSpace(sc.Text()), "#") {
			out.Write(sc.Bytes())
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// load decodes the plain manifests.
func load(t *testing.T) objects {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	var all objects
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		o := decode(t, f, data)
		all.namespaces = append(all.namespaces, o.namespaces...)
		all.configMaps = append(all.configMaps, o.configMaps...)
		all.daemonSets = append(all.daemonSets, o.daemonSets...)
		all.accounts = append(all.accounts, o.accounts...)
		all.roles = append(all.roles, o.roles...)
		all.bindings = append(all.bindings, o.bindings...)
	}
	return all
}

// helm returns the helm binary tests/kube/build.sh caches (its version is
// pinned in tests/kube/tools/go.mod).
func helm(t *testing.T) string {
	t.Helper()
	mod, err := os.ReadFile("../kube/tools/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var version string
	for _, l := range strings.Split(string(mod), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "helm.sh/helm/v4" {
			version = f[1]
		}
	}
	cache := os.Getenv("EBPFFLOW_CACHE")
	if cache == "" {
		cache = "/var/cache/ebpfflow"
	}
	bin := filepath.Join(cache, "helm-"+version, "helm")
	if _, err := os.Stat(bin); err != nil {
		testkit.Skip(t, "helm "+version+" not built (tests/kube/build.sh): "+err.Error())
	}
	return bin
}

// render runs helm template on the chart with the values given.
func render(t *testing.T, set ...string) []byte {
	t.Helper()
	args := []string{"template", "ebpfflow", chart, "--namespace", "ebpfflow"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(helm(t), args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("helm %v: %v\n%s", args, err, stderr)
	}
	return out
}

// TestGeneratedFromChart: the plain manifests are the chart rendered with
// its defaults (`make manifests`), and helm lint passes.
func TestGeneratedFromChart(t *testing.T) {
	want := render(t)
	got, err := os.ReadFile(filepath.Join(dir, generated))
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := bytes.Cut(got, []byte("\n"))
	if !bytes.Equal(body, want) {
		t.Fatalf("%s differs from the chart rendered with its defaults: run `make manifests`", generated)
	}
	if out, err := exec.Command(helm(t), "lint", "--strict", chart).CombinedOutput(); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s", err, out)
	}
}

func TestNamespaceAllowsThePod(t *testing.T) {
	o := load(t)
	if len(o.namespaces) != 1 || o.namespaces[0].Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Fatalf("want one Namespace enforcing the privileged Pod Security Standard, got %+v", o.namespaces)
	}
	for _, ds := range o.daemonSets {
		if ds.Namespace != o.namespaces[0].Name {
			t.Errorf("DaemonSet in %q, the Namespace is %q", ds.Namespace, o.namespaces[0].Name)
		}
	}
}

// wantCaps are exactly the capabilities the probes need (README: Required
// privileges).
var wantCaps = []corev1.Capability{"BPF", "PERFMON", "NET_ADMIN", "SYS_PTRACE", "SYSLOG", "SYS_RESOURCE"}

func TestDaemonSet(t *testing.T) {
	checkDaemonSet(t, load(t), wantCaps)
}

func checkDaemonSet(t *testing.T, o objects, caps []corev1.Capability) {
	t.Helper()
	if len(o.daemonSets) != 1 {
		t.Fatalf("want 1 DaemonSet, got %d", len(o.daemonSets))
	}
	ds := o.daemonSets[0]
	spec := ds.Spec.Template.Spec
	if !spec.HostPID {
		t.Error("hostPID must be true: process attribution reads /proc/<host pid>")
	}
	if !spec.HostNetwork {
		t.Error("hostNetwork must be true: pod IP inference and conntrack need the host's network namespace")
	}
	if spec.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("nodeSelector %v: want kubernetes.io/os=linux", spec.NodeSelector)
	}
	if got := ds.Spec.Selector.MatchLabels; !mapsSubset(got, ds.Spec.Template.Labels) {
		t.Errorf("selector %v does not match template labels %v", got, ds.Spec.Template.Labels)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("want 1 container, got %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("container needs an explicit securityContext with capabilities")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged: true is forbidden; use explicit capabilities")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem must be true")
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities.drop = %v, want [ALL]", sc.Capabilities.Drop)
	}
	if got := slices.Sorted(slices.Values(sc.Capabilities.Add)); !slices.Equal(got, slices.Sorted(slices.Values(caps))) {
		t.Errorf("capabilities.add = %v, want exactly %v", got, caps)
	}

	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["K8S_NODE_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Error("K8S_NODE_NAME must come from the downward API (spec.nodeName)")
	}
	if e := env["K8S_POD_IP"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Error("K8S_POD_IP must come from the downward API (status.podIP)")
	}
	limit := c.Resources.Limits[corev1.ResourceMemory]
	if limit.IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources need a memory limit and cpu/memory requests: %+v", c.Resources)
	}
	if e, ok := env["GOMEMLIMIT"]; ok {
		gl, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
		if err != nil || gl.Cmp(limit) >= 0 {
			t.Errorf("GOMEMLIMIT %s must be below the memory limit %s", e.Value, limit.String())
		}
	}
	if !slices.Contains(c.Args, "--feature-gates=+extension.healthcheck.useComponentStatus") {
		t.Errorf("args %v: health_check must report component status (the probes' health)", c.Args)
	}
	health := -1
	for _, p := range c.Ports {
		if p.Name == "health" {
			health = int(p.ContainerPort)
		}
	}
	if r := c.ReadinessProbe; r == nil || r.HTTPGet == nil || r.HTTPGet.Path != "/status" || r.HTTPGet.Port.String() != "health" {
		t.Errorf("readinessProbe must GET /status on the health port: %+v", r)
	}
	if l := c.LivenessProbe; l == nil || l.TCPSocket == nil || l.TCPSocket.Port.String() != "health" {
		t.Errorf("livenessProbe must check the health port: %+v", l)
	}

	// Host paths: exactly those the probes and the queue need, read-only
	// except the queue, each at the path the receiver looks at.
	vols := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			vols[v.Name] = v.HostPath.Path
		}
	}
	var mounted []string
	for _, m := range c.VolumeMounts {
		p, ok := vols[m.Name]
		if !ok {
			continue
		}
		if p != m.MountPath {
			t.Errorf("volume %s: host %s mounted at %s; the receiver looks at the host path", m.Name, p, m.MountPath)
		}
		if m.ReadOnly == (p == "/var/lib/ebpfflow/queue") {
			t.Errorf("%s: readOnly %v", p, m.ReadOnly)
		}
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			t.Errorf("%s: Bidirectional propagation requires privileged", m.MountPath)
		}
		mounted = append(mounted, p)
	}
	slices.Sort(mounted)
	if want := []string{"/sys/fs/cgroup", "/sys/kernel/btf", "/sys/kernel/tracing", "/var/lib/ebpfflow/queue"}; !slices.Equal(mounted, want) {
		t.Errorf("host paths mounted %v, want exactly %v", mounted, want)
	}

	checkRBAC(t, o, ds)
	checkConfig(t, o, health)
}

// checkRBAC: the ServiceAccount exists and is bound to a read-only role
// holding exactly what k8sattributes and the cluster view read.
func checkRBAC(t *testing.T, o objects, ds appsv1.DaemonSet) {
	t.Helper()
	sa := ds.Spec.Template.Spec.ServiceAccountName
	if !slices.ContainsFunc(o.accounts, func(a corev1.ServiceAccount) bool { return a.Name == sa && a.Namespace == ds.Namespace }) {
		t.Errorf("service account %s/%s not defined", ds.Namespace, sa)
	}
	var role *rbacv1.ClusterRole
	for _, b := range o.bindings {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == ds.Namespace {
				for i := range o.roles {
					if o.roles[i].Name == b.RoleRef.Name {
						role = &o.roles[i]
					}
				}
			}
		}
	}
	if role == nil {
		t.Fatalf("no ClusterRole bound to service account %s", sa)
	}
	got := map[string][]string{}
	for _, r := range role.Rules {
		if !slices.Equal(r.Verbs, []string{"get", "list", "watch"}) {
			t.Errorf("rule %v: verbs %v, want exactly get, list, watch", r.Resources, r.Verbs)
		}
		for _, g := range r.APIGroups {
			got[g] = append(got[g], r.Resources...)
		}
	}
	for g := range got {
		slices.Sort(got[g])
	}
	want := map[string][]string{"": {"nodes", "pods", "services"}, "discovery.k8s.io": {"endpointslices"}}
	if len(got) != len(want) || !slices.Equal(got[""], want[""]) || !slices.Equal(got["discovery.k8s.io"], want["discovery.k8s.io"]) {
		t.Errorf("ClusterRole %s grants %v, want exactly %v", role.Name, got, want)
	}
}

type collectorConfig struct {
	Receivers map[string]struct {
		Kubernetes struct {
			Enabled  bool   `json:"enabled"`
			AuthType string `json:"auth_type"`
		} `json:"kubernetes"`
	} `json:"receivers"`
	Processors map[string]struct {
		Filter struct {
			NodeFromEnvVar string `json:"node_from_env_var"`
		} `json:"filter"`
		Passthrough    bool `json:"passthrough"`
		PodAssociation []struct {
			Sources []struct{ From, Name string } `json:"sources"`
		} `json:"pod_association"`
	} `json:"processors"`
	Exporters map[string]struct {
		SendingQueue struct {
			Storage string `json:"storage"`
		} `json:"sending_queue"`
	} `json:"exporters"`
	Extensions map[string]struct {
		HTTP struct {
			Endpoint string `json:"endpoint"`
			Status   struct {
				Enabled bool   `json:"enabled"`
				Path    string `json:"path"`
			} `json:"status"`
		} `json:"http"`
		Directory string `json:"directory"`
	} `json:"extensions"`
	Service struct {
		Extensions []string `json:"extensions"`
		Pipelines  map[string]struct {
			Receivers  []string `json:"receivers"`
			Processors []string `json:"processors"`
			Exporters  []string `json:"exporters"`
		} `json:"pipelines"`
	} `json:"service"`
}

func checkConfig(t *testing.T, o objects, healthPort int) {
	t.Helper()
	if len(o.configMaps) != 1 {
		t.Fatalf("want 1 ConfigMap, got %d", len(o.configMaps))
	}
	raw, ok := o.configMaps[0].Data["config.yaml"]
	if !ok {
		t.Fatal("ConfigMap lacks config.yaml")
	}
	var cfg collectorConfig
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	if k := cfg.Receivers["ebpfflow"].Kubernetes; !k.Enabled || k.AuthType != "serviceAccount" {
		t.Errorf("receiver kubernetes = %+v, want enabled with the ServiceAccount", k)
	}
	k8s, ok := cfg.Processors["k8s_attributes"]
	if !ok {
		t.Fatal("config has no k8s_attributes processor")
	}
	if k8s.Filter.NodeFromEnvVar != "K8S_NODE_NAME" || k8s.Passthrough {
		t.Errorf("k8s_attributes: filter.node_from_env_var %q passthrough %v", k8s.Filter.NodeFromEnvVar, k8s.Passthrough)
	}
	var names []string
	for _, r := range k8s.PodAssociation {
		for _, s := range r.Sources {
			names = append(names, s.From+":"+s.Name)
		}
	}
	for _, want := range []string{"resource_attribute:k8s.pod.uid", "resource_attribute:k8s.pod.ip", "resource_attribute:container.id"} {
		if !slices.Contains(names, want) {
			t.Errorf("pod_association lacks %s (have %v)", want, names)
		}
	}
	for _, sig := range []string{"logs", "metrics", "traces"} {
		p, ok := cfg.Service.Pipelines[sig]
		if !ok || !slices.Contains(p.Receivers, "ebpfflow") {
			t.Errorf("no %s pipeline from the ebpfflow receiver", sig)
			continue
		}
		i, s, j := slices.Index(p.Processors, "k8s_attributes"), slices.Index(p.Processors, "transform/service_name"), slices.Index(p.Processors, "batch")
		if i < 0 || s < i || j < s {
			t.Errorf("pipeline %s: k8s_attributes, then transform/service_name, then batch: %v", sig, p.Processors)
		}
		for _, e := range p.Exporters {
			if cfg.Exporters[e].SendingQueue.Storage != "file_storage" {
				t.Errorf("pipeline %s: exporter %s does not queue on file_storage", sig, e)
			}
		}
	}
	fs, ok := cfg.Extensions["file_storage"]
	if !ok || fs.Directory != "/var/lib/ebpfflow/queue" || !slices.Contains(cfg.Service.Extensions, "file_storage") {
		t.Errorf("file_storage must be on, in /var/lib/ebpfflow/queue: %+v", fs)
	}
	hc := cfg.Extensions["health_check"].HTTP
	if !hc.Status.Enabled || hc.Status.Path != "/status" || !strings.HasSuffix(hc.Endpoint, ":"+strconv.Itoa(healthPort)) {
		t.Errorf("health_check http %+v: want /status on the health port %d", hc, healthPort)
	}
}

// TestChartValues: the values that change what the agent may do change
// exactly that.
func TestChartValues(t *testing.T) {
	t.Run("without sys_resource", func(t *testing.T) {
		o := decode(t, "render", render(t, "capabilities.sysResource=false"))
		c := o.daemonSets[0].Spec.Template.Spec.Containers[0]
		if slices.Contains(c.SecurityContext.Capabilities.Add, "SYS_RESOURCE") {
			t.Error("SYS_RESOURCE still added")
		}
	})
	t.Run("namespace labels grant namespaces", func(t *testing.T) {
		o := decode(t, "render", render(t, "k8sattributes.extract.labels[0].key=team", "k8sattributes.extract.labels[0].from=namespace"))
		if !allows(&o.roles[0], "", "namespaces", "get", "list", "watch") {
			t.Errorf("role %v lacks namespaces", o.roles[0].Rules)
		}
		o = decode(t, "render", render(t))
		if allows(&o.roles[0], "", "namespaces", "list") {
			t.Error("namespaces granted without a namespace rule")
		}
	})
	t.Run("without the cluster view", func(t *testing.T) {
		o := decode(t, "render", render(t, "kubernetes.enabled=false"))
		for _, r := range []string{"services", "nodes"} {
			if allows(&o.roles[0], "", r, "list") {
				t.Errorf("%s granted without the cluster view", r)
			}
		}
		if allows(&o.roles[0], "discovery.k8s.io", "endpointslices", "list") || !allows(&o.roles[0], "", "pods", "get", "list", "watch") {
			t.Errorf("rules %v", o.roles[0].Rules)
		}
	})
	t.Run("anomaly on", func(t *testing.T) {
		o := decode(t, "render", render(t, "anomaly.enabled=true"))
		var cfg struct {
			Connectors map[string]any `json:"connectors"`
			Service    struct {
				Pipelines map[string]struct {
					Receivers, Exporters []string
				} `json:"pipelines"`
			} `json:"service"`
		}
		if err := yaml.Unmarshal([]byte(o.configMaps[0].Data["config.yaml"]), &cfg); err != nil {
			t.Fatal(err)
		}
		if _, ok := cfg.Connectors["anomaly_detection"]; !ok {
			t.Fatal("no anomaly_detection connector")
		}
		in, out := cfg.Service.Pipelines["logs/anomaly_in"], cfg.Service.Pipelines["logs/anomalies"]
		if !slices.Equal(in.Exporters, []string{"anomaly_detection"}) || !slices.Equal(out.Receivers, []string{"anomaly_detection"}) || len(out.Exporters) == 0 {
			t.Errorf("anomaly pipelines: %+v %+v", in, out)
		}
	})
}

func allows(r *rbacv1.ClusterRole, group, resource string, verbs ...string) bool {
	for _, v := range verbs {
		ok := false
		for _, rule := range r.Rules {
			if slices.Contains(rule.APIGroups, group) && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func mapsSubset(sub, super map[string]string) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if super[k] != v {
			return false
		}
	}
	return true
}
