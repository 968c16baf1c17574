package workergroup

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/metrics"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// waitRetirement waits for the background retire of key to end.
func waitRetirement(t *testing.T, f *fixture, key string) {
	t.Helper()
	require.Eventually(t, func() bool { _, ok := f.ctrl.retirements.Peek(key); return ok }, 5*time.Second, 5*time.Millisecond)
}

// retireRound syncs group ns/g (which starts a retire in the background),
// waits for the retire, and syncs again to act on it; it returns the second
// sync's requeue.
func retireRound(t *testing.T, f *fixture) time.Duration {
	t.Helper()
	_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	waitRetirement(t, f, "ns/g")
	requeue, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	return requeue
}

func lastGroupStatus(t *testing.T, f *fixture) daskv1.DaskWorkerGroupStatus {
	t.Helper()
	return controllertest.LastStatusWrite[*daskv1.DaskWorkerGroup](t, f.Fixture, "daskworkergroups").Status
}

// Issue 15, item 2: scaling an extra group down retires workers of that
// group only, named by address, and deletes exactly their Pods; the
// default group's worker is never offered to the scheduler.
func TestScaleDownRetiresOnlyWorkersOfTheGroup(t *testing.T) {
	c := testobjects.Cluster("c")
	def, g := testobjects.Group("c-default", "c", 1), testobjects.Group("g", "c", 1)
	d := testobjects.WorkerPod(def, "c-default-a", testobjects.Ready, 3*time.Hour)
	d.Status.PodIP = "10.0.1.1"
	a, b := testobjects.WorkerPod(g, "g-a", testobjects.Ready, 2*time.Hour), testobjects.WorkerPod(g, "g-b", testobjects.Ready, time.Hour)
	a.Status.PodIP, b.Status.PodIP = "10.0.2.1", "10.0.2.2"
	f := newFixture(t, c, def, g, d, a, b)
	f.Workers = `{"workers": [{"name": "c-default-a", "address": "tcp://10.0.1.1:4000"},
		{"name": "g-a", "address": "tcp://10.0.2.1:4000"}, {"name": "g-b", "address": "tcp://10.0.2.2:4000"}]}`
	var asked []string
	f.Retire = func(addrs []string) (int, string) {
		asked = addrs
		return 200, `{"` + addrs[0] + `": {"name": "g-b"}}`
	}
	retireRound(t, f)
	assert.Equal(t, []string{"tcp://10.0.2.2:4000"}, asked, "the newest worker of this group, by address")
	assert.Equal(t, []string{"g-b"}, controllertest.DeletedNames(f.Fixture, "pods"))
}

// Issue 15, item 3: a registered worker whose Pod runs but is not Ready (its
// readiness probe fails under load) holds data: it is retired through the
// scheduler, never deleted directly. One whose worker never registered goes.
func TestScaleDownRetiresRegisteredWorkersThatAreNotReady(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 1)
	a := testobjects.WorkerPod(g, "g-a", testobjects.Ready, 2*time.Hour)
	busy := testobjects.WorkerPod(g, "g-busy", testobjects.RunningNotReady, time.Hour)
	a.Status.PodIP, busy.Status.PodIP = "10.0.3.1", "10.0.3.2"
	f := newFixture(t, c, g, a, busy)
	f.Workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.3.1:4000"}, {"name": "g-busy", "address": "tcp://10.0.3.2:4000"}]}`
	var asked []string
	f.Retire = func(addrs []string) (int, string) {
		asked = addrs
		return 200, `{"tcp://10.0.3.2:4000": {"name": "g-busy"}}`
	}
	ctx := context.Background()
	_, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	assert.Empty(t, controllertest.DeletedNames(f.Fixture, "pods"), "nothing is deleted before the scheduler retired it")
	waitRetirement(t, f, "ns/g")
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	assert.Equal(t, []string{"tcp://10.0.3.2:4000"}, asked)
	assert.Equal(t, []string{"g-busy"}, controllertest.DeletedNames(f.Fixture, "pods"))

	// The same Pod without a registered worker holds nothing: it goes
	// without a retire.
	f2 := newFixture(t, c, g, a, busy)
	f2.Workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.3.1:4000"}]}`
	f2.Retire = func([]string) (int, string) { t.Error("nothing to retire"); return 500, "" }
	before := testutil.ToFloat64(metrics.ScaleDowns.WithLabelValues("unregistered"))
	retireRound(t, f2)
	assert.Equal(t, []string{"g-busy"}, controllertest.DeletedNames(f2.Fixture, "pods"))
	// Issue 15, item 11: the documented reason is counted.
	assert.Equal(t, before+1, testutil.ToFloat64(metrics.ScaleDowns.WithLabelValues("unregistered")))
}

