package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// rolloutCluster creates DaskCluster name (the test fixture) with n workers
// whose scheduler is a FakeScheduler knowing the cluster's worker Pods, and
// waits for the workers.
func rolloutCluster(t *testing.T, ns, name string, n int64, edit func(*unstructured.Unstructured)) *testenv.FakeScheduler {
	t.Helper()
	sched, err := testenv.NewFakeScheduler(kube, labels.SelectorFromSet(resources.WorkerGroupSelector(name, resources.DefaultWorkerGroupName(name))).String())
	require.NoError(t, err)
	t.Cleanup(sched.Close)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		u.SetName(name)
		require.NoError(t, unstructured.SetNestedStringMap(u.Object, map[string]string{}, "spec", "scheduler", "service", "selector"))
		setDashboardPort(t, u, []string{"spec", "scheduler"}, sched.Port)
		require.NoError(t, unstructured.SetNestedField(u.Object, n, "spec", "worker", "replicas"))
		if edit != nil {
			edit(u)
		}
	})
	waitWorkers(t, ns, name, resources.DefaultWorkerGroupName(name), int(n), time.Minute)
	return sched
}

// podWatch checks, at every Pod event of a group, the bounds of a rollout:
// at most maxPods Pods (terminating ones included), at least minReady Ready
// ones not being deleted (once armed), and no Ready worker deleted before
// the scheduler retired it.
type podWatch struct {
	mu         sync.Mutex
	violations []string
	maxSeen    int
	minSeen    int
}

func watchRollout(t *testing.T, ns, cluster string, sched *testenv.FakeScheduler, maxPods, minReady int) *podWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sel := labels.SelectorFromSet(resources.WorkerGroupSelector(cluster, resources.DefaultWorkerGroupName(cluster))).String()
	list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	require.NoError(t, err)
	w, err := kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: list.ResourceVersion})
	require.NoError(t, err)
	pw := &podWatch{minSeen: 1 << 30}
	pods := map[string]*corev1.Pod{}
	for i := range list.Items {
		pods[list.Items[i].Name] = &list.Items[i]
	}
	check := func() {
		ready := 0
		for _, p := range pods {
			if p.DeletionTimestamp == nil && testenv.PodReady(p) {
				ready++
			}
		}
		pw.maxSeen, pw.minSeen = max(pw.maxSeen, len(pods)), min(pw.minSeen, ready)
		if len(pods) > maxPods {
			pw.violations = append(pw.violations, fmt.Sprintf("%d Pods exist, more than %d", len(pods), maxPods))
		}
		if ready < minReady {
			pw.violations = append(pw.violations, fmt.Sprintf("%d Ready workers, fewer than %d", ready, minReady))
		}
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			pw.mu.Lock()
			old := pods[p.Name]
			deleting := ev.Type == watch.Deleted || p.DeletionTimestamp != nil
			if deleting && old != nil && old.DeletionTimestamp == nil && testenv.PodReady(old) && !sched.Retired(p.Name) {
				pw.violations = append(pw.violations, fmt.Sprintf("Ready worker %s deleted before the scheduler retired it", p.Name))
			}
			if ev.Type == watch.Deleted {
				delete(pods, p.Name)
			} else {
				pods[p.Name] = p
			}
			check()
			pw.mu.Unlock()
		}
	}()
	return pw
}

func (pw *podWatch) report() ([]string, int, int) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return append([]string(nil), pw.violations...), pw.maxSeen, pw.minSeen
}

