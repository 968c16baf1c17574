// Command bench measures the operator on a real control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok) against a
// baseline measured in the same run: a plain client-go program creating the
// same objects directly, at the same client QPS and burst, which is the
// limit this API server sets. Results are ratios to that baseline, because
// these machines are shared and noisy.
//
//	go run ./hack/bench -clusters 100,1000 -cold 1000 -apply 200 -levels 10000
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

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
	clusters     = flag.String("clusters", "1,100,1000", "cluster counts whose creation is timed, each in a namespace of its own")
	cold         = flag.Int("cold", 1000, "clusters that exist before the operator starts: the cold start (0 skips it)")
	apply        = flag.Int("apply", 200, "clusters applied with kubectl, with no operator and while it runs (0 skips it)")
	workers      = flag.Int("workers", 3, "workers per cluster")
	scale        = flag.Int("scale", 500, "worker count of the scale-up and scale-down measurements")
	levels       = flag.String("levels", "", "more cluster counts to grow to and measure at (for example 10000), beyond those the run makes anyway")
	samples      = flag.Int("samples", 50, "single-cluster scale changes timed at each level")
	kueueSamples = flag.Int("kueue", 20, "queued DaskJobs and Jobs whose admission-to-Running latency is timed, through a real Kueue (0 skips it)")
	// Longer than the Go runtime's forced collection period (2 minutes):
	// RSS, read at the end, is then what an idle operator holds, not what
	// the work before it grew to and the last collection's goal still keeps.
	idle      = flag.Duration("idle", 150*time.Second, "how long idle CPU and requests are measured at each level (RSS is read at its end)")
	qps       = flag.Int("qps", 100, "client QPS of the operator and of the baseline")
	burst     = flag.Int("burst", 200, "client burst of the operator and of the baseline")
	verbosity = flag.Int("operator-v", 0, "the operator's log verbosity (its log: $TMPDIR/dask-operator-bench.log; 4 logs every status write)")
	out       = flag.String("out", "hack/bench/results", "folder for results.json and results.md")
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
	began := time.Now()
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	creates := parseLevels(*clusters)
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
	bins, err := testenv.FindBinaries()
	if err != nil {
		return err
	}
	kubectl := func(args ...string) (float64, error) {
		start := time.Now()
		cmd := exec.Command(bins.Path("kubectl"), append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
		if o, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, o)
		}
		return time.Since(start).Seconds(), nil
	}

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
		Config: fmt.Sprintf("clusters=%s cold=%d apply=%d workers=%d scale=%d qps=%d burst=%d levels=%s samples=%d idle=%s",
			*clusters, *cold, *apply, *workers, *scale, *qps, *burst, *levels, *samples, *idle)}

	// 1. Creation of N clusters: a plain client creating what exists once
	// the operator has made them (the clusters too, which the operator's run
	// creates as well), before the operator runs; then the operator.
	base := map[int]float64{}
	calm := func() { calmControlPlane(ctx, env, kube) }
	for _, n := range creates {
		calm()
		fmt.Printf("baseline: creating %d clusters and their objects directly...\n", n)
		ns := mustNamespace(ctx, kube, "bench-baseline")
		if base[n], err = baselineCreate(ctx, baseKube, baseDask, ns, n, *workers, true); err != nil {
			return err
		}
		calm()
		// Its deletion (the namespace controller's writes) must be over
		// before anything else is timed.
		if err := deleteNamespace(ctx, kube, ns); err != nil {
			return err
		}
	}
	shipped, err := shippedEnv(root)
	if err != nil {
		return err
	}
	rep.Config += " operator-env=" + strings.Join(shipped, ",")
	startOperator := func(bin, kubeconfig, schedulerURL string) (*operatorProcess, error) {
		return startOperatorWith(bin, kubeconfig, schedulerURL, shipped)
	}
	op, err := startOperator(bin, env.Kubeconfig, sched.URL())
	if err != nil {
		return err
	}
	defer func() { op.stop() }()
	existing := 0
	for _, n := range creates {
		op.quiet(ctx, 5*time.Second)
		calm()
		fmt.Printf("operator: creating %d DaskClusters...\n", n)
		api0 := apiserverWrites(ctx, kube)
		ns := mustNamespace(ctx, kube, "bench-op")
		start := time.Now()
		if err := createClusters(ctx, dask, ns, 0, n, *workers); err != nil {
			return err
		}
		exist, running, err := waitCreated(ctx, kube, dask, ns, n, *workers, start)
		if err != nil {
			return err
		}
		existing += n
		rep.add(fmt.Sprintf("create %d clusters: all children exist", n), exist, base[n], "s", "")
		rep.add(fmt.Sprintf("create %d clusters: all Running", n), running, base[n], "s", "baseline: the same objects created directly")
		op.quiet(ctx, 5*time.Second) // the last status writes
		api1 := apiserverWrites(ctx, kube)
		total := 0.0
		for _, k := range sortedKeys(api1) {
			if d := api1[k] - api0[k]; d > 0 {
				rep.add(fmt.Sprintf("create %d clusters: API writes per cluster: %s", n, k), float64(d)/float64(n), 0, "requests", "")
				total += float64(d) / float64(n)
			}
		}
		rep.add(fmt.Sprintf("create %d clusters: API writes per cluster, all", n), total, 0, "requests", "6 are creates")
	}
	restart := func() error {
		op.stop()
		op, err = startOperator(bin, env.Kubeconfig, sched.URL())
		return err
	}

	// 2. Others are not starved: kubectl apply of clusters with no operator
	// running, then while it creates their children.
	if *apply > 0 {
		manifest := filepath.Join(env.Dir, "bench-apply.yaml")
		if err := writeClusters(manifest, *apply, *workers); err != nil {
			return err
		}
		op.quiet(ctx, 5*time.Second)
		op.stop()
		calm()
		fmt.Printf("kubectl apply of %d clusters, no operator running...\n", *apply)
		ns := mustNamespace(ctx, kube, "bench-apply-alone")
		alone, err := kubectl("apply", "-n", ns, "-f", manifest)
		if err != nil {
			return err
		}
		if err := deleteNamespace(ctx, kube, ns); err != nil {
			return err
		}
		if err := restart(); err != nil {
			return err
		}
		op.quiet(ctx, 5*time.Second)
		calm()
		fmt.Printf("kubectl apply of %d clusters while the operator creates their children...\n", *apply)
		ns = mustNamespace(ctx, kube, "bench-apply")
		start := time.Now()
		withOp, err := kubectl("apply", "-n", ns, "-f", manifest)
		if err != nil {
			return err
		}
		if _, _, err := waitCreated(ctx, kube, dask, ns, *apply, *workers, start); err != nil {
			return err
		}
		existing += *apply
		rep.add(fmt.Sprintf("kubectl apply of %d clusters, the operator creating their children", *apply), withOp, alone, "s", "baseline: the same apply with no operator running")
	}

	// 3. Cold start: the clusters exist before the operator starts; the
	// baseline creates their children directly, with as many objects around.
	coldNS := ""
	if *cold > 0 {
		op.quiet(ctx, 5*time.Second)
		op.stop()
		calm()
		fmt.Printf("baseline: creating the objects of %d existing clusters directly...\n", *cold)
		ns := mustNamespace(ctx, kube, "bench-baseline")
		baseCold, err := baselineCreate(ctx, baseKube, baseDask, ns, *cold, *workers, false)
		if err != nil {
			return err
		}
		calm()
		if err := deleteNamespace(ctx, kube, ns); err != nil {
			return err
		}
		fmt.Printf("cold start: %d clusters exist, the operator starts...\n", *cold)
		coldNS = mustNamespace(ctx, kube, "bench-cold")
		if err := createClusters(ctx, dask, coldNS, 0, *cold, *workers); err != nil {
			return err
		}
		calm()
		if err := restart(); err != nil {
			return err
		}
		exist, running, err := waitCreated(ctx, kube, dask, coldNS, *cold, *workers, op.started)
		if err != nil {
			return err
		}
		existing += *cold
		rep.add(fmt.Sprintf("cold start, %d clusters: all children exist", *cold), exist, baseCold, "s", "baseline: the same children created directly")
		rep.add(fmt.Sprintf("cold start, %d clusters: all Running", *cold), running, baseCold, "s", "from the operator's start")
	}

	// 4. Scale-up and scale-down of one group.
	op.quiet(ctx, 5*time.Second)
	calm()
	fmt.Printf("scale-up 0 -> %d...\n", *scale)
	upNS := mustNamespace(ctx, kube, "bench-scale")
	baseUp, err := baselinePods(ctx, baseKube, mustNamespace(ctx, kube, "bench-scale-baseline"), *scale)
	if err != nil {
		return err
	}
	calm()
	up, peak, down, err := scaleUpDown(ctx, kube, dask, upNS, *scale, sched)
	if err != nil {
		return err
	}
	rep.add(fmt.Sprintf("scale-up 0 -> %d: all Pods created", *scale), up, baseUp, "s", "baseline: the same Pods created directly")
	rep.add(fmt.Sprintf("scale-up 0 -> %d: most worker Pods at any instant", *scale), float64(peak), float64(*scale), "pods", "must never exceed the request")
	rep.add(fmt.Sprintf("scale-down %d -> 0 through retire_workers", *scale), down, baseUp, "s", "baseline: creating as many Pods")

	// 5. Memory, CPU, requests and latency at every level (the operator
	// was restarted for the cold start: its peak RSS is since then).
	all := func() []string {
		list, _ := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		var out []string
		for _, n := range list.Items {
			// bench-apply-alone-* is gone by now (deleteNamespace waits).
			if strings.HasPrefix(n.Name, "bench-op-") || strings.HasPrefix(n.Name, "bench-cold-") || strings.HasPrefix(n.Name, "bench-apply-") {
				out = append(out, n.Name)
			}
		}
		return out
	}
	measure(ctx, rep, env, kube, dask, op, existing, all())
	growNS := mustNamespace(ctx, kube, "bench-op")
	grown := 0
	const podsPerNode = 20000 // testenv's kwok nodes
	nodes := 1
	for _, lv := range parseLevels(*levels) {
		if lv <= existing {
			continue
		}
		fmt.Printf("growing to %d clusters...\n", lv)
		// A kwok node takes 20 000 Pods: enough nodes for every Pod of the
		// level (one more for the rest), or Pods wait unschedulable and the
		// level never settles.
		for ; nodes*podsPerNode < lv*(*workers+1)+podsPerNode; nodes++ {
			if err := env.AddKwokNode(ctx, fmt.Sprintf("kwok-node-%d", nodes)); err != nil {
				return err
			}
		}
		start := time.Now()
		if err := createClusters(ctx, dask, growNS, grown, grown+lv-existing, *workers); err != nil {
			return err
		}
		grown += lv - existing
		if err := waitRunning(ctx, dask, growNS, grown, 60*time.Minute); err != nil {
			return err
		}
		rep.add(fmt.Sprintf("grow to %d clusters (%d created): all Running", lv, lv-existing), time.Since(start).Seconds(), 0, "s", "")
		if err := waitSettled(ctx, dask, all(), 60*time.Minute); err != nil {
			return err
		}
		rep.add(fmt.Sprintf("grow to %d clusters (%d created): converged", lv, lv-existing), time.Since(start).Seconds(), 0, "s",
			"every cluster Running with all its workers ready, as its status says")
		existing = lv
		measure(ctx, rep, env, kube, dask, op, existing, all())
	}
	rep.add("operator CPU seconds, whole run", op.cpuSeconds(), 0, "s", "")
	if *kueueSamples > 0 {
		op.stop()
		env.Stop()
		if err := benchKueue(ctx, rep, bin, shipped); err != nil {
			return err
		}
	}
	rep.add("benchmark run", time.Since(began).Minutes(), 0, "min", "")
	dir := *out
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(root, dir)
	}
	return rep.write(dir)
}

