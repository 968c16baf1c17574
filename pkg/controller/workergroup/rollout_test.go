package workergroup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// podWorld plays the cluster around one worker group: the Pods the
// controller creates appear in its cache, become Ready when the test says,
// the ones it deletes disappear, and the scheduler knows every Pod with an
// IP as a worker and retires what it is asked for.
type podWorld struct {
	status  *daskv1.DaskWorkerGroupStatus // the last one written
	t       *testing.T
	f       *fixture
	pods    map[string]*corev1.Pod
	retired map[string]bool
	ips     int
}

func newPodWorld(t *testing.T, f *fixture, pods ...*corev1.Pod) *podWorld {
	w := &podWorld{t: t, f: f, pods: map[string]*corev1.Pod{}, retired: map[string]bool{}}
	for _, p := range pods {
		w.pods[p.Name] = p
	}
	f.Mu.Lock()
	f.Retire = func(addrs []string) (int, string) {
		out := map[string]map[string]string{}
		for _, a := range addrs {
			name := w.nameOf(a)
			w.retired[name] = true
			out[a] = map[string]string{"name": name}
		}
		data, _ := json.Marshal(out)
		return 200, string(data)
	}
	f.Mu.Unlock()
	w.publishWorkers()
	return w
}

func (w *podWorld) nameOf(addr string) string {
	for _, p := range w.pods {
		if "tcp://"+p.Status.PodIP+":4000" == addr {
			return p.Name
		}
	}
	w.t.Errorf("the scheduler was asked to retire %s, which is no worker", addr)
	return ""
}

func (w *podWorld) publishWorkers() {
	var workers []map[string]string
	for _, p := range w.pods {
		if p.Status.PodIP != "" {
			workers = append(workers, map[string]string{"name": p.Name, "address": "tcp://" + p.Status.PodIP + ":4000"})
		}
	}
	data, _ := json.Marshal(map[string]any{"workers": workers})
	w.f.Mu.Lock()
	w.f.Workers = string(data)
	w.f.Mu.Unlock()
}

// sync runs one sync of ns/g and plays out its creates and deletes; a retire
// it starts is waited for and acted on by a second sync. It returns the
// Pods it created.
func (w *podWorld) sync() []*corev1.Pod {
	w.t.Helper()
	ctx := context.Background()
	_, err := w.f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(w.t, err)
	if w.f.ctrl.retirements.Running("ns/g") {
		waitRetirement(w.t, w.f, "ns/g")
		_, err = w.f.ctrl.syncWorkerGroup(ctx, "ns/g")
		require.NoError(w.t, err)
	}
	var created []*corev1.Pod
	for _, a := range w.f.Actions("create", "pods") {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		p.UID = types.UID("uid-" + p.Name)
		p.CreationTimestamp = metav1.NewTime(w.f.ctrl.Now())
		p.Spec.NodeName = "node"
		w.pods[p.Name] = p
		w.f.AddToCache(p)
		w.f.ctrl.onPodAdd(p)
		created = append(created, p)
	}
	for _, name := range controllertest.DeletedNames(w.f.Fixture, "pods") {
		p := w.pods[name]
		require.NotNil(w.t, p, "deleted %s, which does not exist", name)
		if controller.PodReady(p) {
			assert.True(w.t, w.retired[name], "Ready worker %s deleted without the scheduler retiring it", name)
		}
		delete(w.pods, name)
		require.NoError(w.t, w.f.ctrl.Caches.In("").Pods.GetIndexer().Delete(p))
		w.f.ctrl.onPodDelete(p)
	}
	// The group's status writes reach the cache, as the informer would
	// bring them.
	for _, a := range w.f.Dask.Actions() {
		if a.GetSubresource() == "status" && a.GetResource().Resource == "daskworkergroups" {
			g := a.(k8stesting.UpdateAction).GetObject().(*daskv1.DaskWorkerGroup)
			w.status = g.Status.DeepCopy()
			require.NoError(w.t, w.f.ctrl.Caches.In("").Groups.GetIndexer().Update(g))
		}
	}
	w.f.ClearActions()
	w.publishWorkers()
	return created
}

