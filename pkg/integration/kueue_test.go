package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/kueue"
)

// kueueQueue makes a ResourceFlavor, a ClusterQueue with cpu quota for
// namespace ns only, and a LocalQueue "q" in ns pointing at it: what a
// platform team sets up. flavorSpec is the flavor's spec (YAML, may be
// empty); preempt lets higher-priority workloads preempt lower ones.
func kueueQueue(t *testing.T, ns, cpu, flavorSpec string, preempt bool) string {
	t.Helper()
	client := dynamic.NewForConfigOrDie(env.Config)
	ctx := context.Background()
	name := ns // unique per test
	if flavorSpec == "" {
		flavorSpec = "{}"
	}
	preemption := ""
	if preempt {
		preemption = ", preemption: {withinClusterQueue: LowerPriority}"
	}
	objs := []struct{ resource, ns, doc string }{
		{"resourceflavors", "", fmt.Sprintf(`{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: %s}, spec: %s}`, name, flavorSpec)},
		{"clusterqueues", "", fmt.Sprintf(`{apiVersion: kueue.x-k8s.io/v1beta2, kind: ClusterQueue, metadata: {name: %s},
  spec: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %s}}%s,
    resourceGroups: [{coveredResources: [cpu], flavors: [{name: %s, resources: [{name: cpu, nominalQuota: %q}]}]}]}}`, name, ns, preemption, name, cpu)},
		{"localqueues", ns, fmt.Sprintf(`{apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: q, namespace: %s}, spec: {clusterQueue: %s}}`, ns, name)},
	}
	for _, o := range objs {
		obj := &unstructured.Unstructured{}
		require.NoError(t, yaml.Unmarshal([]byte(o.doc), &obj.Object))
		_, err := client.Resource(kueue.GroupVersion.WithResource(o.resource)).Namespace(o.ns).Create(ctx, obj, metav1.CreateOptions{})
		require.NoError(t, err, o.doc)
	}
	t.Cleanup(func() {
		_ = client.Resource(kueue.GroupVersion.WithResource("clusterqueues")).Delete(ctx, name, metav1.DeleteOptions{})
		_ = client.Resource(kueue.ResourceFlavorResource).Delete(ctx, name, metav1.DeleteOptions{})
	})
	return "q"
}

// workloadPriorityClass makes a WorkloadPriorityClass.
func workloadPriorityClass(t *testing.T, name string, value int) {
	t.Helper()
	client := dynamic.NewForConfigOrDie(env.Config)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "WorkloadPriorityClass",
		"metadata": map[string]any{"name": name}, "value": int64(value),
	}}
	_, err := client.Resource(kueue.WorkloadPriorityClassResource).Create(context.Background(), obj, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
}

// queuedJob is a DaskJob in queue q: a runner asking for 1 cpu, a
// scheduler and one worker asking for 500m each (2 cpu in all).
func queuedJob(ns, name, queue string, labels map[string]string) *daskv1.DaskJob {
	req := func(cpu string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}
	}
	container := func(name, cpu string, args ...string) corev1.Container {
		return corev1.Container{Name: name, Image: "ghcr.io/dask/dask:latest", Args: args, Resources: req(cpu)}
	}
	one := int32(1)
	l := map[string]string{kueue.LabelQueueName: queue}
	for k, v := range labels {
		l[k] = v
	}
	return &daskv1.DaskJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l},
		Spec: daskv1.DaskJobSpec{
			Job: daskv1.JobRunnerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{container("job", "1", "python", "-c", "print(1)")}}},
			Cluster: daskv1.JobClusterSpec{Spec: daskv1.DaskClusterSpec{
				Scheduler: daskv1.SchedulerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{container("scheduler", "500m", "dask", "scheduler")}}},
				Worker:    daskv1.WorkerSpec{Replicas: &one, Spec: corev1.PodSpec{Containers: []corev1.Container{container("worker", "500m", "dask", "worker")}}},
			}},
		},
	}
}

func createJob(t *testing.T, j *daskv1.DaskJob) {
	t.Helper()
	_, err := dask.KubernetesV1().DaskJobs(j.Namespace).Create(context.Background(), j, metav1.CreateOptions{})
	require.NoError(t, err)
}