func patchCluster(t *testing.T, ns, name, patch string) {
	t.Helper()
	_, err := dask.KubernetesV1().DaskClusters(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	require.NoError(t, err)
}

func getGroup(t *testing.T, ns, name string) *daskv1.DaskWorkerGroup {
	t.Helper()
	g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return g
}

// waitUpdated waits until every worker of the group runs its current
// template, Ready, and the status says so.
func waitUpdated(t *testing.T, ns, cluster string, n int, timeout time.Duration) *daskv1.DaskWorkerGroup {
	t.Helper()
	var g *daskv1.DaskWorkerGroup
	want := resources.TemplateHash(&getCluster(t, ns, cluster).Spec.Worker.Spec)
	eventually(t, timeout, func() (bool, string) {
		g = getGroup(t, ns, resources.DefaultWorkerGroupName(cluster))
		if g.Status.TemplateHash != want {
			return false, fmt.Sprintf("the group runs template %q, not yet the cluster's %s", g.Status.TemplateHash, want)
		}
		pods := workerPods(t, ns, cluster, g.Name)
		current, ready := 0, 0
		for i := range pods {
			if !resources.Outdated(&pods[i], resources.WorkerTemplateHash(g)) && pods[i].Labels[resources.LabelTemplateHash] != "" {
				current++
			}
			if isReady(&pods[i]) {
				ready++
			}
		}
		cond := condition(g.Status.Conditions, "Updated")
		done := len(pods) == n && current == n && ready == n && g.Status.UpdatedReplicas == int32(n) &&
			g.Status.ObservedGeneration == g.Generation && cond != nil && cond.Status == metav1.ConditionTrue
		return done, fmt.Sprintf("%d Pods, %d current, %d Ready; status %+v", len(pods), current, ready, g.Status)
	})
	return g
}

// A new worker image with 6 workers and the default strategy: never fewer
// than 6 Ready workers, never more than 8 Pods, every old Ready worker
// retired through the scheduler before its Pod is deleted; then the status
// says Updated, which `kubectl wait` waits on.
func TestRollingUpdateOfWorkers(t *testing.T) {
	ns := newNamespace(t)
	sched := rolloutCluster(t, ns, "roll", 6, nil)
	before := workerPods(t, ns, "roll", "roll-default")
	pw := watchRollout(t, ns, "roll", sched, 8, 6)

	patchCluster(t, ns, "roll", `{"spec":{"worker":{"spec":{"containers":[{"name":"worker","image":"ghcr.io/dask/dask:2099.1.0",
		"args":["dask-worker","--name","$(DASK_WORKER_NAME)"]}]}}}}`)
	g := waitUpdated(t, ns, "roll", 6, 2*time.Minute)
	// What the README tells users to wait on.
	kubectl(t, "wait", "-n", ns, "daskworkergroup/roll-default", "--for=condition=Updated", "--timeout=10s")
	kubectl(t, "wait", "-n", ns, "daskcluster/roll", "--for=condition=WorkersUpdated", "--timeout=30s")
	for _, p := range workerPods(t, ns, "roll", "roll-default") {
		assert.Equal(t, "ghcr.io/dask/dask:2099.1.0", p.Spec.Containers[0].Image)
	}
	for _, p := range before {
		assert.True(t, sched.Retired(p.Name), "old worker %s was retired", p.Name)
	}
	violations, maxSeen, minSeen := pw.report()
	assert.Empty(t, violations)
	assert.Greater(t, maxSeen, 6, "the rollout surged")
	assert.GreaterOrEqual(t, minSeen, 6)
	progressing := condition(g.Status.Conditions, "Progressing")
	require.NotNil(t, progressing)
	assert.Equal(t, "RolloutComplete", progressing.Reason)
	waitEvent(t, ns, "roll-default", corev1.EventTypeNormal, "RollingUpdate")
	waitEvent(t, ns, "roll-default", corev1.EventTypeNormal, "RolloutComplete")

	// Labels reach running workers in place: no rollout.
	patchCluster(t, ns, "roll", `{"spec":{"worker":{"metadata":{"labels":{"in-place":"yes"}}}}}`)
	eventually(t, 30*time.Second, func() (bool, string) {
		pods := workerPods(t, ns, "roll", "roll-default")
		for _, p := range pods {
			if p.Labels["in-place"] != "yes" {
				return false, "label not on " + p.Name
			}
		}
		return len(pods) == 6, fmt.Sprintf("%d Pods", len(pods))
	})
	after := podNames(workerPods(t, ns, "roll", "roll-default"))
	time.Sleep(2 * time.Second)
	assert.ElementsMatch(t, after, podNames(workerPods(t, ns, "roll", "roll-default")), "a label change replaces no worker")
}

// New workers that never get Ready (a nodeSelector no node matches): the
// rollout makes maxSurge of them, retires no old worker, and reports the
// stall; fixing the template lets it finish.
func TestRollingUpdateStallsAndResumes(t *testing.T) {
	ns := newNamespace(t)
	sched := rolloutCluster(t, ns, "stall", 6, func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(3), "spec", "worker", "strategy", "progressDeadlineSeconds"))
	})
	before := workerPods(t, ns, "stall", "stall-default")
	pw := watchRollout(t, ns, "stall", sched, 8, 6)
	patchCluster(t, ns, "stall", `{"spec":{"worker":{"spec":{"nodeSelector":{"no-such-node":"true"}}}}}`)
	waitEvent(t, ns, "stall-default", corev1.EventTypeWarning, "ProgressDeadlineExceeded")
	eventually(t, 30*time.Second, func() (bool, string) {
		cond := condition(getGroup(t, ns, "stall-default").Status.Conditions, "Progressing")
		return cond != nil && cond.Status == metav1.ConditionFalse && strings.Contains(cond.Message, "2 new workers not Ready"),
			fmt.Sprintf("condition %+v", cond)
	})
	pods := workerPods(t, ns, "stall", "stall-default")
	assert.Len(t, pods, 8, "6 old workers and maxSurge new ones")
	for _, p := range before {
		assert.False(t, sched.Retired(p.Name), "no old worker is retired while new ones are not Ready")
	}

	patchCluster(t, ns, "stall", `{"spec":{"worker":{"spec":{"nodeSelector":null}}}}`)
	waitUpdated(t, ns, "stall", 6, 2*time.Minute)
	violations, _, _ := pw.report()
	assert.Empty(t, violations)
}

