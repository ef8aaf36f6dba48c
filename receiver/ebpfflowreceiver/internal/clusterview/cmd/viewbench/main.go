// Command viewbench measures the cluster view against a real API server:
// for each pod count it creates pods (with their status: an IP, a node, a
// Deployment's ReplicaSet as owner) until the server holds that many, then
// starts a fresh view and reports the time and CPU its initial sync takes,
// the heap it keeps per pod, the peak RSS, the cost of a lookup, and the
// time from a pod's creation to the view naming its address.
//
//	KUBECONFIG=... go run ./receiver/ebpfflowreceiver/internal/clusterview/cmd/viewbench -pods 1000,10000,50000
//
// Run it against a throw-away control plane (tests/kube/start.sh with
// WITH_KCM=0, so no garbage collector deletes pods whose owner does not
// exist); it leaves its pods there (-cleanup deletes its namespaces).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ebpfflow/ebpfflow/receiver/ebpfflowreceiver/internal/clusterview"
)

const (
	namespaces = 20
	prefix     = "viewbench"
)

func main() {
	counts := flag.String("pods", "1000,10000,50000", "pod counts to measure at, ascending")
	workers := flag.Int("workers", 16, "concurrent API requests while creating pods")
	latencies := flag.Int("latency-samples", 30, "pods created one at a time to time creation → view")
	cleanup := flag.Bool("cleanup", false, "delete the benchmark's namespaces and exit")
	only := flag.Bool("measure-only", false, "create nothing: measure a view of the pods the server holds, in this fresh process (its peak RSS is the view's and its client's)")
	flag.Parse()

	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil).ClientConfig()
	if err != nil {
		log.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 5000, 5000
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if *cleanup {
		for i := range namespaces {
			_ = admin.CoreV1().Namespaces().Delete(ctx, nsName(i), metav1.DeleteOptions{})
		}
		return
	}
	for i := range namespaces {
		_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i)}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			log.Fatal(err)
		}
	}
	fmt.Printf("viewbench: go %s, %d CPUs, pods created with %d workers\n", runtime.Version(), runtime.NumCPU(), *workers)
	fmt.Printf("%8s %10s %10s %12s %11s %10s %14s %14s\n", "pods", "sync s", "sync CPU s", "heap B/pod", "heap MiB", "peak RSS", "lookup ns/op", "allocs/lookup")
	have := countPods(ctx, admin)
	if *only {
		measure(ctx, admin, have)
		return
	}
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			log.Fatal(err)
		}
		if n > have {
			t0 := time.Now()
			createPods(ctx, admin, have, n, *workers)
			fmt.Printf("viewbench: created pods %d..%d in %v\n", have, n, time.Since(t0).Round(time.Millisecond))
			have = n
		}
		measure(ctx, admin, n)
	}
	measureLatency(ctx, admin, have, *latencies)
}

func nsName(i int) string { return fmt.Sprintf("%s-%02d", prefix, i) }

func countPods(ctx context.Context, c kubernetes.Interface) int {
	n := 0
	for i := range namespaces {
		l, err := c.CoreV1().Pods(nsName(i)).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			log.Fatal(err)
		}
		n += len(l.Items)
	}
	return n
}

// podIP is pod i's address: 10.128.0.0/9 holds 8M of them.
func podIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 128 + byte(i>>16), byte(i >> 8), byte(i)})
}

// newPod is pod i as a Deployment's pod looks: a ReplicaSet owner with the
// pod-template-hash label, labels, one container, a node.
func newPod(i int) *corev1.Pod {
	deploy := fmt.Sprintf("svc-%04d", i/10)
	hash := "6c8f9d7b5"
	yes := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s-%s-%06d", deploy, hash, i),
			Namespace: nsName(i % namespaces),
			Labels:    map[string]string{"app": deploy, "pod-template-hash": hash, "app.kubernetes.io/part-of": "viewbench"},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: deploy + "-" + hash,
				UID: "00000000-0000-4000-8000-000000000001", Controller: &yes,
			}},
		},
		Spec: corev1.PodSpec{
			NodeName: fmt.Sprintf("node-%04d", i/100),
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.example/" + deploy + ":1.0",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "bench"}},
			}},
		},
	}
}

func runningStatus(p *corev1.Pod, ip netip.Addr) {
	now := metav1.Now()
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip.String(), PodIPs: []corev1.PodIP{{IP: ip.String()}},
		HostIP: "192.0.2.10", StartTime: &now,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", Ready: true, Image: p.Spec.Containers[0].Image, ImageID: "sha256:0",
			ContainerID: "containerd://" + strings.Repeat("ab", 32),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
}