// jobWorkload returns the Workload the operator made for a job.
func jobWorkload(t *testing.T, j *daskv1.DaskJob) *kueue.Workload {
	t.Helper()
	client := dynamic.NewForConfigOrDie(env.Config)
	var found *kueue.Workload
	eventually(t, 30*time.Second, func() (bool, string) {
		list, err := client.Resource(kueue.WorkloadResource).Namespace(j.Namespace).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for i := range list.Items {
			if ref := metav1.GetControllerOf(&list.Items[i]); ref != nil && ref.Kind == "DaskJob" && ref.Name == j.Name {
				found, err = kueue.FromUnstructured(&list.Items[i])
				return err == nil, fmt.Sprint(err)
			}
		}
		return false, "no Workload owned by DaskJob " + j.Name
	})
	return found
}

func waitCondition(t *testing.T, ns, name, typ string, status metav1.ConditionStatus, reason string, timeout time.Duration) *daskv1.DaskJob {
	t.Helper()
	var j *daskv1.DaskJob
	eventually(t, timeout, func() (bool, string) {
		j = getJob(t, ns, name)
		c := condition(j.Status.Conditions, typ)
		return c != nil && c.Status == status && c.Reason == reason, fmt.Sprintf("%s: %+v (jobStatus %s)", typ, c, j.Status.JobStatus)
	})
	return j
}

// assertNothingRuns checks, for a while, that a queued job has neither a
// runner nor a cluster.
func assertNothingRuns(t *testing.T, ns, name string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		_, err := kube.CoreV1().Pods(ns).Get(context.Background(), name+"-runner", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "a queued job has no runner Pod")
		_, err = dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), name, metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "a queued job has no cluster")
		time.Sleep(200 * time.Millisecond)
	}
}

// Issue 31: two DaskJobs in a queue whose quota fits one: the second waits,
// with no Pod and a condition saying why, then runs when the first ends.
func TestKueueQueuesDaskJobsWithinQuota(t *testing.T) {
	ns := newNamespace(t)
	q := kueueQueue(t, ns, "3", "", false)
	first := queuedJob(ns, "first", q, nil)
	createJob(t, first)
	waitJobStatus(t, ns, "first", daskv1.JobRunning, time.Minute)
	j := getJob(t, ns, "first")
	admitted := condition(j.Status.Conditions, daskv1.ConditionAdmitted)
	require.NotNil(t, admitted)
	assert.Equal(t, metav1.ConditionTrue, admitted.Status)
	wl := jobWorkload(t, j)
	assert.Contains(t, admitted.Message, wl.Name, "the condition names the Workload")
	require.Len(t, wl.Spec.PodSets, 3)
	assert.Equal(t, []string{"runner", "scheduler", "workers"}, []string{wl.Spec.PodSets[0].Name, wl.Spec.PodSets[1].Name, wl.Spec.PodSets[2].Name})
	assert.Equal(t, "1", wl.Spec.PodSets[0].Template.Spec.Containers[0].Resources.Requests.Cpu().String())

	second := queuedJob(ns, "second", q, nil)
	createJob(t, second)
	j = waitCondition(t, ns, "second", daskv1.ConditionAdmitted, metav1.ConditionFalse, daskv1.ReasonQueued, 30*time.Second)
	assert.Equal(t, daskv1.JobSuspended, j.Status.JobStatus)
	assertNothingRuns(t, ns, "second", 3*time.Second)
	assert.Contains(t, condition(j.Status.Conditions, daskv1.ConditionAdmitted).Message, "waits in queue q")
	out := kubectl(t, "get", "djb", "-n", ns)
	assert.Contains(t, out, "Suspended")

	finishRunner(t, ns, "first-runner", 0)
	waitJobStatus(t, ns, "first", daskv1.JobSuccessful, 30*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) {
		wl := jobWorkload(t, first)
		return wl.IsFinished(), fmt.Sprintf("first's Workload conditions %+v", wl.Status.Conditions)
	})
	waitJobStatus(t, ns, "second", daskv1.JobRunning, time.Minute)
	finishRunner(t, ns, "second-runner", 0)
	waitJobStatus(t, ns, "second", daskv1.JobSuccessful, 30*time.Second)
}