// measure reports, with n clusters existing: the operator's RSS, peak RSS,
// idle CPU and requests per minute (from its client metrics: 0 expected,
// watches aside), the p50/p99 of single-cluster scale changes (until the
// new worker Pod exists), and kube-apiserver's and etcd's memory and CPU.
func measure(ctx context.Context, rep *report, env *testenv.Env, kube kubernetes.Interface, dask versioned.Interface, op *operatorProcess, n int, namespaces []string) {
	if err := waitSettled(ctx, dask, namespaces, 30*time.Minute); err != nil {
		fmt.Println("  not settled:", err)
	}
	op.quiet(ctx, 10*time.Second)
	cpu0, req0, watch0 := op.cpuSeconds(), op.requests(), op.watches()
	gc0, alloc0 := op.metric("go_gc_duration_seconds_count "), op.metric("go_memstats_alloc_bytes_total ")
	planes := []string{"kube-apiserver", "etcd"}
	planeCPU0 := map[string]float64{}
	for _, c := range planes {
		planeCPU0[c] = cpuSeconds(env.Pid(c))
	}
	time.Sleep(*idle)
	idleCPU := (op.cpuSeconds() - cpu0) / idle.Seconds() * 100
	req := (op.requests() - req0) / idle.Minutes()
	watches := (op.watches() - watch0) / idle.Minutes()
	gcs := (op.metric("go_gc_duration_seconds_count ") - gc0) / idle.Minutes()
	allocated := (op.metric("go_memstats_alloc_bytes_total ") - alloc0) / (1 << 20) / idle.Minutes()
	at := fmt.Sprintf("at %d clusters (%d worker Pods)", n, n**workers)
	pid := op.cmd.Process.Pid
	rep.add("operator RSS "+at, op.rssMiB(), 0, "MiB", fmt.Sprintf("%.1f MiB anonymous, %.1f MiB of the binary's pages",
		procMiB(pid, "RssAnon"), procMiB(pid, "RssFile")))
	rep.add("operator peak RSS, "+at, op.peakRSSMiB(), 0, "MiB", "")
	heap, profile := op.heapProfile(fmt.Sprintf("heap-%d.pb.gz", n))
	rep.add("operator Go heap in use "+at, heap, 0, "MiB", "after a collection; profile: "+profile)
	rep.add("operator idle CPU "+at, idleCPU, 0, "% of a core", fmt.Sprintf("over %s", *idle))
	rep.add("operator API requests per minute, idle, "+at, req, 0, "requests", "watches excluded; no leader election in the benchmark")
	rep.add("operator watches started per minute, idle, "+at, watches, 0, "watches", "reflectors start their watches again every 5-10 minutes")
	// Where idle CPU goes: a live heap close to GOMEMLIMIT makes the
	// runtime collect at every few MiB allocated.
	rep.add("operator garbage collections per minute, idle, "+at, gcs, 0, "collections", "")
	rep.add("operator allocations per minute, idle, "+at, allocated, 0, "MiB", "")
	for _, c := range planes {
		pid := env.Pid(c)
		cpu := (cpuSeconds(pid) - planeCPU0[c]) / idle.Seconds() * 100
		rep.add(c+" RSS "+at, procMiB(pid, "VmRSS"), 0, "MiB", "")
		rep.add(c+" idle CPU "+at, cpu, 0, "% of a core", "")
	}
	if lat, err := scaleLatencies(ctx, kube, dask, namespaces, *samples); err != nil {
		fmt.Println("  single-cluster changes:", err)
		rep.add("single-cluster scale change, p99, "+at, -1, 0, "s", err.Error())
	} else {
		rep.add(fmt.Sprintf("single-cluster scale change, p50 of %d, %s", len(lat), at), percentile(lat, 50), 0, "s", "patch of spec.worker.replicas until the new worker Pod exists")
		rep.add(fmt.Sprintf("single-cluster scale change, p99 of %d, %s", len(lat), at), percentile(lat, 99), 0, "s", "")
	}
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

// deleteNamespace deletes a namespace and waits until it is gone.
func deleteNamespace(ctx context.Context, kube kubernetes.Interface, ns string) error {
	if err := kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		return err
	}
	for start := time.Now(); time.Since(start) < 10*time.Minute; time.Sleep(500 * time.Millisecond) {
		if _, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil
		}
	}
	return fmt.Errorf("namespace %s not deleted within 10 minutes", ns)
}