// OnDelete leaves running workers alone and says so.
func TestOnDeleteStrategy(t *testing.T) {
	ns := newNamespace(t)
	rolloutCluster(t, ns, "ondel", 3, func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, "OnDelete", "spec", "worker", "strategy", "type"))
	})
	before := podNames(workerPods(t, ns, "ondel", "ondel-default"))
	patchCluster(t, ns, "ondel", `{"spec":{"worker":{"spec":{"containers":[{"name":"worker","image":"other:1"}]}}}}`)
	eventually(t, 30*time.Second, func() (bool, string) {
		g := getGroup(t, ns, "ondel-default")
		cond := condition(g.Status.Conditions, "Updated")
		return cond != nil && cond.Reason == "OnDelete", fmt.Sprintf("conditions %+v", g.Status.Conditions)
	})
	time.Sleep(2 * time.Second)
	assert.ElementsMatch(t, before, podNames(workerPods(t, ns, "ondel", "ondel-default")), "running workers are kept")

	// A deleted worker comes back with the new template.
	kubectl(t, "delete", "pod", "-n", ns, before[0])
	eventually(t, 30*time.Second, func() (bool, string) {
		for _, p := range workerPods(t, ns, "ondel", "ondel-default") {
			if p.Spec.Containers[0].Image == "other:1" {
				return true, ""
			}
		}
		return false, "no worker with the new image"
	})
}

// A changed scheduler spec is recorded and the scheduler kept; with
// updateStrategy Recreate the scheduler Pod is made anew.
func TestSchedulerSpecChange(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", nil)
	var uid types.UID
	eventually(t, time.Minute, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), "simple-scheduler", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		uid = p.UID
		return isReady(p), "scheduler not Ready"
	})
	patchCluster(t, ns, "simple", `{"spec":{"scheduler":{"spec":{"containers":[{"name":"scheduler","image":"ghcr.io/dask/dask:2099.1.0","args":["dask-scheduler"]}]}}}}`)
	waitEvent(t, ns, "simple", corev1.EventTypeNormal, "SchedulerOutdated")
	eventually(t, 30*time.Second, func() (bool, string) {
		cond := condition(getCluster(t, ns, "simple").Status.Conditions, "SchedulerOutdated")
		return cond != nil && cond.Status == metav1.ConditionTrue && strings.Contains(cond.Message, "spec.containers[0].image"),
			fmt.Sprintf("condition %+v", cond)
	})
	p, err := kube.CoreV1().Pods(ns).Get(context.Background(), "simple-scheduler", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, uid, p.UID, "the scheduler is kept")

	patchCluster(t, ns, "simple", `{"spec":{"scheduler":{"updateStrategy":"Recreate"}}}`)
	eventually(t, time.Minute, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), "simple-scheduler", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		c := getCluster(t, ns, "simple")
		return p.UID != uid && p.Spec.Containers[0].Image == "ghcr.io/dask/dask:2099.1.0" && condition(c.Status.Conditions, "SchedulerOutdated") == nil,
			fmt.Sprintf("scheduler %s image %s", p.UID, p.Spec.Containers[0].Image)
	})
	waitEvent(t, ns, "simple", corev1.EventTypeNormal, "SchedulerRecreated")

	// Where the scheduler is, in the status and in `kubectl get -o wide`.
	c := getCluster(t, ns, "simple")
	assert.Equal(t, "tcp://simple-scheduler."+ns+".svc.cluster.local:8786", c.Status.SchedulerAddress)
	assert.Equal(t, "http://simple-scheduler."+ns+".svc.cluster.local:8787", c.Status.DashboardURL)
	assert.Contains(t, kubectl(t, "get", "-n", ns, "dsk", "simple", "-o", "wide"), c.Status.DashboardURL)
}