// Issue 31: a high-priority job preempts a running low-priority one, which
// is suspended (not failed, no retry used) and completes later.
func TestKueuePreemptionSuspendsTheLowPriorityJob(t *testing.T) {
	ns := newNamespace(t)
	q := kueueQueue(t, ns, "3", "", true)
	workloadPriorityClass(t, "dask-test-low", 100)
	workloadPriorityClass(t, "dask-test-high", 1000)
	low := queuedJob(ns, "low", q, map[string]string{kueue.LabelPriorityClass: "dask-test-low"})
	createJob(t, low)
	waitJobStatus(t, ns, "low", daskv1.JobRunning, time.Minute)
	assert.Equal(t, int32(100), *jobWorkload(t, low).Spec.Priority)

	createJob(t, queuedJob(ns, "high", q, map[string]string{kueue.LabelPriorityClass: "dask-test-high"}))
	j := waitCondition(t, ns, "low", daskv1.ConditionAdmitted, metav1.ConditionFalse, kueue.ReasonPreempted, time.Minute)
	assert.Equal(t, daskv1.JobSuspended, j.Status.JobStatus, "preempted, not failed")
	waitJobStatus(t, ns, "high", daskv1.JobRunning, time.Minute)
	assertNothingRuns(t, ns, "low", 2*time.Second)

	finishRunner(t, ns, "high-runner", 0)
	waitJobStatus(t, ns, "high", daskv1.JobSuccessful, 30*time.Second)
	j = waitJobStatus(t, ns, "low", daskv1.JobRunning, time.Minute)
	assert.Equal(t, int32(0), j.Status.Failed, "the preemption is no failure")
	assert.Equal(t, int32(1), j.Status.Attempts, "and used no retry")
	finishRunner(t, ns, "low-runner", 0)
	waitJobStatus(t, ns, "low", daskv1.JobSuccessful, 30*time.Second)
}

// Issue 31: the node labels and tolerations of the flavor Kueue assigned
// reach the runner, scheduler and worker Pods.
func TestKueueFlavorNodeSelectorsReachThePods(t *testing.T) {
	ns := newNamespace(t)
	node := "kueue-" + ns
	ctx := context.Background()
	require.NoError(t, env.AddKwokNode(ctx, node))
	_, err := kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType,
		[]byte(fmt.Sprintf(`{"metadata":{"labels":{"dask-test/pool":%q}}}`, ns)), metav1.PatchOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = kube.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}) })

	q := kueueQueue(t, ns, "3", fmt.Sprintf(`{nodeLabels: {dask-test/pool: %s}, tolerations: [{key: dask-test/spot, operator: Exists, effect: NoSchedule}]}`, ns), false)
	createJob(t, queuedJob(ns, "placed", q, nil))
	waitJobStatus(t, ns, "placed", daskv1.JobRunning, time.Minute)
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "dask.org/cluster-name=placed"})
	require.NoError(t, err)
	var components []string
	for _, p := range pods.Items {
		components = append(components, p.Labels["dask.org/component"])
		assert.Equal(t, ns, p.Spec.NodeSelector["dask-test/pool"], "%s has the flavor's node labels", p.Name)
		assert.Equal(t, node, p.Spec.NodeName, "%s runs on the flavor's node", p.Name)
		var tolerated bool
		for _, tol := range p.Spec.Tolerations {
			tolerated = tolerated || tol.Key == "dask-test/spot"
		}
		assert.True(t, tolerated, "%s has the flavor's toleration", p.Name)
	}
	assert.ElementsMatch(t, []string{"job-runner", "scheduler", "worker"}, components, strings.Join(components, ","))
}

// Issue 31: a queued DaskCluster runs once admitted, and its autoscaler
// never makes it run more workers than Kueue admitted: the autoscaler
// raises the default group, the group stays at the admitted count and
// says so.
func TestKueueAutoscaledClusterNeverExceedsAdmittedWorkers(t *testing.T) {
	sched := startDaskScheduler(t)
	ns := newNamespace(t)
	q := kueueQueue(t, ns, "10", "", false)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		setDashboardPort(t, u, []string{"spec", "scheduler"}, sched.HTTPPort)
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(2), "spec", "worker", "replicas"))
		require.NoError(t, unstructured.SetNestedField(u.Object, q, "metadata", "labels", kueue.LabelQueueName))
	})
	pods := waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)
	startDaskWorker(t, sched, pods[0].Name)
	c := getCluster(t, ns, "simple")
	eventually(t, 30*time.Second, func() (bool, string) {
		c = getCluster(t, ns, "simple")
		cond := condition(c.Status.Conditions, daskv1.ConditionAdmitted)
		return cond != nil && cond.Status == metav1.ConditionTrue, fmt.Sprintf("Admitted: %+v", cond)
	})
	applyFixture(t, ns, "autoscaler.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(1), "spec", "minimum"))
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(6), "spec", "maximum"))
	})
	load := startProcess(t, "client.log", nil, "/usr/bin/python3", "-c", fmt.Sprintf(`
import time
from dask.distributed import Client
client = Client(%q)
futures = client.map(time.sleep, [0.5] * 2000, pure=False)
client.gather(futures)
`, sched.Address()))
	t.Cleanup(func() { killGroup(load); _ = load.Wait() })

	// The autoscaler asks for more; no more than the admitted 2 run.
	deadline := time.Now().Add(90 * time.Second)
	var grown bool
	for time.Now().Before(deadline) && !grown {
		g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(context.Background(), "simple-default", metav1.GetOptions{})
		require.NoError(t, err)
		running := workerPods(t, ns, "simple", "simple-default")
		require.LessOrEqual(t, len(running), 2, "never more workers than Kueue admitted")
		cond := condition(g.Status.Conditions, daskv1.ConditionAdmitted)
		grown = *g.Spec.Worker.Replicas > 2 && cond != nil && cond.Reason == daskv1.ReasonExceedsAdmission
		time.Sleep(200 * time.Millisecond)
	}
	require.True(t, grown, "the autoscaler asked for more than was admitted, and the group says it runs only those")
	for i := 0; i < 15; i++ {
		require.LessOrEqual(t, len(workerPods(t, ns, "simple", "simple-default")), 2, "never more workers than Kueue admitted")
		time.Sleep(200 * time.Millisecond)
	}
}

