package manifests

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const dir = "../../distribution/k8s"

type objects struct {
	namespaces []corev1.Namespace
	configMaps []corev1.ConfigMap
	daemonSets []appsv1.DaemonSet
	accounts   []corev1.ServiceAccount
	roles      []rbacv1.ClusterRole
	bindings   []rbacv1.ClusterRoleBinding
}

// load strictly decodes every document of every manifest into its API type.
func load(t *testing.T) objects {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	var o objects
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var meta struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s doc %d: %v", f, i, err)
			}
			into := func(v any) {
				if err := yaml.UnmarshalStrict(doc, v); err != nil {
					t.Fatalf("%s doc %d (%s): %v", f, i, meta.Kind, err)
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
				t.Fatalf("%s doc %d: unexpected %s %s", f, i, meta.APIVersion, meta.Kind)
			}
		}
	}
	return o
}

func TestDaemonSet(t *testing.T) {
	o := load(t)
	if len(o.daemonSets) != 1 {
		t.Fatalf("want 1 DaemonSet, got %d", len(o.daemonSets))
	}
	ds := o.daemonSets[0]
	spec := ds.Spec.Template.Spec
	if !spec.HostPID {
		t.Error("hostPID must be true: process attribution reads /proc/<host pid>")
	}
	if !spec.HostNetwork {
		t.Error("hostNetwork must be true: pod IP inference needs the host's addresses")
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
	if !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("capabilities.drop must contain ALL")
	}
	for _, want := range []corev1.Capability{"BPF", "PERFMON", "NET_ADMIN", "SYS_PTRACE"} {
		if !slices.Contains(sc.Capabilities.Add, want) {
			t.Errorf("capabilities.add lacks %s", want)
		}
	}
	for _, bad := range []corev1.Capability{"SYS_ADMIN", "ALL"} {
		if slices.Contains(sc.Capabilities.Add, bad) {
			t.Errorf("capabilities.add must not contain %s", bad)
		}
	}

	var nodeName bool
	for _, e := range c.Env {
		if e.Name == "K8S_NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeName = true
		}
	}
	if !nodeName {
		t.Error("K8S_NODE_NAME must come from the downward API (spec.nodeName)")
	}

	// Every host path the probes need is mounted, from the volume that
	// points at the same host path.
	vols := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			vols[v.Name] = v.HostPath.Path
		}
	}
	mounted := map[string]bool{}
	for _, m := range c.VolumeMounts {
		if p, ok := vols[m.Name]; ok {
			if p != m.MountPath {
				t.Errorf("volume %s: host %s mounted at %s; the receiver looks at the host path", m.Name, p, m.MountPath)
			}
			mounted[p] = true
			if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
				t.Errorf("%s: Bidirectional propagation requires privileged", m.MountPath)
			}
		}
	}
	for _, p := range []string{"/sys/fs/cgroup", "/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/bpf"} {
		if !mounted[p] {
			t.Errorf("host path %s is not mounted", p)
		}
	}

	// The service account exists and is bound to a role that can read what
	// k8sattributes watches.
	sa := spec.ServiceAccountName
	var saFound bool
	for _, a := range o.accounts {
		saFound = saFound || (a.Name == sa && a.Namespace == ds.Namespace)
	}
	if !saFound {
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
	for _, need := range []struct{ group, resource string }{{"", "pods"}, {"", "namespaces"}, {"apps", "replicasets"}} {
		if !allows(role, need.group, need.resource, "get", "list", "watch") {
			t.Errorf("ClusterRole %s cannot get/list/watch %s.%s", role.Name, need.resource, need.group)
		}
	}
}

func TestConfigMapCollectorConfig(t *testing.T) {
	o := load(t)
	if len(o.configMaps) != 1 {
		t.Fatalf("want 1 ConfigMap, got %d", len(o.configMaps))
	}
	raw, ok := o.configMaps[0].Data["config.yaml"]
	if !ok {
		t.Fatal("ConfigMap lacks config.yaml")
	}
	var cfg struct {
		Processors map[string]struct {
			Filter struct {
				NodeFromEnvVar string `json:"node_from_env_var"`
			} `json:"filter"`
			Passthrough    bool `json:"passthrough"`
			PodAssociation []struct {
				Sources []struct{ From, Name string } `json:"sources"`
			} `json:"pod_association"`
		} `json:"processors"`
		Service struct {
			Pipelines map[string]struct {
				Receivers  []string `json:"receivers"`
				Processors []string `json:"processors"`
			} `json:"pipelines"`
		} `json:"service"`
	}
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	k8s, ok := cfg.Processors["k8sattributes"]
	if !ok {
		t.Fatal("config has no k8sattributes processor")
	}
	if k8s.Filter.NodeFromEnvVar != "K8S_NODE_NAME" {
		t.Errorf("k8sattributes filter.node_from_env_var = %q, want K8S_NODE_NAME", k8s.Filter.NodeFromEnvVar)
	}
	if k8s.Passthrough {
		t.Error("k8sattributes passthrough must be false on the agent")
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
	for name, p := range cfg.Service.Pipelines {
		if !slices.Contains(p.Receivers, "ebpfflow") {
			continue
		}
		i, j := slices.Index(p.Processors, "k8sattributes"), slices.Index(p.Processors, "batch")
		if i < 0 || (j >= 0 && j < i) {
			t.Errorf("pipeline %s: k8sattributes must run, and before batch: %v", name, p.Processors)
		}
	}
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