// Suspend removes the scheduler and every worker, keeps the Service, the
// groups and the autoscaler, and the autoscaler does nothing; resuming
// brings the cluster back.
func TestSuspendAndResumeCluster(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "cluster.yaml", nil)
	applyFixture(t, ns, "workergroup.yaml", nil)
	applyFixture(t, ns, "autoscaler.yaml", nil)
	eventually(t, time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "simple")
		return c.Status.Phase == daskv1.DaskClusterRunning && c.Status.ReadyReplicas > 0, fmt.Sprintf("status %+v", c.Status)
	})
	patchCluster(t, ns, "simple", `{"spec":{"suspend":true}}`)
	eventually(t, time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "simple")
		pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: resources.LabelClusterName + "=simple"})
		require.NoError(t, err)
		return c.Status.Phase == daskv1.DaskClusterSuspended && len(pods.Items) == 0,
			fmt.Sprintf("phase %s, %d Pods", c.Status.Phase, len(pods.Items))
	})
	_, err := kube.CoreV1().Services(ns).Get(context.Background(), "simple-scheduler", metav1.GetOptions{})
	require.NoError(t, err, "the Service is kept")
	groups, err := dask.KubernetesV1().DaskWorkerGroups(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, groups.Items, 2, "the groups are kept")
	eventually(t, 30*time.Second, func() (bool, string) {
		as, err := dask.KubernetesV1().DaskAutoscalers(ns).Get(context.Background(), "simple", metav1.GetOptions{})
		require.NoError(t, err)
		cond := condition(as.Status.Conditions, "ScalingActive")
		return cond != nil && cond.Reason == "ClusterSuspended", fmt.Sprintf("conditions %+v", as.Status.Conditions)
	})
	replicas := *getGroup(t, ns, "simple-default").Spec.Worker.Replicas
	time.Sleep(3 * time.Second) // longer than the autoscaler's cooldown and poll
	assert.Equal(t, replicas, *getGroup(t, ns, "simple-default").Spec.Worker.Replicas, "the autoscaler scales nothing while suspended")
	pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: resources.LabelClusterName + "=simple"})
	require.NoError(t, err)
	assert.Empty(t, pods.Items, "no Pod comes back while suspended")
	waitEvent(t, ns, "simple", corev1.EventTypeNormal, "Suspended")

	patchCluster(t, ns, "simple", `{"spec":{"suspend":false}}`)
	eventually(t, time.Minute, func() (bool, string) {
		c := getCluster(t, ns, "simple")
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), "simple-scheduler", metav1.GetOptions{})
		return err == nil && c.Status.Phase == daskv1.DaskClusterRunning && len(workerPods(t, ns, "simple", "simple-default")) > 0 && p != nil,
			fmt.Sprintf("phase %s", c.Status.Phase)
	})
	waitEvent(t, ns, "simple", corev1.EventTypeNormal, "Resumed")
}

// What admission can check, it refuses, with a message that says what to do.
func TestRolloutAndSuspendValidation(t *testing.T) {
	ns := newNamespace(t)
	for _, tc := range []struct{ name, patch, want string }{
		{"bad maxSurge", `{"spec":{"worker":{"strategy":{"rollingUpdate":{"maxSurge":"lots"}}}}}`, "maxSurge must be a non-negative number or a percentage"},
		{"negative maxUnavailable", `{"spec":{"worker":{"strategy":{"rollingUpdate":{"maxUnavailable":-1}}}}}`, "maxUnavailable must be a non-negative number"},
		{"both zero", `{"spec":{"worker":{"strategy":{"rollingUpdate":{"maxSurge":0,"maxUnavailable":"0%"}}}}}`, "cannot both be 0"},
		{"rollingUpdate with OnDelete", `{"spec":{"worker":{"strategy":{"type":"OnDelete","rollingUpdate":{"maxSurge":1}}}}}`, "may only be set when type is RollingUpdate"},
		{"unknown strategy", `{"spec":{"worker":{"strategy":{"type":"Sometimes"}}}}`, "Unsupported value"},
		{"unknown scheduler strategy", `{"spec":{"scheduler":{"updateStrategy":"Always"}}}`, "Unsupported value"},
		{"zero deadline", `{"spec":{"worker":{"strategy":{"progressDeadlineSeconds":0}}}}`, "progressDeadlineSeconds"},
		{"negative replicas", `{"spec":{"worker":{"replicas":-1}}}`, "replicas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := testenv.Fixture(t, "cluster.yaml").Object.DeepCopy()
			u.SetNamespace(ns)
			u.SetName("v-" + strings.ReplaceAll(strings.ToLower(tc.name), " ", "-"))
			created := createUnstructured(t, u)
			_, err := dask.KubernetesV1().DaskClusters(ns).Patch(context.Background(), created.GetName(), types.MergePatchType, []byte(tc.patch), metav1.PatchOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// A good strategy is accepted.
	patchCluster(t, ns, "v-bad-maxsurge", `{"spec":{"worker":{"strategy":{"rollingUpdate":{"maxSurge":"50%","maxUnavailable":1}}}}}`)

	// An autoscaler's cluster, like a group's, cannot change.
	applyFixture(t, ns, "autoscaler.yaml", nil)
	_, err := dask.KubernetesV1().DaskAutoscalers(ns).Patch(context.Background(), "simple", types.MergePatchType, []byte(`{"spec":{"cluster":"other"}}`), metav1.PatchOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.cluster is immutable")
}
