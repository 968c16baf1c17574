package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/expectations"
	daskfake "github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned/fake"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

type fixture struct {
	t     *testing.T
	kube  *kubefake.Clientset
	dask  *daskfake.Clientset
	ctrl  *Controller
	sched *httptest.Server
	mu    sync.Mutex
	// retire answers retire_workers, given the addresses asked for.
	retire func(addresses []string) (int, string)
	// workers is the scheduler's answer to get_workers; workersCode, when
	// set, its HTTP status instead.
	workers     string
	workersCode int
	// identity is the scheduler's /json/identity.json, when set.
	identity string
	// idle is the scheduler's answer to check_idle, when set; idleAsked
	// counts the questions.
	idle      string
	idleAsked int
	// recorder holds the events the controller recorded; seen, those read.
	recorder *record.FakeRecorder
	seen     []string
}

// newFixture builds a Controller on fake clientsets whose caches hold the
// given objects; nothing runs until a test calls a sync function. Its
// scheduler is an HTTP server the test scripts.
func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	f := &fixture{t: t, kube: kubefake.NewSimpleClientset(), dask: daskfake.NewSimpleClientset()}
	f.sched = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		retire, workers, workersCode, identity, idle := f.retire, f.workers, f.workersCode, f.identity, f.idle
		if r.URL.Path == "/api/v1/check_idle" {
			f.idleAsked++
		}
		f.mu.Unlock()
		if r.URL.Path == "/api/v1/check_idle" && idle != "" {
			fmt.Fprint(w, idle)
			return
		}
		if r.URL.Path == "/json/identity.json" && identity != "" {
			fmt.Fprint(w, identity)
			return
		}
		if r.URL.Path == "/api/v1/get_workers" && workersCode != 0 {
			w.WriteHeader(workersCode)
			return
		}
		if r.URL.Path == "/api/v1/get_workers" && workers != "" {
			fmt.Fprint(w, workers)
			return
		}
		if r.URL.Path == "/api/v1/retire_workers" && retire != nil {
			var req struct {
				Workers []string `json:"workers"`
			}
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Workers) == 0 {
				t.Errorf("retire_workers must name its workers: %v %v", err, req)
			}
			code, body := retire(req.Workers)
			w.WriteHeader(code)
			fmt.Fprint(w, body)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(f.sched.Close)
	resolver, err := daskapi.NewTemplateResolver(f.sched.URL)
	require.NoError(t, err)
	f.ctrl, err = New(f.kube, f.dask, Options{Resolver: resolver, RetireFallbackAfter: -1})
	require.NoError(t, err)
	f.recorder = record.NewFakeRecorder(1000)
	f.ctrl.recorder = f.recorder
	for _, o := range objs {
		f.addToCache(o)
	}
	return f
}

// writeStatusAtOnce turns off the pacing of status writes, for tests of
// what a status says after one sync (the fixture's caches never see the
// controller's writes; pacing is tested on its own).
func (f *fixture) writeStatusAtOnce() { f.ctrl.statusInterval = 0 }

func (f *fixture) addToCache(o runtime.Object) {
	s := f.ctrl.caches.in("")
	var err error
	switch obj := o.(type) {
	case *daskv1.DaskCluster:
		err = s.clusters.GetIndexer().Add(obj)
		_ = f.dask.Tracker().Add(obj)
	case *daskv1.DaskWorkerGroup:
		err = s.groups.GetIndexer().Add(obj)
		_ = f.dask.Tracker().Add(obj)
	case *daskv1.DaskJob:
		err = s.jobs.GetIndexer().Add(obj)
		_ = f.dask.Tracker().Add(obj)
	case *daskv1.DaskAutoscaler:
		err = s.autoscalers.GetIndexer().Add(obj)
		_ = f.dask.Tracker().Add(obj)
	case *corev1.Pod:
		// As the informer's transform stores it.
		trimmed, _ := trimPod(obj.DeepCopy())
		err = s.pods.GetIndexer().Add(trimmed)
		_ = f.kube.Tracker().Add(obj)
	case *corev1.Service:
		err = s.services.GetIndexer().Add(obj)
		_ = f.kube.Tracker().Add(obj)
	case *appsv1.Deployment:
		err = s.deployments.GetIndexer().Add(obj)
		_ = f.kube.Tracker().Add(obj)
	case *appsv1.ReplicaSet:
		err = s.replicaSets.GetIndexer().Add(obj)
		_ = f.kube.Tracker().Add(obj)
	default:
		f.t.Fatalf("unexpected %T", o)
	}
	require.NoError(f.t, err)
}

