package migration

import (
	"context"
	"fmt"
	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/resources"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// How long each step may take.
const (
	kopfCreates = 3 * time.Minute // the Python operator's clusters Running, workers joined
	takeover    = 90 * time.Second
	scaleStep   = 2 * time.Minute
	deletion    = 2 * time.Minute
)

// routes enables the scheduler's HTTP API, as a user of the Python operator
// who wanted graceful scale-down had set it.
const routes = `["distributed.http.scheduler.prometheus", "distributed.http.scheduler.info", "distributed.http.scheduler.json", ` +
	`"distributed.http.health", "distributed.http.proxy", "distributed.http.statics", "distributed.http.scheduler.api"]`

// Issue 14, part 3: the Python operator (kopf, unchanged) makes two
// clusters on real Dask, one as make_cluster_spec makes it and one whose
// scheduler enables the HTTP API; a client holds results in their workers'
// memory. The Python operator is stopped and this operator started: at every
// Pod event there is at most one scheduler per cluster, no more workers than
// asked for, and no Pod of the Python operator is deleted; its Deployments
// and ReplicaSets go, the Pods are adopted. Then a cluster is scaled up and
// down (gracefully, through the adopted scheduler) and both are deleted,
// leaving nothing behind. No held result is lost or computed again.
func TestTakeoverFromThePythonOperator(t *testing.T) {
	incumbent := testenv.IncumbentDir(t)
	ns := env.Namespace(t, "takeover-")
	ctx := context.Background()

	kopf := startKopf(t, incumbent, ns)
	createWithTheClientsSpec(t, incumbent, ns, "plain", "")
	createWithTheClientsSpec(t, incumbent, ns, "api", routes)
	ips := map[string]string{}
	for _, name := range []string{"plain", "api"} {
		ips[name] = waitKopfCluster(t, ns, name, kopf)
	}

	dir := t.TempDir()
	runs, gather := filepath.Join(dir, "runs"), filepath.Join(dir, "gather")
	client := testenv.StartPython(t, `
import os, time
from dask.distributed import Client, wait
held = {}
for name in ("plain", "api"):
    c = Client(os.environ[name.upper()], timeout=30)
    c.wait_for_workers(2, timeout=120)
    def make(i, name=name):
        with open("`+runs+`", "a") as f:
            f.write(f"{name}-{i}\n")
        return (i, b"x" * 1_000_000)
    fs = c.map(make, range(20), pure=False)
    wait(fs)
    held[name] = (c, fs)
print("held", flush=True)
while not os.path.exists(os.environ["GATHER"]):
    time.sleep(0.2)
for name, (c, fs) in held.items():
    print("sum", name, sum(i for i, data in c.gather(fs) if len(data) == 1_000_000), flush=True)
print("done", flush=True)
`, "PLAIN=tcp://"+ips["plain"]+":8786", "API=tcp://"+ips["api"]+":8786", "GATHER="+gather)
	client.WaitLine(t, "held", 3*time.Minute)

	kopf.stop(t)
	before := settledKopfPods(t, ns)
	require.Len(t, before.Items, 6, "two schedulers and four workers, from the Python operator's Deployments")
	watcher := watchPods(t, ns, before)

	resolver, err := daskapi.NewProxyResolver(env.Config)
	require.NoError(t, err)
	op, err := env.RunOperator(controller.Options{
		Namespaces:            []string{ns},
		Resolver:              resolver,
		RetireFallbackAfter:   time.Minute,
		RetireTimeout:         30 * time.Second,
		SchedulerPollInterval: time.Second,
		SchedulerCallTimeout:  5 * time.Second,
	}, filepath.Join(dir, "operator.log"))
	require.NoError(t, err)
	t.Cleanup(func() { op.Stop(t.Failed()) })
	started := time.Now()

	// The takeover: the Deployments and ReplicaSets go, every Pod is kept
	// and adopted.
	testenv.Eventually(t, takeover, func() (bool, string) {
		deps, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		rss, err := kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		var owners []string
		adopted := 0
		for _, p := range pods.Items {
			ref := metav1.GetControllerOf(&p)
			if _, original := watcher.original[p.UID]; original && ref != nil && (ref.Kind == "DaskCluster" || ref.Kind == "DaskWorkerGroup") {
				adopted++
			}
			if ref != nil {
				owners = append(owners, p.Name+"->"+ref.Kind)
			}
		}
		return len(deps.Items) == 0 && len(rss.Items) == 0 && adopted == 6 && len(pods.Items) == 6,
			fmt.Sprintf("%d Deployments, %d ReplicaSets, %d of the 6 Pods adopted, %d Pods (%v)", len(deps.Items), len(rss.Items), adopted, len(pods.Items), owners)
	})
	for _, name := range []string{"plain", "api"} {
		testenv.Eventually(t, 30*time.Second, func() (bool, string) {
			c, err := dask.KubernetesV1().DaskClusters(ns).Get(ctx, name, metav1.GetOptions{})
			require.NoError(t, err)
			g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(ctx, name+"-default", metav1.GetOptions{})
			require.NoError(t, err)
			return apimeta.FindStatusCondition(c.Status.Conditions, daskv1.ConditionTakingOver) == nil &&
					apimeta.FindStatusCondition(g.Status.Conditions, daskv1.ConditionTakingOver) == nil &&
					len(c.Finalizers) == 0 && string(c.Status.Phase) == "Running" && g.Status.ReadyReplicas == 2,
				fmt.Sprintf("cluster %s: phase %s, finalizers %v, conditions %v; group ready %d, conditions %v",
					name, c.Status.Phase, c.Finalizers, c.Status.Conditions, g.Status.ReadyReplicas, g.Status.Conditions)
		})
	}
	// Users learn that the adopted make_cluster_spec scheduler cannot retire
	// workers gracefully.
	waitEvent(t, ns, "plain", corev1.EventTypeWarning, daskv1.ReasonAdoptedSchedulerWithoutAPI)
	assert.False(t, hasEvent(t, ns, "api", corev1.EventTypeWarning, daskv1.ReasonAdoptedSchedulerWithoutAPI))
	waitEvent(t, ns, "api", corev1.EventTypeNormal, daskv1.ReasonAdoptedPod)
	t.Logf("taken over in %s", time.Since(started).Round(100*time.Millisecond))
	watcher.check(t, 2, "during the takeover")

	// A cluster taken over scales as usual: up with a Pod of ours that joins
	// the adopted scheduler, down through that scheduler's retire_workers.
	watcher.allowChanges()
	scale := func(n int) {
		t.Helper()
		_, err := dask.KubernetesV1().DaskWorkerGroups(ns).Patch(ctx, "api-default", types.MergePatchType,
			[]byte(fmt.Sprintf(`{"spec":{"worker":{"replicas":%d}}}`, n)), metav1.PatchOptions{})
		require.NoError(t, err)
		testenv.Eventually(t, scaleStep, func() (bool, string) {
			registered, err := testenv.RegisteredWorkers(ips["api"])
			if err != nil {
				return false, err.Error()
			}
			pods := workerPods(t, ns, "api")
			return len(registered) == n && len(pods) == n, fmt.Sprintf("registered %v, worker Pods %v, want %d", registered, pods, n)
		})
	}
	scale(3)
	scale(1)
	waitEvent(t, ns, "api-default", corev1.EventTypeNormal, daskv1.ReasonScaledDown)
	assert.False(t, hasEvent(t, ns, "api-default", corev1.EventTypeWarning, daskv1.ReasonFallbackScaleDown), "the adopted scheduler retired the workers")

	require.NoError(t, os.WriteFile(gather, nil, 0o644))
	client.WaitLine(t, "done", 2*time.Minute)
	out := client.Output()
	assert.Contains(t, out, "sum plain 190", "the results held in the adopted workers are all there")
	assert.Contains(t, out, "sum api 190", "and those of the workers retired afterwards too")
	data, err := os.ReadFile(runs)
	require.NoError(t, err)
	assert.Len(t, strings.Fields(string(data)), 40, "no held result was lost and computed again")

	// Deleting a cluster taken over leaves nothing behind.
	for _, name := range []string{"plain", "api"} {
		require.NoError(t, dask.KubernetesV1().DaskClusters(ns).Delete(ctx, name, metav1.DeleteOptions{}))
	}
	testenv.Eventually(t, deletion, func() (bool, string) {
		clusters, err := dask.KubernetesV1().DaskClusters(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		groups, err := dask.KubernetesV1().DaskWorkerGroups(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		svcs, err := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		return len(clusters.Items)+len(groups.Items)+len(pods.Items)+len(svcs.Items) == 0,
			fmt.Sprintf("left: %d clusters, %d groups, %d Pods, %d Services", len(clusters.Items), len(groups.Items), len(pods.Items), len(svcs.Items))
	})
	watcher.check(t, 3, "throughout")
}

// kopfOperator is the Python operator running in the foreground.
type kopfOperator struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startKopf(t *testing.T, incumbent, ns string) *kopfOperator {
	t.Helper()
	k := &kopfOperator{log: filepath.Join(t.TempDir(), "kopf.log"), done: make(chan struct{})}
	f, err := os.Create(k.log)
	require.NoError(t, err)
	k.cmd = exec.Command(filepath.Join(incumbent, "run-operator.sh"), env.Kubeconfig, "--namespace", ns, "--standalone")
	k.cmd.Stdout, k.cmd.Stderr = f, f
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, k.cmd.Start())
	f.Close()
	go func() { _ = k.cmd.Wait(); close(k.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
		if t.Failed() {
			data, _ := os.ReadFile(k.log)
			t.Logf("the Python operator's log, last lines:\n%s", lastLines(string(data), 40))
		}
	})
	return k
}

// stop stops the Python operator as a platform team would (SIGTERM), and
// waits until it has exited.
func (k *kopfOperator) stop(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
	}
}

func (k *kopfOperator) exited() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

// createWithTheClientsSpec applies the DaskCluster the Python client's
// make_cluster_spec builds (with the scheduler's HTTP routes when given), on
// Debian 12's Dask image: the Python operator starts dask-scheduler and
// dask-worker as written, which only images of Dask before 2026.6 have, so
// its users run those.
func createWithTheClientsSpec(t *testing.T, incumbent, ns, name, routes string) {
	t.Helper()
	script := `
import json, sys
from dask_kubernetes.operator import make_cluster_spec
spec = make_cluster_spec(name=sys.argv[1], n_workers=2, image="` + env.Images[0].Image() + `")
if sys.argv[2]:
    spec["spec"]["scheduler"]["spec"]["containers"][0]["env"] = [{"name": "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES", "value": sys.argv[2]}]
print(json.dumps(spec))
`
	cmd := exec.Command("bash", "-c", `. "$1/env.sh" && exec /usr/bin/python3 -c "$2" "$3" "$4"`, "-", incumbent, script, name, routes)
	spec, err := cmd.Output()
	require.NoError(t, err, "make_cluster_spec: %s", exitStderr(err))
	path := filepath.Join(t.TempDir(), name+".json")
	require.NoError(t, os.WriteFile(path, spec, 0o644))
	env.Kubectl(t, "", "-n", ns, "apply", "-f", path)
}

// waitKopfCluster waits until the Python operator's cluster runs: its
// scheduler Pod (from a Deployment) Ready and two worker Pods Ready. It
// returns the scheduler's address.
func waitKopfCluster(t *testing.T, ns, name string, kopf *kopfOperator) string {
	t.Helper()
	var ip string
	testenv.Eventually(t, kopfCreates, func() (bool, string) {
		if kopf.exited() {
			data, _ := os.ReadFile(kopf.log)
			t.Fatalf("the Python operator exited:\n%s", lastLines(string(data), 40))
		}
		pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: resources.ManagedSelector + "=" + name})
		require.NoError(t, err)
		ready := map[string]int{}
		for _, p := range pods.Items {
			if testenv.PodReady(&p) {
				ready[p.Labels[resources.LabelComponent]]++
				if p.Labels[resources.LabelComponent] == resources.ComponentScheduler {
					ip = p.Status.PodIP
				}
			}
		}
		deps, err := kube.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{LabelSelector: resources.ManagedSelector + "=" + name})
		require.NoError(t, err)
		return ready[resources.ComponentScheduler] == 1 && ready[resources.ComponentWorker] == 2 && len(deps.Items) == 3,
			fmt.Sprintf("cluster %s: %d Deployments, ready Pods %v", name, len(deps.Items), ready)
	})
	return ip
}