// makeReady turns Pods Running and Ready, with an IP.
func (w *podWorld) makeReady(pods []*corev1.Pod) {
	for _, p := range pods {
		w.ips++
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = fmt.Sprintf("10.1.%d.%d", w.ips/250, w.ips%250+1)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "worker", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		require.NoError(w.t, w.f.ctrl.Caches.In("").Pods.GetIndexer().Update(p))
	}
	w.publishWorkers()
}

func (w *podWorld) count(hash string) (total, ready, current int) {
	for _, p := range w.pods {
		total++
		if controller.PodReady(p) {
			ready++
		}
		if !resources.Outdated(p, hash) {
			current++
		}
	}
	return
}

// rolledGroup is group ns/g of cluster c with n Ready workers of its current
// template, whose spec then changes to a new image.
func rolledGroup(t *testing.T, n int32, st *daskv1.WorkerUpdateStrategy) (*daskv1.DaskWorkerGroup, []*corev1.Pod) {
	g := testobjects.Group("g", "c", n)
	var pods []*corev1.Pod
	for i := range n {
		p := testobjects.WorkerPod(g, fmt.Sprintf("g-old-%d", i), testobjects.Ready, time.Hour)
		p.Labels[resources.LabelTemplateHash] = resources.WorkerTemplateHash(g)
		p.Status.PodIP = fmt.Sprintf("10.0.9.%d", i+1)
		pods = append(pods, p)
	}
	g.Spec.Worker.Spec.Containers[0].Image = "dask:new"
	g.Spec.Worker.Strategy = st
	g.Generation = 2
	require.True(t, resources.Outdated(pods[0], resources.WorkerTemplateHash(g)))
	return g, pods
}

func objects(c *daskv1.DaskCluster, g *daskv1.DaskWorkerGroup, pods []*corev1.Pod) []runtime.Object {
	out := []runtime.Object{c, g}
	for _, p := range pods {
		out = append(out, p)
	}
	return out
}

// A new worker template with 6 workers and the defaults (maxSurge 25% = 2,
// maxUnavailable 0): never fewer than 6 Ready, never more than 8 Pods, and
// every old worker retired through the scheduler before its Pod goes.
func TestRollingUpdateKeepsCapacityAndRetiresFirst(t *testing.T) {
	g, pods := rolledGroup(t, 6, nil)
	f := newFixture(t, objects(testobjects.Cluster("c"), g, pods)...)
	w := newPodWorld(t, f, pods...)
	hash := resources.WorkerTemplateHash(g)
	for step := 0; ; step++ {
		require.Less(t, step, 30, "the rollout does not end")
		created := w.sync()
		total, ready, current := w.count(hash)
		assert.LessOrEqual(t, total, 8, "step %d: more Pods than replicas+maxSurge", step)
		assert.GreaterOrEqual(t, ready, 6, "step %d: fewer Ready workers than replicas-maxUnavailable", step)
		w.makeReady(created)
		if current == 6 && total == 6 {
			break
		}
	}
	assert.Len(t, w.retired, 6, "every old worker was retired")
	w.sync() // the status of the end
	st := *w.status
	assert.Equal(t, int32(6), st.UpdatedReplicas)
	assert.Equal(t, hash, st.TemplateHash)
	assert.True(t, apimeta.IsStatusConditionTrue(st.Conditions, daskv1.ConditionUpdated))
	assert.GreaterOrEqual(t, controllertest.CountEvents(f.Fixture, daskv1.ReasonRollingUpdate), 1)
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonRolloutComplete))
}