// Issue 15, item 1: a scheduler that answers but fails or is slow to retire
// keeps its workers (they hold data); the fallback that deletes running
// workers without retiring them acts only on a scheduler that cannot even be
// listed, and only after RetireFallbackAfter.
func TestFallbackOnlyForAnUnreachableScheduler(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 0)
	a := testobjects.WorkerPod(g, "g-a", testobjects.Ready, time.Hour)
	a.Status.PodIP = "10.0.4.1"

	f := newFixture(t, c, g, a)
	f.ctrl.Opts.RetireFallbackAfter = time.Nanosecond
	f.Workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.4.1:4000"}]}`
	f.Retire = func([]string) (int, string) { return 500, "timed out moving data" }
	for range 2 {
		assert.Equal(t, retryRetireAfter, retireRound(t, f), "asks again later")
	}
	assert.Empty(t, controllertest.DeletedNames(f.Fixture, "pods"), "a worker the scheduler failed to retire is kept")
	cond := apimeta.FindStatusCondition(lastGroupStatus(t, f).Conditions, daskv1.ConditionSchedulerReachable)
	require.NotNil(t, cond)
	assert.Equal(t, "RetireFailed", cond.Reason)
	assert.Contains(t, cond.Message, "kept")

	f = newFixture(t, c, g, a)
	f.ctrl.Opts.RetireFallbackAfter = time.Nanosecond
	f.WorkersCode = 503
	retireRound(t, f)
	assert.Equal(t, []string{"g-a"}, controllertest.DeletedNames(f.Fixture, "pods"), "the documented fallback for an unreachable scheduler")
	cond = apimeta.FindStatusCondition(lastGroupStatus(t, f).Conditions, daskv1.ConditionSchedulerReachable)
	require.NotNil(t, cond)
	assert.Equal(t, "SchedulerUnreachable", cond.Reason)
}

// Issue 15, item 1: a retire in progress is waited for, not repeated.
func TestRetireInProgressIsNotRepeated(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 1)
	a, b := testobjects.WorkerPod(g, "g-a", testobjects.Ready, 2*time.Hour), testobjects.WorkerPod(g, "g-b", testobjects.Ready, time.Hour)
	a.Status.PodIP, b.Status.PodIP = "10.0.5.1", "10.0.5.2"
	f := newFixture(t, c, g, a, b)
	f.Workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.5.1:4000"}, {"name": "g-b", "address": "tcp://10.0.5.2:4000"}]}`
	release := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	f.Retire = func([]string) (int, string) {
		mu.Lock()
		calls++
		mu.Unlock()
		<-release
		return 200, `{"tcp://10.0.5.2:4000": {"name": "g-b"}}`
	}
	ctx := context.Background()
	for range 3 {
		_, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	waitRetirement(t, f, "ns/g")
	mu.Lock()
	assert.Equal(t, 1, calls)
	mu.Unlock()
	_, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	assert.Equal(t, []string{"g-b"}, controllertest.DeletedNames(f.Fixture, "pods"))
}

// Pods whose worker cannot have joined (no address yet, or nothing started)
// are the only ones deleted without asking the scheduler.
func TestWorkerCannotHaveJoined(t *testing.T) {
	g := testobjects.Group("g", "c", 1)
	noIP := testobjects.WorkerPod(g, "a", testobjects.Pending, 0)
	assert.True(t, workerCannotHaveJoined(noIP))
	starting := testobjects.WorkerPod(g, "b", testobjects.Pending, 0)
	starting.Status.PodIP = "10.0.0.9"
	assert.True(t, workerCannotHaveJoined(starting))
	starting.Status.ContainerStatuses = []corev1.ContainerStatus{{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	assert.False(t, workerCannotHaveJoined(starting), "a started container may hold a registered worker")
	assert.False(t, workerCannotHaveJoined(testobjects.WorkerPod(g, "c", testobjects.RunningNotReady, 0)))
}

// Issue 14, part 2: a cluster whose scheduler sets its own HTTP routes
// without the API route is reported on its groups, once.
func TestGroupReportsASchedulerWithoutItsAPI(t *testing.T) {
	c := testobjects.Cluster("c")
	c.Spec.Scheduler.Spec.Containers[0].Env = []corev1.EnvVar{{Name: resources.EnvSchedulerHTTPRoutes, Value: `["distributed.http.health"]`}}
	g := testobjects.Group("g", "c", 0)
	f := newFixture(t, c, g)
	_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	s := lastGroupStatus(t, f)
	cond := apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionGracefulScaleDown)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Contains(t, cond.Message, resources.SchedulerAPIRoute)
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonSchedulerAPIDisabled))

	g2 := g.DeepCopy()
	g2.Status = s
	f.AddToCache(g2)
	_, err = f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonSchedulerAPIDisabled), "reported once")
}