// settledKopfPods waits until what the Python operator left has settled
// (it may have changed a Deployment just before it stopped: the Deployment
// controller then rolls its Pod), every Deployment rolled out and ready
// and the same Pods for two seconds, and returns those Pods.
func settledKopfPods(t *testing.T, ns string) *corev1.PodList {
	t.Helper()
	ctx := context.Background()
	var pods *corev1.PodList
	uids := func(l *corev1.PodList) string {
		var out []string
		for _, p := range l.Items {
			out = append(out, string(p.UID))
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	testenv.Eventually(t, kopfCreates, func() (bool, string) {
		deps, err := kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		for _, d := range deps.Items {
			want := int32(1)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			if st := d.Status; st.ObservedGeneration != d.Generation || st.Replicas != want || st.UpdatedReplicas != want || st.ReadyReplicas != want {
				return false, fmt.Sprintf("Deployment %s not rolled out: %+v", d.Name, st)
			}
		}
		first, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		time.Sleep(2 * time.Second)
		pods, err = kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		return uids(first) == uids(pods), "the Pods keep changing"
	})
	return pods
}

// podWatcher records, at every Pod event, what must hold while a cluster is
// taken over.
type podWatcher struct {
	mu         sync.Mutex
	violations []string
	changes    bool // scaling has begun: worker Pods may come and go
	original   map[types.UID]string
	live       map[types.UID]*corev1.Pod
	events     int
}

func watchPods(t *testing.T, ns string, start *corev1.PodList) *podWatcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: start.ResourceVersion})
	require.NoError(t, err)
	pw := &podWatcher{original: map[types.UID]string{}, live: map[types.UID]*corev1.Pod{}}
	for i := range start.Items {
		p := &start.Items[i]
		pw.original[p.UID], pw.live[p.UID] = p.Name, p
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			pw.observe(ev.Type, p)
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return pw
}