func benchCluster(ns, name string, workers int) *daskv1.DaskCluster {
	r := int32(workers)
	return &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: daskv1.DaskClusterSpec{
			Worker: daskv1.WorkerSpec{Replicas: &r, Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "worker", Image: "ghcr.io/dask/dask:latest", Args: []string{"dask", "worker", "--name", "$(DASK_WORKER_NAME)"},
			}}}},
			Scheduler: daskv1.SchedulerSpec{
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "scheduler", Image: "ghcr.io/dask/dask:latest", Args: []string{"dask", "scheduler"}}}},
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

// baselineCreate creates, for n clusters, what exists once the operator
// has made them: the DaskCluster, its scheduler Pod and Service, worker
// group and worker Pods. With timeClusters the clusters' creation is timed
// too (the operator's run creates them as well); without, they are created
// first and only their children are timed (what a cold start does).
func baselineCreate(ctx context.Context, kube kubernetes.Interface, dask versioned.Interface, ns string, n, workers int, timeClusters bool) (float64, error) {
	made := make([]*daskv1.DaskCluster, n)
	create := func(i int) (err error) {
		made[i], err = dask.KubernetesV1().DaskClusters(ns).Create(ctx, benchCluster(ns, fmt.Sprintf("c%d", i), workers), metav1.CreateOptions{})
		return err
	}
	if !timeClusters {
		if err := parallel(n, create); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	err := parallel(n, func(i int) error {
		if timeClusters {
			if err := create(i); err != nil {
				return err
			}
		}
		c := made[i]
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

// waitCreated waits until the n clusters of ns have all their children and
// are all Running, and returns both times since start.
func waitCreated(ctx context.Context, kube kubernetes.Interface, dask versioned.Interface, ns string, n, workers int, start time.Time) (exist, running float64, err error) {
	wantPods := n * (1 + workers)
	for exist == 0 || running == 0 {
		if time.Since(start) > 30*time.Minute {
			return 0, 0, fmt.Errorf("%d clusters in %s did not come up in 30 minutes", n, ns)
		}
		if exist == 0 {
			pods, _ := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			svcs, _ := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			groups, _ := dask.KubernetesV1().DaskWorkerGroups(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			if pods != nil && svcs != nil && groups != nil && len(pods.Items) >= wantPods && len(svcs.Items) >= n && len(groups.Items) >= n {
				exist = time.Since(start).Seconds()
			}
		}
		if running == 0 && countRunning(ctx, dask, ns) >= n {
			running = time.Since(start).Seconds()
		}
		// Listing thousands of Pods costs the API server too: look less
		// often, the more there are (100 ms at 100 clusters, 1 s from 1000).
		time.Sleep(min(time.Second, time.Duration(max(1, n/100))*100*time.Millisecond))
	}
	return exist, running, nil
}

// writeClusters writes n DaskClusters (c0, c1, ...) as a List for kubectl.
func writeClusters(path string, n, workers int) error {
	list := map[string]any{"apiVersion": "v1", "kind": "List"}
	items := make([]any, n)
	for i := range items {
		c := benchCluster("", fmt.Sprintf("c%d", i), workers)
		c.TypeMeta = metav1.TypeMeta{APIVersion: daskv1.SchemeGroupVersion.String(), Kind: "DaskCluster"}
		items[i] = c
	}
	list["items"] = items
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// scaleLatencies scales n clusters of namespaces, one at a time, by one
// worker and returns how long each took until its new worker Pod existed
// (seen by a watch started before the change).
func scaleLatencies(ctx context.Context, kube kubernetes.Interface, dask versioned.Interface, namespaces []string, n int) ([]float64, error) {
	var candidates []daskv1.DaskCluster
	for _, ns := range namespaces {
		list, err := dask.KubernetesV1().DaskClusters(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return nil, err
		}
		candidates = append(candidates, list.Items...)
	}
	if len(candidates) == 0 || n == 0 {
		return nil, fmt.Errorf("no clusters to scale")
	}
	var out []float64
	for i := 0; i < n; i++ {
		c := candidates[i*len(candidates)/n]
		sel := "dask.org/component=worker,dask.org/cluster-name=" + c.Name
		pods, err := kube.CoreV1().Pods(c.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		w, err := kube.CoreV1().Pods(c.Namespace).Watch(wctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: pods.ResourceVersion})
		if err != nil {
			cancel()
			return nil, err
		}
		replicas := int32(len(pods.Items)) + 1
		start := time.Now()
		_, err = dask.KubernetesV1().DaskClusters(c.Namespace).Patch(ctx, c.Name, types.MergePatchType,
			[]byte(fmt.Sprintf(`{"spec":{"worker":{"replicas":%d}}}`, replicas)), metav1.PatchOptions{})
		if err != nil {
			cancel()
			return nil, err
		}
		seen := false
		for ev := range w.ResultChan() {
			if ev.Type == "ADDED" {
				seen = true
				break
			}
		}
		w.Stop()
		cancel()
		if !seen {
			return nil, fmt.Errorf("cluster %s/%s: no new worker Pod within 30 s of the change", c.Namespace, c.Name)
		}
		out = append(out, time.Since(start).Seconds())
	}
	return out, nil
}

func percentile(v []float64, p float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
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

// waitSettled waits until every DaskCluster of the namespaces is Running
// with all its workers ready, as its status says: the operator has
// converged, and what is measured next is idle, not the tail of Pods that
// kwok makes Ready late.
func waitSettled(ctx context.Context, dask versioned.Interface, namespaces []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		unsettled, example := 0, ""
		for _, ns := range namespaces {
			list, err := dask.KubernetesV1().DaskClusters(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			if err != nil {
				return err
			}
			for _, c := range list.Items {
				want := int32(1)
				if c.Spec.Worker.Replicas != nil {
					want = *c.Spec.Worker.Replicas
				}
				if c.Status.Phase != daskv1.DaskClusterRunning || c.Status.ReadyReplicas != want {
					unsettled++
					example = fmt.Sprintf("%s/%s (%s, %d/%d ready)", ns, c.Name, c.Status.Phase, c.Status.ReadyReplicas, want)
				}
			}
		}
		if unsettled == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d clusters not settled after %s, for example %s", unsettled, timeout, example)
		}
		time.Sleep(2 * time.Second)
	}
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

// operatorProcess is the operator binary, measured through /proc and its
// metrics endpoint.
type operatorProcess struct {
	cmd     *exec.Cmd
	metrics string
	pprof   string
	started time.Time
}

// shippedEnv is the environment the shipped Deployment
// (manifests/deploy/40-deployment.yaml) gives the operator (GOMEMLIMIT),
// so that memory is measured as users run it; a variable set in the
// environment wins.
func shippedEnv(root string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(root, "manifests", "deploy", "40-deployment.yaml"))
	if err != nil {
		return nil, err
	}
	var d appsv1.Deployment
	if err := yaml.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("40-deployment.yaml: %w", err)
	}
	var out []string
	for _, c := range d.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			// One set in the environment wins, to try another setting.
			if _, set := os.LookupEnv(e.Name); !set && e.ValueFrom == nil {
				out = append(out, e.Name+"="+e.Value)
			}
		}
	}
	return out, nil
}

func startOperatorWith(bin, kubeconfig, schedulerURL string, env []string) (*operatorProcess, error) {
	log, err := os.Create(filepath.Join(os.TempDir(), "dask-operator-bench.log"))
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--kubeconfig="+kubeconfig, "--leader-elect=false",
		"--kube-api-qps="+strconv.Itoa(*qps), "--kube-api-burst="+strconv.Itoa(*burst),
		"--metrics-bind-address="+addr, "--health-probe-bind-address=0", "--profiling",
		"--scheduler-url-template="+schedulerURL, "--v="+strconv.Itoa(*verbosity))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &operatorProcess{cmd: cmd, metrics: "http://" + addr + "/metrics", pprof: "http://" + addr + "/debug/pprof/", started: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	return p, nil
}

func (p *operatorProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// requests is how many requests the operator's clients have sent, watches
// excluded (its dask_operator_api_requests_total tells them apart; each is
// counted when it starts, and a reflector starts one again every few
// minutes).
func (p *operatorProcess) requests() float64 {
	return p.metric("dask_operator_api_requests_total{") - p.watches()
}

// watches is how many watches the operator has started.
func (p *operatorProcess) watches() float64 {
	return p.metric("dask_operator_api_requests_total{", `verb="watch"`)
}

// metric sums the samples of the operator's metrics whose line starts with
// prefix and contains every one of also.
func (p *operatorProcess) metric(prefix string, also ...string) float64 {
	resp, err := http.Get(p.metrics)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) || slices.ContainsFunc(also, func(a string) bool { return !strings.Contains(line, a) }) {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		total += v
	}
	return total
}

// heapProfile saves the operator's heap profile (taken after a collection)
// in the temporary folder as name, for `go tool pprof`, and returns the
// live heap in MiB and the profile's path.
func (p *operatorProcess) heapProfile(name string) (float64, string) {
	path := filepath.Join(os.TempDir(), "dask-operator-bench-"+name)
	resp, err := http.Get(p.pprof + "heap?gc=1")
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(path, data, 0o644)
	}
	if err != nil {
		return -1, err.Error()
	}
	return p.metric("go_memstats_heap_alloc_bytes ") / (1 << 20), path
}

// calmControlPlane waits until kube-scheduler has bound every Pod and the
// control plane's processes (kube-apiserver, etcd, kube-scheduler,
// kube-controller-manager, kwok) together use less than 30 % of a core for
// 3 seconds in a row, at most 5 minutes. kube-scheduler binds at most 50
// Pods a second (its client's default rate limit): the Pods of a thousand
// clusters take it over a minute, and a namespace deleted before they were
// bound keeps it retrying them for as long, at little CPU. Every Pod
// created meanwhile waits its turn: a single cluster's Pods, created right
// after the baseline of a thousand, were ready after more than a second
// instead of 0.1 s. So a baseline's Pods are bound before its namespace is
// deleted, and every timed step starts on a calm control plane.
func calmControlPlane(ctx context.Context, env *testenv.Env, kube kubernetes.Interface) {
	busy := func() float64 {
		total := 0.0
		for _, pid := range env.Pids() {
			total += cpuSeconds(pid)
		}
		return total
	}
	unbound := func() int {
		pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=", ResourceVersion: "0"})
		if err != nil {
			return -1
		}
		return len(pods.Items)
	}
	start, calmFor := time.Now(), 0
	for time.Since(start) < 5*time.Minute && ctx.Err() == nil {
		before := busy()
		time.Sleep(time.Second)
		if busy()-before < 0.3 && unbound() == 0 {
			calmFor++
		} else {
			calmFor = 0
		}
		if calmFor == 3 {
			if waited := time.Since(start); waited > 5*time.Second {
				fmt.Printf("  (waited %.0f s for the control plane to bind every Pod and calm down)\n", waited.Seconds())
			}
			return
		}
	}
	fmt.Println("  the control plane stayed busy for 5 minutes; measuring anyway")
}

// quiet waits until the operator has sent no request for a while (its last
// status writes done, every Pod ready), so that what is timed next, or
// measured as idle, is not the tail of what came before.
func (p *operatorProcess) quiet(ctx context.Context, spell time.Duration) {
	last, since := p.requests(), time.Now()
	for start := time.Now(); time.Since(start) < 10*time.Minute && ctx.Err() == nil; time.Sleep(time.Second) {
		if n := p.requests(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= spell {
			return
		}
	}
	fmt.Println("  the operator never went quiet for", spell)
}

func (p *operatorProcess) rssMiB() float64     { return procMiB(p.cmd.Process.Pid, "VmRSS") }
func (p *operatorProcess) peakRSSMiB() float64 { return procMiB(p.cmd.Process.Pid, "VmHWM") }
func (p *operatorProcess) cpuSeconds() float64 { return cpuSeconds(p.cmd.Process.Pid) }

// procMiB reads a memory field (VmRSS, VmHWM) of a process, in MiB.
func procMiB(pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
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

// cpuSeconds is the CPU time a process has used.
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ = 100 on Linux)
}