// New workers that never get Ready: the rollout creates maxSurge of them,
// retires nothing, and after the progress deadline says it is stalled; once
// they are Ready it goes on.
func TestRollingUpdateStallsOnUnreadyNewWorkers(t *testing.T) {
	g, pods := rolledGroup(t, 6, &daskv1.WorkerUpdateStrategy{ProgressDeadlineSeconds: testobjects.Int32p(30)})
	f := newFixture(t, objects(testobjects.Cluster("c"), g, pods)...)
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.Now = func() time.Time { return now }
	w := newPodWorld(t, f, pods...)
	var fresh []*corev1.Pod
	for range 4 {
		fresh = append(fresh, w.sync()...)
	}
	assert.Len(t, fresh, 2, "maxSurge new Pods, no more")
	assert.Empty(t, w.retired)
	st := *w.status
	cond := apimeta.FindStatusCondition(st.Conditions, daskv1.ConditionProgressing)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionTrue, cond.Status, "within the deadline")

	now = now.Add(31 * time.Second)
	w.sync()
	st = *w.status
	cond = apimeta.FindStatusCondition(st.Conditions, daskv1.ConditionProgressing)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, daskv1.ReasonProgressDeadlineExceeded, cond.Reason)
	assert.Contains(t, cond.Message, "2 new workers not Ready")
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonProgressDeadlineExceeded))
	w.sync()
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonProgressDeadlineExceeded), "reported once")

	w.makeReady(fresh)
	w.sync()
	assert.Len(t, w.retired, 2, "Ready new workers let two old ones go")
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonRolloutResumed))
}

// OnDelete leaves running workers alone; a scale-down takes outdated ones
// first; replacements get the new template.
func TestOnDeleteLeavesRunningWorkers(t *testing.T) {
	g, pods := rolledGroup(t, 3, &daskv1.WorkerUpdateStrategy{Type: daskv1.OnDeleteStrategy})
	f := newFixture(t, objects(testobjects.Cluster("c"), g, pods)...)
	w := newPodWorld(t, f, pods...)
	for range 3 {
		assert.Empty(t, w.sync())
	}
	assert.Empty(t, w.retired)
	st := *w.status
	cond := apimeta.FindStatusCondition(st.Conditions, daskv1.ConditionUpdated)
	require.NotNil(t, cond)
	assert.Equal(t, daskv1.ReasonOnDelete, cond.Reason)
	assert.Equal(t, int32(0), st.UpdatedReplicas)

	// One more worker: it is made from the new template.
	g = g.DeepCopy()
	g.Spec.Worker.Replicas = testobjects.Int32p(4)
	require.NoError(t, f.ctrl.Caches.In("").Groups.GetIndexer().Update(g))
	created := w.sync()
	require.Len(t, created, 1)
	assert.False(t, resources.Outdated(created[0], resources.WorkerTemplateHash(g)))
	w.makeReady(created)

	// Back to 3: an outdated worker goes, not the new one.
	g = g.DeepCopy()
	g.Spec.Worker.Replicas = testobjects.Int32p(3)
	require.NoError(t, f.ctrl.Caches.In("").Groups.GetIndexer().Update(g))
	w.sync()
	require.Len(t, w.retired, 1)
	for name := range w.retired {
		assert.True(t, strings.HasPrefix(name, "g-old-"), "retired %s", name)
	}
}

// A scheduler that cannot retire keeps the rollout waiting: no old worker
// is deleted, whatever the fallback would do for a scale-down.
func TestRollingUpdateNeverFallsBack(t *testing.T) {
	g, pods := rolledGroup(t, 2, nil)
	f := newFixture(t, objects(testobjects.Cluster("c"), g, pods)...)
	f.ctrl.Opts.RetireFallbackAfter = time.Nanosecond
	w := newPodWorld(t, f, pods...)
	w.makeReady(w.sync()) // one new worker (25% of 2 rounds up to 1)
	f.Mu.Lock()
	f.WorkersCode = 503 // the scheduler cannot even be listed
	f.Mu.Unlock()
	for range 3 {
		w.sync()
	}
	total, _, _ := w.count(resources.WorkerTemplateHash(g))
	assert.Equal(t, 3, total, "the old workers stay")
	cond := apimeta.FindStatusCondition(w.status.Conditions, daskv1.ConditionSchedulerReachable)
	require.NotNil(t, cond)
	assert.Contains(t, cond.Message, "the rollout waits")
	assert.Zero(t, controllertest.CountEvents(f.Fixture, daskv1.ReasonFallbackScaleDown))
}