func (pw *podWatcher) observe(typ watch.EventType, p *corev1.Pod) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.events++
	gone := typ == watch.Deleted || p.DeletionTimestamp != nil
	if gone {
		delete(pw.live, p.UID)
	} else {
		pw.live[p.UID] = p
	}
	if name, ok := pw.original[p.UID]; ok && gone && !pw.changes {
		pw.violations = append(pw.violations, fmt.Sprintf("Pod %s of the Python operator was deleted during the takeover", name))
	}
	schedulers, workers := map[string][]string{}, map[string][]string{}
	for _, q := range pw.live {
		if q.Status.Phase == corev1.PodSucceeded || q.Status.Phase == corev1.PodFailed {
			continue
		}
		cluster := q.Labels[resources.LabelClusterName]
		switch q.Labels[resources.LabelComponent] {
		case resources.ComponentScheduler:
			schedulers[cluster] = append(schedulers[cluster], q.Name)
		case resources.ComponentWorker:
			workers[q.Labels[resources.LabelWorkerGroupName]] = append(workers[q.Labels[resources.LabelWorkerGroupName]], q.Name)
		}
	}
	for cluster, names := range schedulers {
		if len(names) > 1 {
			pw.violations = append(pw.violations, fmt.Sprintf("cluster %s has %d schedulers: %v", cluster, len(names), names))
		}
	}
	limit := 2
	if pw.changes {
		limit = 3
	}
	for group, names := range workers {
		if len(names) > limit {
			pw.violations = append(pw.violations, fmt.Sprintf("group %s has %d workers, more than %d: %v", group, len(names), limit, names))
		}
	}
}