func (f *fixture) actions(verb, resource string) []k8stesting.Action {
	var out []k8stesting.Action
	for _, a := range append(f.kube.Actions(), f.dask.Actions()...) {
		if a.GetVerb() == verb && a.GetResource().Resource == resource && a.GetSubresource() == "" {
			out = append(out, a)
		}
	}
	return out
}

// createdPodNames are the names of the Pods the controller created.
func (f *fixture) createdPodNames() []string {
	var out []string
	for _, a := range f.actions("create", "pods") {
		out = append(out, a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name)
	}
	return out
}

func (f *fixture) clearActions() {
	f.kube.ClearActions()
	f.dask.ClearActions()
}

func int32p(v int32) *int32 { return &v }

func cluster(name string) *daskv1.DaskCluster {
	return &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Generation: 1},
		Spec: daskv1.DaskClusterSpec{
			Worker:    daskv1.WorkerSpec{Replicas: int32p(1), Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker"}}}},
			Scheduler: daskv1.SchedulerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "scheduler"}}}},
		},
	}
}

func group(name, clusterName string, replicas int32) *daskv1.DaskWorkerGroup {
	return &daskv1.DaskWorkerGroup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Generation: 1},
		Spec: daskv1.DaskWorkerGroupSpec{
			Cluster: clusterName,
			Worker:  daskv1.WorkerSpec{Replicas: int32p(replicas), Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker"}}}},
		},
	}
}

type podState int

const (
	unscheduled podState = iota
	pending
	runningNotReady
	ready
)

func workerPod(g *daskv1.DaskWorkerGroup, name string, state podState, age time.Duration) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: g.Namespace, UID: types.UID("uid-" + name),
			Labels:            resources.WorkerGroupSelector(g.Spec.Cluster, g.Name),
			OwnerReferences:   []metav1.OwnerReference{resources.ControllerRefToWorkerGroup(g)},
			CreationTimestamp: metav1.NewTime(time.Unix(1_700_000_000, 0).Add(-age)),
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if state >= pending {
		p.Spec.NodeName = "node"
	}
	if state >= runningNotReady {
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = "10.0.0." + fmt.Sprint(len(name))
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	}
	if state == ready {
		p.Status.Conditions[0].Status = corev1.ConditionTrue
	}
	return p
}

// A sync that runs while the cache has not seen its own creations yet must
// not create again: this is what made the Python operator create 31
// workers for 20.
func TestWorkerGroupDoesNotOvercreateWhileTheCacheLags(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 5)
	f := newFixture(t, c, g)
	ctx := context.Background()

	_, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	creates := f.actions("create", "pods")
	require.Len(t, creates, 5)
	names := map[string]bool{}
	for _, a := range creates {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		names[p.Name] = true
		assert.Regexp(t, `^g-worker-[0-9a-f]{10}$`, p.Name)
	}
	assert.Len(t, names, 5, "names are unique")

	f.clearActions()
	for i := 0; i < 3; i++ {
		_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
		require.NoError(t, err)
	}
	assert.Empty(t, f.actions("create", "pods"), "the cache lags: no Pod is created again")

	// Once the cache shows the Pods, the expectations are met and all is well.
	for _, a := range creates {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		f.addToCache(p)
		f.ctrl.onPodAdd(p)
	}
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	assert.Empty(t, f.actions("create", "pods"))
	assert.Empty(t, f.actions("delete", "pods"))
}

// The add events of the group's own Pods can arrive while a sync runs,
// between its read of the Pods and its check of the expectations: the list
// taken before them must not be trusted because the check passes after
// them. Seen in the fault suite (a Pod created twice for one replaced while
// the Pod garbage collector deleted a node's Pods).
func TestWorkerGroupReadsExpectationsBeforeItsPods(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 3)
	f := newFixture(t, c, g)
	_, err := f.ctrl.syncWorkerGroup(t.Context(), "ns/g")
	require.NoError(t, err)
	created := f.createdPodNames()
	require.Len(t, created, 3)
	f.clearActions()

	read := f.ctrl.groupPods
	f.ctrl.groupPods = func(ns, uid string) []*corev1.Pod {
		pods := read(ns, uid) // without the new Pods yet
		for _, name := range created {
			p := workerPod(g, name, pending, 0)
			f.addToCache(p)
			f.ctrl.onPodAdd(p) // their events come just after the read
		}
		f.ctrl.groupPods = read
		return pods
	}
	_, err = f.ctrl.syncWorkerGroup(t.Context(), "ns/g")
	require.NoError(t, err)
	assert.Equal(t, 0, len(f.actions("create", "pods")), "a list read before the expectations were met is not acted on")

	_, err = f.ctrl.syncWorkerGroup(t.Context(), "ns/g")
	require.NoError(t, err)
	assert.Equal(t, 0, len(f.actions("create", "pods")), "the next sync sees the Pods")
	assert.Empty(t, f.actions("delete", "pods"))
}