// A suspended cluster's group deletes its workers without retiring them
// and creates none.
func TestSuspendedClusterHasNoWorkers(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 2)
	yes := true
	c.Spec.Suspend = &yes
	a, b := testobjects.WorkerPod(g, "g-a", testobjects.Ready, time.Hour), testobjects.WorkerPod(g, "g-b", testobjects.Pending, time.Hour)
	f := newFixture(t, c, g, a, b)
	f.Retire = func([]string) (int, string) { t.Error("a suspended cluster retires nothing"); return 500, "" }
	_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"g-a", "g-b"}, controllertest.DeletedNames(f.Fixture, "pods"))
	assert.Empty(t, f.Actions("create", "pods"))
	assert.True(t, apimeta.IsStatusConditionTrue(lastGroupStatus(t, f).Conditions, daskv1.ConditionSuspended))
}

// Issue 29, item 7: a rollout that cannot create its new workers (quota,
// admission) reports Progressing False after the deadline, not True forever.
func TestRolloutStallsWhenNewWorkersCannotBeCreated(t *testing.T) {
	g, pods := rolledGroup(t, 2, &daskv1.WorkerUpdateStrategy{ProgressDeadlineSeconds: testobjects.Int32p(30)})
	f := newFixture(t, objects(testobjects.Cluster("c"), g, pods)...)
	f.WriteStatusAtOnce()
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.Now = func() time.Time { return now }
	f.Kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("exceeded quota: compute"))
	})
	progressing := func() *metav1.Condition {
		return apimeta.FindStatusCondition(lastGroupStatus(t, f).Conditions, daskv1.ConditionProgressing)
	}
	_, _ = f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NotNil(t, progressing())
	assert.Equal(t, metav1.ConditionTrue, progressing().Status, "within the deadline")
	assert.Contains(t, progressing().Message, "exceeded quota")

	now = now.Add(31 * time.Second)
	f.ctrl.expect.Forget("ns/g")
	_, _ = f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	cond := progressing()
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Equal(t, daskv1.ReasonProgressDeadlineExceeded, cond.Reason)
	assert.Contains(t, cond.Message, "no new worker could be created")
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonProgressDeadlineExceeded))
}

// Issue 29, item 7: old Pods stuck Terminating that use up the surge stall
// the rollout; after the deadline Progressing says so.
func TestRolloutStallsOnPodsStuckTerminating(t *testing.T) {
	g, pods := rolledGroup(t, 2, &daskv1.WorkerUpdateStrategy{ProgressDeadlineSeconds: testobjects.Int32p(30)})
	stuck := testobjects.WorkerPod(g, "g-stuck", testobjects.Ready, 2*time.Hour)
	stuck.DeletionTimestamp = &metav1.Time{Time: time.Unix(1_799_999_000, 0)}
	f := newFixture(t, objects(testobjects.Cluster("c"), g, append(pods, stuck))...)
	f.WriteStatusAtOnce()
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.Now = func() time.Time { return now }
	_, _ = f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	assert.Empty(t, f.Actions("create", "pods"), "the surge (1) is taken by the terminating Pod")
	cond := apimeta.FindStatusCondition(lastGroupStatus(t, f).Conditions, daskv1.ConditionProgressing)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionTrue, cond.Status)

	now = now.Add(31 * time.Second)
	_, _ = f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	cond = apimeta.FindStatusCondition(lastGroupStatus(t, f).Conditions, daskv1.ConditionProgressing)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Contains(t, cond.Message, "1 Pods still terminating")
}