func (pw *podWatcher) allowChanges() {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.changes = true
}

// check fails the test on any violation seen so far; minEvents shows the
// watch saw the Pods change (the adoptions at least).
func (pw *podWatcher) check(t *testing.T, minEvents int, when string) {
	t.Helper()
	pw.mu.Lock()
	defer pw.mu.Unlock()
	assert.Empty(t, pw.violations, when)
	assert.GreaterOrEqual(t, pw.events, minEvents, "the watch saw the Pods change %s", when)
}

func workerPods(t *testing.T, ns, cluster string) []string {
	t.Helper()
	pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: resources.ManagedSelector + "=" + cluster + "," + resources.LabelComponent + "=" + resources.ComponentWorker})
	require.NoError(t, err)
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			names = append(names, p.Name)
		}
	}
	return names
}

// hasEvent tells whether the operator recorded the event so far.
func hasEvent(t *testing.T, ns, name, typ, reason string) bool {
	t.Helper()
	evs, err := kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	require.NoError(t, err)
	for _, e := range evs.Items {
		if e.Type == typ && e.Reason == reason && e.Source.Component == "dask-operator" {
			return true
		}
	}
	return false
}

// waitEvent waits for an event: the recorder writes them asynchronously.
func waitEvent(t *testing.T, ns, name, typ, reason string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, func() (bool, string) {
		return hasEvent(t, ns, name, typ, reason), fmt.Sprintf("no %s event %s on %s", typ, reason, name)
	})
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
