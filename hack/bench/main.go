// Command bench measures the operator on a real control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok) against a
// baseline measured in the same run: a plain client-go program creating the
// same objects directly, at the same client QPS and burst, which is the
// limit this API server sets. Results are ratios to that baseline, because
// these machines are shared and noisy.
//
//	go run ./hack/bench -clusters 100 -scale 500 -levels 0,100,500,1000
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
	"github.com/dask-operator/dask-operator/pkg/resources"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

type result struct {
	Name     string  `json:"name"`
	Operator float64 `json:"operator"`
	Baseline float64 `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Unit     string  `json:"unit"`
	Note     string  `json:"note,omitempty"`
}

type report struct {
	Date    string   `json:"date"`
	Machine string   `json:"machine"`
	Config  string   `json:"config"`
	Results []result `json:"results"`
}

var (
	clusters = flag.Int("clusters", 100, "DaskClusters created at once for the throughput measurement")
	workers  = flag.Int("workers", 3, "workers per cluster")
	scale    = flag.Int("scale", 500, "worker count of the scale-up and scale-down measurements")
	levels   = flag.String("levels", "0,100,500,1000", "cluster counts at which memory and CPU are measured")
	idle     = flag.Duration("idle", 60*time.Second, "how long idle CPU is measured")
	qps      = flag.Int("qps", 100, "client QPS of the operator and of the baseline")
	burst    = flag.Int("burst", 200, "client burst of the operator and of the baseline")
	out      = flag.String("out", "hack/bench/results", "folder for results.json and results.md")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx := context.Background()
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	fmt.Println("starting the control plane...")
	env, err := testenv.Start(testenv.Options{Nodes: true})
	if err != nil {
		return err
	}
	defer env.Stop()
	admin := rest.CopyConfig(env.Config)
	admin.QPS, admin.Burst = 2000, 4000
	kube := kubernetes.NewForConfigOrDie(admin)
	dask := versioned.NewForConfigOrDie(admin)

	limited := rest.CopyConfig(env.Config)
	limited.QPS, limited.Burst = float32(*qps), *burst
	baseKube := kubernetes.NewForConfigOrDie(limited)
	baseDask := versioned.NewForConfigOrDie(limited)

	sched, err := testenv.NewFakeScheduler(kube, "dask.org/cluster-name=big,dask.org/component=worker")
	if err != nil {
		return err
	}
	defer sched.Close()

	bin := filepath.Join(os.TempDir(), "dask-operator-bench")
	// Built as the Dockerfile builds the shipped image, so that memory is
	// measured for the binary users run.
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/dask-operator")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v\n%s", err, o)
	}
	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), Machine: testenv.Machine(),
		Config: fmt.Sprintf("clusters=%d workers=%d scale=%d qps=%d burst=%d levels=%s idle=%s", *clusters, *workers, *scale, *qps, *burst, *levels, *idle)}

	// 1. Creation throughput, baseline first (no operator runs yet).
	fmt.Printf("baseline: creating %d clusters' objects directly...\n", *clusters)
	baseNS := mustNamespace(ctx, kube, "bench-baseline")
	base, err := baselineCreate(ctx, baseKube, baseDask, baseNS, *clusters, *workers)
	if err != nil {
		return err
	}
	_ = kube.CoreV1().Namespaces().Delete(ctx, baseNS, metav1.DeleteOptions{})

	op, err := startOperator(bin, env.Kubeconfig, sched.URL())
	if err != nil {
		return err
	}
	defer op.stop()
	measure := func(existing int) {
		time.Sleep(15 * time.Second) // let the last Pods become ready and their status settle
		cpu0 := op.cpuSeconds()
		time.Sleep(*idle)
		idleCPU := (op.cpuSeconds() - cpu0) / idle.Seconds() * 100
		rep.add(fmt.Sprintf("RSS at %d clusters (%d worker Pods)", existing, existing**workers), op.rssMiB(), 0, "MiB", "")
		rep.add(fmt.Sprintf("peak RSS up to %d clusters", existing), op.peakRSSMiB(), 0, "MiB", "")
		rep.add(fmt.Sprintf("idle CPU at %d clusters over %s", existing, *idle), idleCPU, 0, "% of a core", "")
	}
	if lv := parseLevels(*levels); len(lv) > 0 && lv[0] == 0 {
		measure(0)
	}
	api0 := apiserverWrites(ctx, kube)
	fmt.Printf("operator: creating %d DaskClusters...\n", *clusters)
	ns := mustNamespace(ctx, kube, "bench-op")
	exist, running, err := operatorCreate(ctx, kube, dask, ns, *clusters, *workers)
	if err != nil {
		return err
	}
	rep.add("create N clusters: all children exist", exist, base, "s", "")
	rep.add("create N clusters: all Running", running, base, "s", "baseline: the same objects created directly")
	time.Sleep(5 * time.Second)
	api1 := apiserverWrites(ctx, kube)
	for _, k := range sortedKeys(api1) {
		if d := api1[k] - api0[k]; d > 0 {
			rep.add("API writes per cluster: "+k, float64(d)/float64(*clusters), 0, "requests", "")
		}
	}

	// 2 and 3. Scale-up and scale-down of one group.
	fmt.Printf("scale-up 0 -> %d...\n", *scale)
	upNS := mustNamespace(ctx, kube, "bench-scale")
	baseUp, err := baselinePods(ctx, baseKube, mustNamespace(ctx, kube, "bench-scale-baseline"), *scale)
	if err != nil {
		return err
	}
	up, peak, down, err := scaleUpDown(ctx, kube, dask, upNS, *scale, sched)
	if err != nil {
		return err
	}
	rep.add(fmt.Sprintf("scale-up 0 -> %d: all Pods created", *scale), up, baseUp, "s", "baseline: the same Pods created directly")
	rep.add(fmt.Sprintf("scale-up 0 -> %d: most worker Pods at any instant", *scale), float64(peak), float64(*scale), "pods", "must never exceed the request")
	rep.add(fmt.Sprintf("scale-down %d -> 0 through retire_workers", *scale), down, baseUp, "s", "baseline: creating as many Pods")

	// 4. Memory and CPU at several sizes, measured on the operator process.
	existing := *clusters
	for _, lv := range parseLevels(*levels) {
		if lv == 0 || lv < existing {
			continue
		}
		if lv > existing {
			fmt.Printf("growing to %d clusters...\n", lv)
			if err := createClusters(ctx, dask, ns, existing, lv, *workers); err != nil {
				return err
			}
			if err := waitRunning(ctx, dask, ns, lv, 15*time.Minute); err != nil {
				return err
			}
			existing = lv
		}
		measure(existing)
	}
	rep.add("operator CPU seconds, whole run", op.cpuSeconds(), 0, "s", "")
	dir := *out
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	return rep.write(dir)
}

func (r *report) add(name string, v, baseline float64, unit, note string) {
	res := result{Name: name, Operator: round(v), Unit: unit, Note: note}
	if baseline > 0 {
		res.Baseline = round(baseline)
		res.Ratio = round(v / baseline)
	}
	r.Results = append(r.Results, res)
	fmt.Printf("  %-60s %10.3f %s", name, v, unit)
	if baseline > 0 {
		fmt.Printf("   (baseline %.3f, ratio %.2f)", baseline, v/baseline)
	}
	fmt.Println()
}

func round(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmark results\n\n%s, %s\n\n%s\n\n", r.Date, r.Machine, r.Config)
	b.WriteString("| measurement | operator | baseline | ratio | unit | note |\n|---|---:|---:|---:|---|---|\n")
	for _, x := range r.Results {
		base, ratio := "", ""
		if x.Baseline > 0 {
			base, ratio = fmt.Sprint(x.Baseline), fmt.Sprintf("%.2f", x.Ratio)
		}
		fmt.Fprintf(&b, "| %s | %v | %s | %s | %s | %s |\n", x.Name, x.Operator, base, ratio, x.Unit, x.Note)
	}
	fmt.Println()
	fmt.Print(b.String())
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(b.String()), 0o644)
}

func parseLevels(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

func sortedKeys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func mustNamespace(ctx context.Context, kube kubernetes.Interface, prefix string) string {
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		panic(err)
	}
	return ns.Name
}

func benchCluster(ns, name string, workers int) *daskv1.DaskCluster {
	r := int32(workers)
	return &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: daskv1.DaskClusterSpec{
			Worker: daskv1.WorkerSpec{Replicas: &r, Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "worker", Image: "ghcr.io/dask/dask:latest", Args: []string{"dask-worker", "--name", "$(DASK_WORKER_NAME)"},
			}}}},
			Scheduler: daskv1.SchedulerSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "scheduler", Image: "ghcr.io/dask/dask:latest", Args: []string{"dask-scheduler"}}}},
				Service: corev1.ServiceSpec{Ports: []corev1.ServicePort{
					{Name: "tcp-comm", Port: 8786}, {Name: "http-dashboard", Port: 8787},
				}},
			},
		},
	}
}

// parallel runs fn(0..n-1) on 16 goroutines; the client's rate limiter,
// not the goroutines, sets the pace.
func parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// baselineCreate creates, for n clusters, the objects the operator would:
// scheduler Pod and Service, worker group and worker Pods.
func baselineCreate(ctx context.Context, kube kubernetes.Interface, dask versioned.Interface, ns string, n, workers int) (float64, error) {
	start := time.Now()
	err := parallel(n, func(i int) error {
		c := benchCluster(ns, fmt.Sprintf("c%d", i), workers)
		c.UID = types.UID(fmt.Sprintf("uid-%d", i))
		if _, err := kube.CoreV1().Services(ns).Create(ctx, resources.SchedulerService(c), metav1.CreateOptions{}); err != nil {
			return err
		}
		if _, err := kube.CoreV1().Pods(ns).Create(ctx, resources.SchedulerPod(c), metav1.CreateOptions{}); err != nil {
			return err
		}
		g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Create(ctx, resources.DefaultWorkerGroup(c), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		for w := 0; w < workers; w++ {
			if _, err := kube.CoreV1().Pods(ns).Create(ctx, resources.WorkerPod(g, c, resources.NewWorkerName(g.Name), "cluster.local"), metav1.CreateOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	return time.Since(start).Seconds(), err
}

func baselinePods(ctx context.Context, kube kubernetes.Interface, ns string, n int) (float64, error) {
	c := benchCluster(ns, "base", 0)
	c.UID = "uid-base"
	g := resources.DefaultWorkerGroup(c)
	g.UID = "uid-group"
	start := time.Now()
	err := parallel(n, func(int) error {
		_, err := kube.CoreV1().Pods(ns).Create(ctx, resources.WorkerPod(g, c, resources.NewWorkerName(g.Name), "cluster.local"), metav1.CreateOptions{})
		return err
	})
	return time.Since(start).Seconds(), err
}

func createClusters(ctx context.Context, dask versioned.Interface, ns string, from, to, workers int) error {
	return parallel(to-from, func(i int) error {
		_, err := dask.KubernetesV1().DaskClusters(ns).Create(ctx, benchCluster(ns, fmt.Sprintf("c%d", from+i), workers), metav1.CreateOptions{})
		return err
	})
}

func operatorCreate(ctx context.Context, kube kubernetes.Interface, dask versioned.Interface, ns string, n, workers int) (exist, running float64, err error) {
	start := time.Now()
	if err := createClusters(ctx, dask, ns, 0, n, workers); err != nil {
		return 0, 0, err
	}
	wantPods := n * (1 + workers)
	for exist == 0 || running == 0 {
		if time.Since(start) > 15*time.Minute {
			return 0, 0, fmt.Errorf("clusters did not come up in 15 minutes")
		}
		if exist == 0 {
			pods, _ := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			svcs, _ := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			groups, _ := dask.KubernetesV1().DaskWorkerGroups(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			if len(pods.Items) >= wantPods && len(svcs.Items) >= n && len(groups.Items) >= n {
				exist = time.Since(start).Seconds()
			}
		}
		if running == 0 && countRunning(ctx, dask, ns) >= n {
			running = time.Since(start).Seconds()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return exist, running, nil
}

func countRunning(ctx context.Context, dask versioned.Interface, ns string) int {
	list, err := dask.KubernetesV1().DaskClusters(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range list.Items {
		if c.Status.Phase == daskv1.DaskClusterRunning {
			n++
		}
	}
	return n
}

func waitRunning(ctx context.Context, dask versioned.Interface, ns string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for countRunning(ctx, dask, ns) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d clusters not Running after %s", n, timeout)
		}
		time.Sleep(time.Second)
	}
	return nil
}

// scaleUpDown scales one group from 0 to n and back, watching the number of
// live worker Pods at every event.
func scaleUpDown(ctx context.Context, kube kubernetes.Interface, dask versioned.Interface, ns string, n int, sched *testenv.FakeScheduler) (up float64, peak int, down float64, err error) {
	c := benchCluster(ns, "big", 0)
	c.Spec.Scheduler.Service.Ports[1].Port = int32(sched.Port)
	if _, err := dask.KubernetesV1().DaskClusters(ns).Create(ctx, c, metav1.CreateOptions{}); err != nil {
		return 0, 0, 0, err
	}
	for {
		if _, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(ctx, "big-default", metav1.GetOptions{}); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The peak comes from a watch, which sees every change; progress from
	// lists, which cannot miss the end if the watch is closed.
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	live := map[string]bool{}
	go func() {
		rv := ""
		for watchCtx.Err() == nil {
			w, err := kube.CoreV1().Pods(ns).Watch(watchCtx, metav1.ListOptions{LabelSelector: "dask.org/component=worker", ResourceVersion: rv})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				rv = p.ResourceVersion
				mu.Lock()
				if ev.Type == "DELETED" || p.DeletionTimestamp != nil {
					delete(live, p.Name)
				} else {
					live[p.Name] = true
				}
				peak = max(peak, len(live))
				mu.Unlock()
			}
		}
	}()
	count := func() int {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "dask.org/component=worker", ResourceVersion: "0"})
		if err != nil {
			return -1
		}
		n := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				n++
			}
		}
		return n
	}
	patch := func(r int) error {
		_, err := dask.KubernetesV1().DaskClusters(ns).Patch(ctx, "big", types.MergePatchType,
			[]byte(fmt.Sprintf(`{"spec":{"worker":{"replicas":%d}}}`, r)), metav1.PatchOptions{})
		return err
	}
	start := time.Now()
	if err := patch(n); err != nil {
		return 0, 0, 0, err
	}
	for count() != n {
		if time.Since(start) > 10*time.Minute {
			return 0, 0, 0, fmt.Errorf("scale-up stuck at %d", count())
		}
		time.Sleep(50 * time.Millisecond)
	}
	up = time.Since(start).Seconds()
	time.Sleep(3 * time.Second) // let every Pod become ready
	start = time.Now()
	if err := patch(0); err != nil {
		return 0, 0, 0, err
	}
	for count() != 0 {
		if time.Since(start) > 10*time.Minute {
			return 0, 0, 0, fmt.Errorf("scale-down stuck at %d", count())
		}
		time.Sleep(20 * time.Millisecond)
	}
	down = time.Since(start).Seconds()
	mu.Lock()
	defer mu.Unlock()
	return up, peak, down, nil
}

// apiserverWrites reads kube-apiserver's request counters of writes, by
// resource, subresource and verb.
func apiserverWrites(ctx context.Context, kube kubernetes.Interface) map[string]int {
	body, err := kube.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	out := map[string]int{}
	if err != nil {
		return out
	}
	re := regexp.MustCompile(`^apiserver_request_total\{(.*)\} (\d+)`)
	label := func(labels, name string) string {
		m := regexp.MustCompile(name + `="([^"]*)"`).FindStringSubmatch(labels)
		if m == nil {
			return ""
		}
		return m[1]
	}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		verb := label(m[1], "verb")
		if verb != "POST" && verb != "PUT" && verb != "PATCH" && verb != "DELETE" && verb != "CREATE" && verb != "UPDATE" && verb != "APPLY" {
			continue
		}
		res := label(m[1], "resource")
		if sub := label(m[1], "subresource"); sub != "" {
			res += "/" + sub
		}
		switch {
		case res == "daskclusters" && verb == "POST":
			continue // the benchmark's own creates
		case notOperator[res] || strings.HasPrefix(res, "leases"):
			continue // the scheduler's, kwok's and kube-controller-manager's
		}
		n, _ := strconv.Atoi(m[2])
		out[res+" "+verb] += n
	}
	return out
}

var notOperator = map[string]bool{
	"": true, "namespaces": true, "events": true, "nodes": true, "nodes/status": true, "pods/binding": true,
	"pods/status": true, "ipaddresses": true, "serviceaccounts": true, "endpointslices": true,
}

// operatorProcess is the operator binary, measured through /proc.
type operatorProcess struct {
	cmd *exec.Cmd
}

func startOperator(bin, kubeconfig, schedulerURL string) (*operatorProcess, error) {
	log, err := os.Create(filepath.Join(os.TempDir(), "dask-operator-bench.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--kubeconfig="+kubeconfig, "--leader-elect=false",
		"--kube-api-qps="+strconv.Itoa(*qps), "--kube-api-burst="+strconv.Itoa(*burst),
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--scheduler-url-template="+schedulerURL)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	return &operatorProcess{cmd: cmd}, nil
}

func (p *operatorProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

func (p *operatorProcess) status(field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, field+":") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func (p *operatorProcess) rssMiB() float64     { return p.status("VmRSS") }
func (p *operatorProcess) peakRSSMiB() float64 { return p.status("VmHWM") }

func (p *operatorProcess) cpuSeconds() float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ = 100 on Linux)
}
