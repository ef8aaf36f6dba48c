//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ebpfflow/ebpfflow/internal/testkit"
)

// kubeCluster is a real control plane started by tests/kube/start.sh: etcd,
// kube-apiserver and kube-controller-manager (Deployments → ReplicaSets →
// Pods, EndpointSlices, ServiceAccount tokens), no scheduler and no kubelet:
// pods name their node, and the test sets their status as a kubelet would.
type kubeCluster struct {
	dir    string
	env    map[string]string
	client kubernetes.Interface
}

// startKube starts a cluster for the test, stopped (and wiped) at cleanup.
func startKube(t *testing.T, dir string) *kubeCluster {
	t.Helper()
	state := filepath.Join(dir, "kube")
	cmd := exec.Command("../kube/start.sh")
	cmd.Env = append(os.Environ(), "STATE_DIR="+state, "WITH_KCM=1", "WITH_SCHEDULER=0", "WITH_KWOK=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "run tests/kube/build.sh first") {
			testkit.Skip(t, "the Kubernetes control plane is not built: run tests/kube/build.sh\n"+string(out))
		}
		t.Fatalf("tests/kube/start.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		stop := exec.Command("../kube/stop.sh")
		stop.Env = append(os.Environ(), "STATE_DIR="+state)
		if out, err := stop.CombinedOutput(); err != nil {
			t.Errorf("tests/kube/stop.sh: %v\n%s", err, out)
		}
	})
	k := &kubeCluster{dir: state, env: map[string]string{}}
	f, err := os.Open(filepath.Join(state, "kube.env"))
	must(t, err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k2, v, ok := strings.Cut(s.Text(), "="); ok {
			k.env[k2] = v
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", k.env["KUBECONFIG"])
	must(t, err)
	k.client, err = kubernetes.NewForConfig(cfg)
	must(t, err)
	t.Logf("kubernetes %s at %s (state in %s)", k.env["KUBE_VERSION"], k.env["KUBE_API_URL"], state)
	return k
}

// kubectl runs the cluster's kubectl with the admin kubeconfig.
func (k *kubeCluster) kubectl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(k.env["KUBECTL"], append([]string{"--kubeconfig", k.env["KUBECONFIG"]}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apiserverReady reports whether /readyz answers ok.
func (k *kubeCluster) apiserverReady() bool {
	c, err := clientcmd.BuildConfigFromFlags("", k.env["KUBECONFIG"])
	if err != nil {
		return false
	}
	c.Timeout = time.Second
	cs, err := kubernetes.NewForConfig(c)
	if err != nil {
		return false
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
	return err == nil && string(body) == "ok"
}

// stopAPIServer kills kube-apiserver (as a crash or a node failure would:
// a SIGTERM would let it hold its watches open through a graceful
// shutdown) and returns a function that starts it again with the same
// command line, waits until it is ready and records its pid where stop.sh
// finds it.
func (k *kubeCluster) stopAPIServer(t *testing.T) (restart func()) {
	t.Helper()
	pidFile := filepath.Join(k.dir, "kube-apiserver.pid")
	b, err := os.ReadFile(pidFile)
	must(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	must(t, err)
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	must(t, err)
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	must(t, syscall.Kill(pid, syscall.SIGKILL))
	for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	return func() {
		t.Helper()
		log, err := os.OpenFile(filepath.Join(k.dir, "kube-apiserver.log"), os.O_APPEND|os.O_WRONLY, 0o644)
		must(t, err)
		defer log.Close()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = log, log
		must(t, cmd.Start())
		go func() { _ = cmd.Wait() }()
		must(t, os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644))
		deadline := time.Now().Add(90 * time.Second)
		for !k.apiserverReady() {
			if time.Now().After(deadline) {
				t.Fatal("kube-apiserver not ready 90s after its restart")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// ensureNamespace creates a namespace if it does not exist.
func (k *kubeCluster) ensureNamespace(t *testing.T, name string) {
	t.Helper()
	_, err := k.client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// tokenKubeconfig writes a kubeconfig that authenticates as a
// ServiceAccount (TokenRequest), as its pod would.
func (k *kubeCluster) tokenKubeconfig(t *testing.T, ns, sa, path string) {
	t.Helper()
	exp := int64(3600)
	tok, err := k.client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
		&authnTokenRequest{Spec: authnTokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	must(t, err)
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: sa, user: {token: %q}}]
contexts: [{name: sa, context: {cluster: test, user: sa}}]
current-context: sa
`, k.env["KUBE_API_URL"], k.env["KUBE_CA_FILE"], tok.Status.Token)
	must(t, os.WriteFile(path, []byte(kc), 0o600))
}

// nodeAddress is the address this machine uses towards the pod network
// (the source of a host process's connection to a pod).
func nodeAddress(t *testing.T, towards netip.Addr) netip.Addr {
	t.Helper()
	out, err := exec.Command("ip", "-o", "route", "get", towards.String()).Output()
	must(t, err)
	f := strings.Fields(string(out))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "src" {
			return netip.MustParseAddr(f[i+1])
		}
	}
	t.Fatalf("no source address in %q", out)
	return netip.Addr{}
}

// httpOK polls url until it answers 200.
func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