// Issue 15, item 7: while the group's own creations are not in the cache,
// it is looked at again when their expectations expire: a lost watch event
// delays it by at most the TTL, not until the next resync.
func TestWorkerGroupWithUnmetExpectationsRequeues(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 2)
	f := newFixture(t, c, g)
	_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	require.Len(t, f.actions("create", "pods"), 2)
	requeue, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	assert.Greater(t, requeue, time.Duration(0))
	assert.LessOrEqual(t, requeue, expectations.DefaultTTL+time.Second)
}

// When every create fails (a quota), slow start makes one call, not N, and
// reports the failure in a condition.
func TestWorkerCreationStopsAtTheFirstFailingBatch(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 50)
	f := newFixture(t, c, g)
	calls := 0
	f.kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		// What the ResourceQuota admission plugin answers.
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), "x", errors.New("exceeded quota: pods"))
	})
	_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.ErrorContains(t, err, "exceeded quota")
	assert.Equal(t, 1, calls)
	assert.True(t, f.ctrl.expect.Satisfied("ns/g"), "refused creates are not waited for")

	var status *daskv1.DaskWorkerGroup
	for _, a := range f.dask.Actions() {
		if a.GetSubresource() == "status" {
			status = a.(k8stesting.UpdateAction).GetObject().(*daskv1.DaskWorkerGroup)
		}
	}
	require.NotNil(t, status)
	cond := apimeta.FindStatusCondition(status.Status.Conditions, daskv1.ConditionReplicaFailure)
	require.NotNil(t, cond)
	assert.Contains(t, cond.Message, "exceeded quota")
}

func TestWorkerGroupWaitsForItsCluster(t *testing.T) {
	f := newFixture(t, group("g", "missing", 3))
	_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	assert.Empty(t, f.actions("create", "pods"))
}

// Scale-down removes Pods that are not ready without asking the scheduler.
func TestScaleDownDeletesUnreadyPodsFirst(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 2)
	pods := []*corev1.Pod{
		workerPod(g, "g-ready-old", ready, 3*time.Hour),
		workerPod(g, "g-ready-new", ready, time.Hour),
		workerPod(g, "g-pending", pending, 2*time.Hour),
		workerPod(g, "g-unscheduled", unscheduled, 2*time.Hour),
	}
	objs := []runtime.Object{c, g}
	for _, p := range pods {
		objs = append(objs, p)
	}
	f := newFixture(t, objs...)
	f.retire = func([]string) (int, string) { t.Error("the scheduler must not be asked"); return 500, "" }
	_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	var deleted []string
	for _, a := range f.actions("delete", "pods") {
		deleted = append(deleted, a.(k8stesting.DeleteAction).GetName())
	}
	assert.ElementsMatch(t, []string{"g-unscheduled", "g-pending"}, deleted)
}