// The workers holding the fewest results are retired first, when the
// scheduler tells (/json/identity.json): the one holding data is kept.
func TestScaleDownRetiresTheWorkersHoldingLeast(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 1)
	old, young := testobjects.WorkerPod(g, "g-old", testobjects.Ready, 2*time.Hour), testobjects.WorkerPod(g, "g-young", testobjects.Ready, time.Hour)
	old.Status.PodIP, young.Status.PodIP = "10.0.6.1", "10.0.6.2"
	f := newFixture(t, c, g, old, young)
	f.Workers = `{"workers": [{"name": "g-old", "address": "tcp://10.0.6.1:4000"}, {"name": "g-young", "address": "tcp://10.0.6.2:4000"}]}`
	f.Identity = `{"workers": {"tcp://10.0.6.1:4000": {"metrics": {"managed_bytes": 0}},
		"tcp://10.0.6.2:4000": {"metrics": {"managed_bytes": 50000000}}}}`
	var asked []string
	f.Retire = func(addrs []string) (int, string) {
		asked = addrs
		return 200, `{"tcp://10.0.6.1:4000": {"name": "g-old"}}`
	}
	retireRound(t, f)
	assert.Equal(t, []string{"tcp://10.0.6.1:4000"}, asked, "the newest worker holds data: the idle one goes")
	assert.Equal(t, []string{"g-old"}, controllertest.DeletedNames(f.Fixture, "pods"))
}

// Event messages name at most a few Pods (the API server keeps about 1 kB):
// a fallback over hundreds of workers still says how many.
func TestNameListIsBounded(t *testing.T) {
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("big-default-worker-%010d", i))
	}
	list := controller.NameList(names)
	assert.Less(t, len(list), 400)
	assert.True(t, strings.HasSuffix(list, "and 290 more"), list)
	assert.Equal(t, "a, b", controller.NameList([]string{"a", "b"}))
}

// A scheduler that keeps failing to retire is reported by one Warning, not
// one per retry: client-go drops an object's events past a budget, and the
// ones that matter (FallbackScaleDown) must not be crowded out. Found by the
// fault suite (a black-holed scheduler's fallback went unannounced).
func TestRetireFailureIsReportedOnce(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 0)
	a := testobjects.WorkerPod(g, "g-a", testobjects.Ready, time.Hour)
	a.Status.PodIP = "10.0.4.1"
	f := newFixture(t, c, g, a)
	f.Workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.4.1:4000"}]}`
	f.Retire = func([]string) (int, string) { return 500, "timed out moving data" }
	for range 3 {
		retireRound(t, f)
		st := lastGroupStatus(t, f)
		updated := g.DeepCopy()
		updated.Status = st
		require.NoError(t, f.ctrl.Caches.In("").Groups.GetIndexer().Update(updated))
	}
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonRetireFailed))
	cond := apimeta.FindStatusCondition(lastGroupStatus(t, f).Conditions, daskv1.ConditionSchedulerReachable)
	require.NotNil(t, cond)
	assert.Contains(t, cond.Message, "timed out moving data", "the condition keeps the latest error")
}

// Issue 29, item 1: a worker that registers while a retire runs (it started
// slowly) may hold results by the time the retire answers: its Pod is not
// deleted as "unregistered" on the listing taken before the retire.
func TestWorkerRegisteredDuringARetireIsNotDeleted(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 1)
	slow := testobjects.WorkerPod(g, "g-slow", testobjects.RunningNotReady, time.Minute)
	a, b := testobjects.WorkerPod(g, "g-a", testobjects.Ready, 2*time.Hour), testobjects.WorkerPod(g, "g-b", testobjects.Ready, time.Hour)
	slow.Status.PodIP, a.Status.PodIP, b.Status.PodIP = "10.0.7.3", "10.0.7.1", "10.0.7.2"
	f := newFixture(t, c, g, slow, a, b)
	f.Workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.7.1:4000"}, {"name": "g-b", "address": "tcp://10.0.7.2:4000"}]}`
	f.Retire = func(addrs []string) (int, string) {
		// While the scheduler moves data, the slow worker joins.
		f.Mu.Lock()
		f.Workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.7.1:4000"}, {"name": "g-slow", "address": "tcp://10.0.7.3:4000"}]}`
		f.Mu.Unlock()
		return 200, `{"tcp://10.0.7.2:4000": {"name": "g-b"}}`
	}
	retireRound(t, f)
	assert.Equal(t, []string{"g-b"}, controllertest.DeletedNames(f.Fixture, "pods"), "the worker that joined meanwhile stays")
}