// createPod creates pod i and sets its status as a kubelet would.
func createPod(ctx context.Context, c kubernetes.Interface, i int) error {
	p, err := c.CoreV1().Pods(nsName(i%namespaces)).Create(ctx, newPod(i), metav1.CreateOptions{})
	if err != nil {
		return err
	}
	runningStatus(p, podIP(i))
	_, err = c.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

func createPods(ctx context.Context, c kubernetes.Interface, from, to, workers int) {
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				for attempt := 0; ; attempt++ {
					err := createPod(ctx, c, i)
					if err == nil || apierrors.IsAlreadyExists(err) {
						break
					}
					if attempt == 5 {
						log.Fatalf("pod %d: %v", i, err)
					}
					time.Sleep(time.Second)
				}
			}
		}()
	}
	wg.Wait()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func rssKiB() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func newView(c kubernetes.Interface) *clusterview.View {
	return clusterview.New(clusterview.Config{
		Client:       c,
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Retention:    5 * time.Minute,
	})
}

// measure starts a fresh view over the n pods the server holds.
func measure(ctx context.Context, admin kubernetes.Interface, n int) {
	c := viewClient()
	base := heap()
	cpu0, t0 := cpuTime(), time.Now()
	v := newView(c)
	v.Start()
	for v.Stats().Objects[0] < n {
		time.Sleep(5 * time.Millisecond)
	}
	syncWall, syncCPU := time.Since(t0), cpuTime()-cpu0
	held := heap() - base
	// Lookups of random known addresses.
	const lookups = 2_000_000
	addrs := make([]netip.AddrPort, 4096)
	for i := range addrs {
		addrs[i] = netip.AddrPortFrom(podIP(rand.IntN(n)), 8080)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	now := time.Now()
	t1 := time.Now()
	found := 0
	for i := range lookups {
		if v.Resolve(6, addrs[i&4095], now).Pod != nil {
			found++
		}
	}
	per := time.Since(t1) / lookups
	runtime.ReadMemStats(&ms1)
	if found != lookups {
		log.Fatalf("%d of %d lookups found nothing", lookups-found, lookups)
	}
	v.Close()
	fmt.Printf("%8d %10.2f %10.2f %12.0f %11.1f %7d MiB %14d %14.3f\n", n, syncWall.Seconds(), syncCPU.Seconds(),
		float64(held)/float64(n), float64(held)/(1<<20), rssKiB()/1024, per.Nanoseconds(), float64(ms1.Mallocs-ms0.Mallocs)/lookups)
	_ = admin
}

// viewClient is a client as the receiver makes one (protobuf, default
// rate limits).
func viewClient() kubernetes.Interface {
	c, err := clusterview.NewClient(clusterview.AuthKubeConfig, "")
	if err != nil {
		log.Fatal(err)
	}
	return c
}

// measureLatency creates pods one at a time while a view runs and times
// each from the create call to the view naming its address.
func measureLatency(ctx context.Context, admin kubernetes.Interface, have, samples int) {
	if samples <= 0 {
		return
	}
	v := newView(viewClient())
	v.Start()
	defer v.Close()
	for v.Stats().Objects[0] < have {
		time.Sleep(5 * time.Millisecond)
	}
	cpu0 := cpuTime()
	idle := 10 * time.Second
	time.Sleep(idle)
	idleCPU := cpuTime() - cpu0
	var lat []time.Duration
	for k := range samples {
		i := have + k
		ap := netip.AddrPortFrom(podIP(i), 8080)
		t0 := time.Now()
		if err := createPod(ctx, admin, i); err != nil && !apierrors.IsAlreadyExists(err) {
			log.Fatal(err)
		}
		for v.Lookup(6, ap, time.Time{}).Pod == nil {
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	fmt.Printf("viewbench: view of %d pods idle for %v: %.1f ms CPU\n", have, idle, float64(idleCPU.Microseconds())/1000)
	fmt.Printf("viewbench: pod create → view names its address (create + status calls included), %d samples: median %v, p90 %v, max %v\n",
		len(lat), lat[len(lat)/2].Round(100*time.Microsecond), lat[len(lat)*9/10].Round(100*time.Microsecond), lat[len(lat)-1].Round(100*time.Microsecond))
}