// Running workers go through the scheduler, in the background; exactly the
// Pods of the workers it retired are deleted, matched by name or by IP.
func TestScaleDownRetiresThroughTheScheduler(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 1)
	a, b, byIP := workerPod(g, "g-a", ready, time.Hour), workerPod(g, "g-b", ready, time.Hour), workerPod(g, "g-ip", ready, time.Hour)
	byIP.Status.PodIP = "10.9.9.9"
	f := newFixture(t, c, g, a, b, byIP)
	f.workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.0.3:4000"}, {"name": "g-b", "address": "tcp://10.0.0.3:4001"},
		{"name": "tcp://10.9.9.9:4000", "address": "tcp://10.9.9.9:4000"}]}`
	f.retire = func([]string) (int, string) {
		return 200, `{"tcp://10.0.0.3:4000": {"name": "g-b"}, "tcp://10.9.9.9:4000": {"name": "tcp://10.9.9.9:4000"}}`
	}
	ctx := context.Background()
	_, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	assert.Empty(t, f.actions("delete", "pods"), "nothing is deleted before the scheduler answers")

	require.Eventually(t, func() bool { _, ok := f.ctrl.retirements.peek("ns/g"); return ok }, 5*time.Second, 10*time.Millisecond)
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	var deleted []string
	for _, a := range f.actions("delete", "pods") {
		deleted = append(deleted, a.(k8stesting.DeleteAction).GetName())
	}
	assert.ElementsMatch(t, []string{"g-b", "g-ip"}, deleted)
}

// With the scheduler failing and no fallback, running workers stay.
func TestScaleDownKeepsRunningWorkersWhenTheSchedulerFails(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 0)
	f := newFixture(t, c, g, workerPod(g, "g-a", ready, time.Hour))
	f.workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.0.3:4000"}]}`
	f.retire = func([]string) (int, string) { return 500, "boom" }
	ctx := context.Background()
	_, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := f.ctrl.retirements.peek("ns/g"); return ok }, 5*time.Second, 10*time.Millisecond)
	requeue, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	assert.Equal(t, retryRetireAfter, requeue, "asks again later")
	assert.Empty(t, f.actions("delete", "pods"))
}

// Running Pods whose worker never joined the scheduler hold no data: they
// go without retiring anything.
func TestScaleDownDeletesPodsUnknownToTheScheduler(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 1)
	a, b := workerPod(g, "g-a", ready, time.Hour), workerPod(g, "g-b", ready, time.Hour)
	b.Status.PodIP = "10.7.7.7"
	f := newFixture(t, c, g, a, b)
	f.workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.0.3:4000"}]}`
	f.retire = func([]string) (int, string) { t.Error("nothing to retire"); return 500, "" }
	ctx := context.Background()
	_, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := f.ctrl.retirements.peek("ns/g"); return ok }, 5*time.Second, 10*time.Millisecond)
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	assert.Equal(t, []string{"g-b"}, deletedNames(f, "pods"))
}

func TestMatchRetiredWorkers(t *testing.T) {
	g := group("g", "c", 0)
	a, b := workerPod(g, "g-a", ready, 0), workerPod(g, "g-b", ready, 0)
	b.Status.PodIP = "10.1.1.1"
	victims, unknown := matchRetiredWorkers([]daskapi.Worker{
		{Name: "g-a", Address: "tcp://10.5.5.5:1"},
		{Name: "renamed", Address: "tls://10.1.1.1:8786"},
		{Name: "stranger", Address: "tcp://10.7.7.7:1"},
		{Name: "g-a", Address: "tcp://10.5.5.5:2"},
	}, []*corev1.Pod{a, b})
	assert.Equal(t, []*corev1.Pod{a, b}, victims, "by name, then by IP, each Pod once")
	assert.Equal(t, []string{"stranger (tcp://10.7.7.7:1)"}, unknown)
}

func TestRankForScaleDown(t *testing.T) {
	g := group("g", "c", 0)
	restarted := workerPod(g, "ready-restarted", ready, 2*time.Hour)
	restarted.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: 3}}
	pods := []*corev1.Pod{
		workerPod(g, "ready-old", ready, 3*time.Hour),
		workerPod(g, "ready-new", ready, time.Hour),
		restarted,
		workerPod(g, "running-not-ready", runningNotReady, time.Hour),
		workerPod(g, "pending", pending, time.Hour),
		workerPod(g, "unscheduled", unscheduled, time.Hour),
	}
	var names []string
	for _, p := range rankForScaleDown(pods) {
		names = append(names, p.Name)
	}
	assert.Equal(t, []string{"unscheduled", "pending", "running-not-ready", "ready-restarted", "ready-new", "ready-old"}, names)
}

func TestSlowStartBatch(t *testing.T) {
	var mu sync.Mutex
	var seen []int
	ok, attempted, err := slowStartBatch(10, 1, func(i int) error {
		mu.Lock()
		seen = append(seen, i)
		mu.Unlock()
		return nil
	})
	assert.NoError(t, err)
	assert.Equal(t, 10, ok)
	assert.Equal(t, 10, attempted)
	assert.Len(t, seen, 10)

	// Batches of 1, 2, 4: the failure in the third batch stops it there.
	ok, attempted, err = slowStartBatch(100, 1, func(i int) error {
		if i == 4 {
			return errors.New("quota")
		}
		return nil
	})
	assert.Error(t, err)
	assert.Equal(t, 7, attempted)
	assert.Equal(t, 6, ok)
}