// Issue 31: spec.managedBy (MultiKueue's kueue.x-k8s.io/multikueue) is
// immutable, and the operator leaves such a DaskJob to its manager.
func TestKueueManagedByIsImmutableAndLeftAlone(t *testing.T) {
	ns := newNamespace(t)
	j := queuedJob(ns, "managed", "q", nil)
	delete(j.Labels, kueue.LabelQueueName)
	managedBy := "kueue.x-k8s.io/multikueue"
	j.Spec.ManagedBy = &managedBy
	createJob(t, j)
	time.Sleep(2 * time.Second)
	got := getJob(t, ns, "managed")
	assert.Empty(t, got.Status.JobStatus, "no status: it is the manager's")
	assertNothingRuns(t, ns, "managed", time.Second)

	other := "example.com/other"
	got.Spec.ManagedBy = &other
	_, err := dask.KubernetesV1().DaskJobs(ns).Update(context.Background(), got, metav1.UpdateOptions{})
	require.ErrorContains(t, err, "spec.managedBy is immutable")
	got.Spec.ManagedBy = nil
	_, err = dask.KubernetesV1().DaskJobs(ns).Update(context.Background(), got, metav1.UpdateOptions{})
	require.ErrorContains(t, err, "spec.managedBy is immutable")

	plain := queuedJob(ns, "plain", "q", nil)
	delete(plain.Labels, kueue.LabelQueueName)
	createJob(t, plain)
	waitJobStatus(t, ns, "plain", daskv1.JobRunning, time.Minute)
	plainNow := getJob(t, ns, "plain")
	plainNow.Spec.ManagedBy = &managedBy
	_, err = dask.KubernetesV1().DaskJobs(ns).Update(context.Background(), plainNow, metav1.UpdateOptions{})
	require.ErrorContains(t, err, "spec.managedBy is immutable", "cannot be set after creation")
}

// setRequests gives the first container of a Pod spec (at path) a cpu
// request.
func setRequests(t *testing.T, u *unstructured.Unstructured, cpu string, path ...string) {
	t.Helper()
	containers, _, err := unstructured.NestedSlice(u.Object, append(path, "containers")...)
	require.NoError(t, err)
	containers[0].(map[string]any)["resources"] = map[string]any{"requests": map[string]any{"cpu": cpu}}
	require.NoError(t, unstructured.SetNestedSlice(u.Object, containers, append(path, "containers")...))
}

// clusterWorkloads lists a cluster's Workloads that are not finished.
func clusterWorkloads(t *testing.T, ns, cluster string) []*kueue.Workload {
	t.Helper()
	list, err := dynamic.NewForConfigOrDie(env.Config).Resource(kueue.WorkloadResource).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	var out []*kueue.Workload
	for i := range list.Items {
		ref := metav1.GetControllerOf(&list.Items[i])
		if ref == nil || ref.Kind != "DaskCluster" || ref.Name != cluster {
			continue
		}
		w, err := kueue.FromUnstructured(&list.Items[i])
		require.NoError(t, err)
		if !w.IsFinished() {
			out = append(out, w)
		}
	}
	return out
}

func scaleGroup(t *testing.T, ns, name string, n int) {
	t.Helper()
	_, err := dask.KubernetesV1().DaskWorkerGroups(ns).Patch(context.Background(), name, types.MergePatchType,
		[]byte(fmt.Sprintf(`{"spec":{"worker":{"replicas":%d}}}`, n)), metav1.PatchOptions{})
	require.NoError(t, err)
}