// Issue 29, item 2: a Pod running two workers (--nworkers 2) is deleted only
// when the scheduler retired both; one left holds its results.
func TestPodWithSeveralWorkersGoesOnlyWhenAllAreRetired(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 1)
	a, b := testobjects.WorkerPod(g, "g-a", testobjects.Ready, 2*time.Hour), testobjects.WorkerPod(g, "g-b", testobjects.Ready, time.Hour)
	a.Status.PodIP, b.Status.PodIP = "10.0.8.1", "10.0.8.2"
	f := newFixture(t, c, g, a, b)
	f.Workers = `{"workers": [{"name": "g-a-0", "address": "tcp://10.0.8.1:4000"}, {"name": "g-a-1", "address": "tcp://10.0.8.1:4001"},
		{"name": "g-b-0", "address": "tcp://10.0.8.2:4000"}, {"name": "g-b-1", "address": "tcp://10.0.8.2:4001"}]}`
	var asked []string
	f.Retire = func(addrs []string) (int, string) {
		asked = addrs
		return 200, `{"tcp://10.0.8.2:4000": {"name": "g-b-0"}}` // one of the two could not move its data
	}
	retireRound(t, f)
	assert.Equal(t, []string{"tcp://10.0.8.2:4000", "tcp://10.0.8.2:4001"}, asked, "both workers of the Pod")
	assert.Empty(t, controllertest.DeletedNames(f.Fixture, "pods"), "g-b still runs a worker with results")

	f.Retire = func(addrs []string) (int, string) {
		return 200, `{"tcp://10.0.8.2:4000": {"name": "g-b-0"}, "tcp://10.0.8.2:4001": {"name": "g-b-1"}}`
	}
	retireRound(t, f)
	assert.Equal(t, []string{"g-b"}, controllertest.DeletedNames(f.Fixture, "pods"))
}

// Issue 29, item 4: the bytes held order workers within a tier only: not
// Ready first, then outdated, then fewest bytes.
func TestVictimOrderIsNotReadyThenOutdatedThenBytes(t *testing.T) {
	refs := []workerRef{
		{name: "ready-current-empty", tier: 3},
		{name: "ready-outdated-full", tier: 2},
		{name: "unready-outdated-full", tier: 0},
		{name: "ready-outdated-empty", tier: 2},
		{name: "unready-current-empty", tier: 1},
	}
	addrs := map[string][]string{}
	held := map[string]int64{}
	for i, r := range refs {
		addrs[r.name] = []string{fmt.Sprintf("tcp://10.0.0.%d:1", i)}
		if strings.HasSuffix(r.name, "full") {
			held[addrs[r.name][0]] = 1 << 30
		}
	}
	var got []string
	for _, r := range byHeldBytes(refs, addrs, held) {
		got = append(got, r.name)
	}
	assert.Equal(t, []string{"unready-outdated-full", "unready-current-empty", "ready-outdated-empty", "ready-outdated-full", "ready-current-empty"}, got)

	g := testobjects.Group("g", "c", 1)
	hash := resources.WorkerTemplateHash(g)
	p := testobjects.WorkerPod(g, "p", testobjects.Ready, time.Hour)
	p.Labels[resources.LabelTemplateHash] = "old"
	assert.Equal(t, 2, victimTier(p, hash))
	p.Labels[resources.LabelTemplateHash] = hash
	assert.Equal(t, 3, victimTier(p, hash))
	p.Status.Conditions[0].Status = corev1.ConditionFalse
	assert.Equal(t, 1, victimTier(p, hash))
}