// The autoscaler scales only the group it decided from: a user's scale that
// lands first (KubeCluster.scale deletes the autoscaler, then patches the
// group) is never overwritten by a decision made from an older state.
func TestAutoscalerScalesOnlyTheGroupItSaw(t *testing.T) {
	g := group("c-default", "c", 0)
	g.ResourceVersion = "7"
	as := &daskv1.DaskAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", UID: "uid-as", Generation: 1},
		Spec:       daskv1.DaskAutoscalerSpec{Cluster: "c", Minimum: 2, Maximum: 4},
	}
	f := newFixture(t, cluster("c"), g, as)
	_, err := f.ctrl.syncAutoscaler(context.Background(), "ns/c")
	require.NoError(t, err)
	patches := f.actions("patch", "daskworkergroups")
	require.Len(t, patches, 1, "the minimum is enforced")
	assert.JSONEq(t, `{"metadata":{"resourceVersion":"7"},"spec":{"worker":{"replicas":2}}}`,
		string(patches[0].(k8stesting.PatchAction).GetPatch()))

	// The group changed since: the API server refuses, and the sync says so.
	f.dask.PrependReactor("patch", "daskworkergroups", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(daskv1.Resource("daskworkergroups"), g.Name, errors.New("the object has been modified"))
	})
	_, err = f.ctrl.syncAutoscaler(context.Background(), "ns/c")
	assert.True(t, apierrors.IsConflict(err), "got %v", err)
}

// Which of a cluster and its default group was scaled is decided from the
// count they last agreed on; the record the cluster keeps is written with its
// spec, so a follow that was cut short between the two objects can not make
// the cluster push its old count back onto a group a user scaled again.
func TestDefaultGroupScaledDirectlyIsFollowed(t *testing.T) {
	ctx := context.Background()
	withCounts := func(c, g int32, onCluster, onGroup string) (*daskv1.DaskCluster, *daskv1.DaskWorkerGroup) {
		cl := cluster("c")
		cl.ResourceVersion = "10"
		cl.Spec.Worker.Replicas = int32p(c)
		if onCluster != "" {
			cl.Annotations = map[string]string{resources.AnnotationSyncedReplicas: onCluster}
		}
		grp := resources.DefaultWorkerGroup(cl)
		grp.ResourceVersion = "11"
		grp.Spec.Worker.Replicas = int32p(g)
		grp.Annotations[resources.AnnotationSyncedReplicas] = onGroup
		return cl, grp
	}
	clusterPatches := func(f *fixture) []string {
		var out []string
		for _, a := range f.actions("patch", "daskclusters") {
			out = append(out, string(a.(k8stesting.PatchAction).GetPatch()))
		}
		return out
	}
	groupUpdates := func(f *fixture) []*daskv1.DaskWorkerGroup {
		var out []*daskv1.DaskWorkerGroup
		for _, a := range f.actions("update", "daskworkergroups") {
			out = append(out, a.(k8stesting.UpdateAction).GetObject().(*daskv1.DaskWorkerGroup))
		}
		return out
	}

	// The follow to 1 reached the cluster, not the group's record; then the
	// group was scaled to 2 (the group's stale record says 2 as well).
	cl, grp := withCounts(1, 2, "1", "2")
	f := newFixture(t, cl, grp)
	_, err := f.ctrl.ensureDefaultWorkerGroup(ctx, cl)
	require.NoError(t, err)
	require.Len(t, clusterPatches(f), 1)
	assert.JSONEq(t, `{"metadata":{"resourceVersion":"10","annotations":{"kubernetes.dask.org/synced-replicas":"2"}},"spec":{"worker":{"replicas":2}}}`,
		clusterPatches(f)[0], "the cluster follows the group")
	for _, u := range groupUpdates(f) {
		assert.Equal(t, int32(2), *u.Spec.Worker.Replicas, "the group keeps its count")
	}

	// A cluster made before it kept a record: the group's record decides.
	cl, grp = withCounts(3, 5, "", "3")
	f = newFixture(t, cl, grp)
	_, err = f.ctrl.ensureDefaultWorkerGroup(ctx, cl)
	require.NoError(t, err)
	require.Len(t, clusterPatches(f), 1)
	assert.Contains(t, clusterPatches(f)[0], `"replicas":5`)

	// The cluster was scaled (kubectl scale daskcluster): the group follows
	// it and the cluster's record is brought up to date.
	cl, grp = withCounts(4, 2, "2", "2")
	f = newFixture(t, cl, grp)
	_, err = f.ctrl.ensureDefaultWorkerGroup(ctx, cl)
	require.NoError(t, err)
	require.Len(t, groupUpdates(f), 1)
	assert.Equal(t, int32(4), *groupUpdates(f)[0].Spec.Worker.Replicas)
	assert.Equal(t, "4", groupUpdates(f)[0].Annotations[resources.AnnotationSyncedReplicas])
	require.Len(t, clusterPatches(f), 1)
	assert.JSONEq(t, `{"metadata":{"resourceVersion":"10","annotations":{"kubernetes.dask.org/synced-replicas":"4"}}}`, clusterPatches(f)[0])

	// In agreement: nothing is written.
	cl, grp = withCounts(2, 2, "", "2")
	f = newFixture(t, cl, grp)
	_, err = f.ctrl.ensureDefaultWorkerGroup(ctx, cl)
	require.NoError(t, err)
	assert.Empty(t, clusterPatches(f))
	assert.Empty(t, groupUpdates(f))
}