// Issue 31: an elastic queued cluster (kueue.x-k8s.io/elastic-job) scales
// through Kueue: a scale-up that fits is a new Workload slice Kueue admits
// in place of the old one; one that does not fit waits, running no more
// workers than admitted; a scale-down lowers the admitted count.
func TestKueueElasticClusterScalesThroughWorkloadSlices(t *testing.T) {
	ns := newNamespace(t)
	q := kueueQueue(t, ns, "2", "", false)
	applyFixture(t, ns, "cluster.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(2), "spec", "worker", "replicas"))
		require.NoError(t, unstructured.SetNestedField(u.Object, q, "metadata", "labels", kueue.LabelQueueName))
		require.NoError(t, unstructured.SetNestedField(u.Object, "true", "metadata", "annotations", kueue.AnnotationElastic))
		setRequests(t, u, "500m", "spec", "scheduler", "spec")
		setRequests(t, u, "250m", "spec", "worker", "spec")
	})
	waitWorkers(t, ns, "simple", "simple-default", 2, time.Minute)
	workloadCounts := func() string {
		var s []string
		for _, w := range clusterWorkloads(t, ns, "simple") {
			s = append(s, fmt.Sprintf("%s workers=%d admitted=%v", w.Name, w.Count(kueue.PodSetWorkers), w.IsAdmitted()))
		}
		return strings.Join(s, "; ")
	}

	// 2 -> 4 fits (0.5 + 4 x 0.25 cpu): a new slice, admitted, replaces the first.
	first := clusterWorkloads(t, ns, "simple")[0].Name
	scaleGroup(t, ns, "simple-default", 4)
	waitWorkers(t, ns, "simple", "simple-default", 4, time.Minute)
	eventually(t, 30*time.Second, func() (bool, string) {
		ws := clusterWorkloads(t, ns, "simple")
		return len(ws) == 1 && ws[0].Name != first && ws[0].IsAdmitted() && ws[0].Count(kueue.PodSetWorkers) == 4 &&
			ws[0].ReplacementFor() == ns+"/"+first, workloadCounts()
	})

	// 4 -> 8 does not fit (2.5 cpu): its slice waits, and 4 workers run.
	scaleGroup(t, ns, "simple-default", 8)
	eventually(t, 30*time.Second, func() (bool, string) {
		g, err := dask.KubernetesV1().DaskWorkerGroups(ns).Get(context.Background(), "simple-default", metav1.GetOptions{})
		require.NoError(t, err)
		c := condition(g.Status.Conditions, daskv1.ConditionAdmitted)
		return len(clusterWorkloads(t, ns, "simple")) == 2 && c != nil && c.Reason == daskv1.ReasonExceedsAdmission, workloadCounts()
	})
	for i := 0; i < 10; i++ {
		require.LessOrEqual(t, len(workerPods(t, ns, "simple", "simple-default")), 4, "no more workers than admitted")
		time.Sleep(200 * time.Millisecond)
	}

	// 8 -> 3: the waiting slice is dropped and the admitted count lowered.
	scaleGroup(t, ns, "simple-default", 3)
	eventually(t, 30*time.Second, func() (bool, string) {
		ws := clusterWorkloads(t, ns, "simple")
		return len(ws) == 1 && ws[0].IsAdmitted() && ws[0].Count(kueue.PodSetWorkers) == 3, workloadCounts()
	})
	waitWorkers(t, ns, "simple", "simple-default", 3, time.Minute)
	// And the quota of the workers gone is back: the ClusterQueue holds
	// the scheduler's 500m and three workers' 250m.
	eventually(t, 30*time.Second, func() (bool, string) {
		cq, err := dynamic.NewForConfigOrDie(env.Config).Resource(kueue.GroupVersion.WithResource("clusterqueues")).Get(context.Background(), ns, metav1.GetOptions{})
		require.NoError(t, err)
		flavors, _, _ := unstructured.NestedSlice(cq.Object, "status", "flavorsReservation")
		for _, f := range flavors {
			res, _, _ := unstructured.NestedSlice(f.(map[string]any), "resources")
			for _, r := range res {
				if m := r.(map[string]any); m["name"] == "cpu" {
					q := resource.MustParse(fmt.Sprint(m["total"]))
					return q.MilliValue() == 1250, fmt.Sprintf("reserved cpu %v", m["total"])
				}
			}
		}
		return false, fmt.Sprintf("no cpu reservation in %v", flavors)
	})
}