// Issue 29, item 6: a retire answered with no worker retired (Dask answers
// {} when it cannot move their data) is reported, by a False condition and
// one Warning, and asked again less and less often, not every 5 s forever.
func TestRetireWithNoWorkerRetiredIsReportedAndBacksOff(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 0)
	a := testobjects.WorkerPod(g, "g-a", testobjects.Ready, time.Hour)
	a.Status.PodIP = "10.0.9.1"
	f := newFixture(t, c, g, a)
	f.Workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.9.1:4000"}]}`
	f.Retire = func([]string) (int, string) { return 200, `{}` }
	var waits []time.Duration
	for i := range 3 {
		waits = append(waits, retireRound(t, f))
		st := lastGroupStatus(t, f)
		cond := apimeta.FindStatusCondition(st.Conditions, daskv1.ConditionSchedulerReachable)
		require.NotNil(t, cond)
		assert.Equal(t, metav1.ConditionFalse, cond.Status)
		assert.Equal(t, daskv1.ReasonNoWorkerRetired, cond.Reason)
		assert.Contains(t, cond.Message, "g-a")
		// The refusals have lasted a while: the condition is older each round.
		cond.LastTransitionTime = metav1.NewTime(cond.LastTransitionTime.Add(-time.Duration(i+1) * 40 * time.Second))
		updated := g.DeepCopy()
		updated.Status = st
		require.NoError(t, f.ctrl.Caches.In("").Groups.GetIndexer().Update(updated))
	}
	assert.Empty(t, controllertest.DeletedNames(f.Fixture, "pods"))
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonNoWorkerRetired), "one Warning")
	assert.Equal(t, retryRetireAfter, waits[0])
	assert.Greater(t, waits[2], waits[1])
	assert.Greater(t, waits[1], retryRetireAfter)
	assert.LessOrEqual(t, waits[2], maxRetireBackoff)
}

// Issue 29, item 9: the Pods of retired workers are deleted as soon as the
// retire answers, even while creations are still expected (after an outage
// they may be, for minutes): a retired worker with restartPolicy Always
// would otherwise start again and rejoin the scheduler.
func TestRetiredWorkersGoWhileCreationsArePending(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 1)
	a, b := testobjects.WorkerPod(g, "g-a", testobjects.Ready, 2*time.Hour), testobjects.WorkerPod(g, "g-b", testobjects.Ready, time.Hour)
	a.Status.PodIP, b.Status.PodIP = "10.0.10.1", "10.0.10.2"
	f := newFixture(t, c, g, a, b)
	f.ctrl.expect.ExpectCreations("ns/g", "g-pending")
	f.ctrl.retirements.Results["ns/g"] = controller.AsyncResult[retirement]{
		Value: retirement{retired: []daskapi.Worker{{Name: "g-b", Address: "tcp://10.0.10.2:4000"}}, asked: map[string][]string{"g-b": {"tcp://10.0.10.2:4000"}}},
		At:    time.Now(),
	}
	_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	assert.Equal(t, []string{"g-b"}, controllertest.DeletedNames(f.Fixture, "pods"))
	assert.Empty(t, f.Actions("create", "pods"), "the pending creation is still waited for")
}

// Issue 29, item 1, after a retire that timed out: the listing that decides
// about unregistered Pods is still taken, with a deadline of its own.
func TestWorkerRegisteredDuringATimedOutRetireIsNotDeleted(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 1)
	slow := testobjects.WorkerPod(g, "g-slow", testobjects.RunningNotReady, time.Minute)
	a, b := testobjects.WorkerPod(g, "g-a", testobjects.Ready, 2*time.Hour), testobjects.WorkerPod(g, "g-b", testobjects.Ready, time.Hour)
	slow.Status.PodIP, a.Status.PodIP, b.Status.PodIP = "10.0.11.3", "10.0.11.1", "10.0.11.2"
	f := newFixture(t, c, g, slow, a, b)
	f.ctrl.Opts.RetireTimeout = 200 * time.Millisecond
	f.Workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.11.1:4000"}, {"name": "g-b", "address": "tcp://10.0.11.2:4000"}]}`
	f.Retire = func(addrs []string) (int, string) {
		f.Mu.Lock()
		f.Workers = `{"workers": [{"name": "g-a", "address": "tcp://10.0.11.1:4000"}, {"name": "g-b", "address": "tcp://10.0.11.2:4000"},
			{"name": "g-slow", "address": "tcp://10.0.11.3:4000"}]}`
		f.Mu.Unlock()
		time.Sleep(time.Second) // longer than the retire may take
		return 200, `{}`
	}
	retireRound(t, f)
	assert.Empty(t, controllertest.DeletedNames(f.Fixture, "pods"), "the worker that joined meanwhile stays; nothing was retired")
}