// Issue 15, item 4: a failed scheduler Pod is replaced even when passing
// labels on to it is refused (as under an RBAC without patch on pods).
func TestFailedSchedulerIsReplacedWhatever(t *testing.T) {
	c := cluster("c")
	c.Labels = map[string]string{"team": "new"}
	sched := resources.SchedulerPod(c)
	sched.Labels["team"] = "old"
	sched.UID = "uid-sched"
	sched.Status.Phase = corev1.PodFailed
	f := newFixture(t, c, sched)
	f.kube.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), sched.Name, errors.New("no patch"))
	})
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Equal(t, []string{sched.Name}, deletedNames(f, "pods"), "the failed scheduler is deleted, to be recreated")
}

// Issue 15, item 8: a create refused with AlreadyExists is told apart by
// reading the object live: our own object in a lagging cache is retried
// quietly; a foreign one (outside the label-filtered cache) is a conflict,
// reported once as a condition and a Warning event.
func TestAlreadyExistsIsReadLive(t *testing.T) {
	c := cluster("c")
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "c-scheduler", Namespace: "ns", UID: "someone-else"}}
	f := newFixture(t, c)
	require.NoError(t, f.kube.Tracker().Add(foreign)) // in the API server, not in the cache
	ctx := context.Background()
	_, err := f.ctrl.syncCluster(ctx, "ns/c")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Pod c-scheduler already exists and is not controlled by this DaskCluster")
	var written *daskv1.DaskCluster
	for _, a := range f.dask.Actions() {
		if a.GetSubresource() == "status" {
			written = a.(k8stesting.UpdateAction).GetObject().(*daskv1.DaskCluster)
		}
	}
	require.NotNil(t, written)
	cond := apimeta.FindStatusCondition(written.Status.Conditions, daskv1.ConditionResourcesCreated)
	require.NotNil(t, cond)
	assert.Equal(t, daskv1.ReasonNameConflict, cond.Reason)
	assert.Equal(t, 1, countEvents(f, daskv1.ReasonNameConflict))

	// The next sync, with that condition already written, warns no more.
	c2 := c.DeepCopy()
	c2.Status = written.Status
	f.addToCache(c2)
	_, err = f.ctrl.syncCluster(ctx, "ns/c")
	require.Error(t, err)
	assert.Equal(t, 1, countEvents(f, daskv1.ReasonNameConflict), "a standing conflict is reported once")

	// Our own Pod that the cache has not seen yet is no conflict.
	own := resources.SchedulerPod(c)
	f = newFixture(t, c)
	require.NoError(t, f.kube.Tracker().Add(own))
	_, err = f.ctrl.syncCluster(ctx, "ns/c")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not in the cache yet")
	assert.Zero(t, countEvents(f, daskv1.ReasonNameConflict))
}

// countEvents counts the events of a reason recorded so far.
func countEvents(f *fixture, reason string) int {
	for {
		select {
		case e := <-f.recorder.Events:
			f.seen = append(f.seen, e)
			continue
		default:
		}
		break
	}
	n := 0
	for _, e := range f.seen {
		if strings.Contains(e, " "+reason+" ") {
			n++
		}
	}
	return n
}
