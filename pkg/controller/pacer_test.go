package controller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

func TestPacer(t *testing.T) {
	p := newPacer()
	now := time.Unix(1_800_000_000, 0)
	assert.Zero(t, p.wait("k", now), "the first write is never held back")
	p.hold("k", now.Add(time.Second))
	assert.Equal(t, 700*time.Millisecond, p.wait("k", now.Add(300*time.Millisecond)))
	assert.Zero(t, p.wait("k", now.Add(time.Second)))
	assert.Zero(t, p.wait("other", now))
	p.hold("k", now.Add(time.Hour))
	p.forget("k")
	assert.Zero(t, p.wait("k", now))
}

func TestDeferral(t *testing.T) {
	p := newPacer()
	now := time.Unix(1_800_000_000, 0)
	assert.Equal(t, time.Second, p.deferral("k", now, time.Second), "the first progress waits")
	assert.Equal(t, 600*time.Millisecond, p.deferral("k", now.Add(400*time.Millisecond), time.Second), "and is not pushed back by more")
	assert.Zero(t, p.deferral("k", now.Add(time.Second), time.Second), "then it is written")
	assert.Zero(t, p.deferral("k", now.Add(2*time.Second), time.Second), "until the write replaces the entry")
	p.forget("k")
	assert.Equal(t, time.Second, p.deferral("k", now.Add(3*time.Second), time.Second), "a settled write lets the next progress wait again")
}

func TestStatusPacing(t *testing.T) {
	cond := func(typ string, s metav1.ConditionStatus, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: "R" + string(s), Message: msg}
	}
	found := cond(daskv1.ConditionClusterFound, metav1.ConditionTrue, "")
	ready := func(msg string, s metav1.ConditionStatus) metav1.Condition {
		return cond(daskv1.ConditionWorkersReady, s, msg)
	}

	// A new group: from nothing to ClusterFound, 0/3 ready: progress, not settled.
	empty := &daskv1.DaskWorkerGroupStatus{}
	starting := &daskv1.DaskWorkerGroupStatus{Conditions: []metav1.Condition{found, ready("0/3", metav1.ConditionFalse)}}
	progress, settled := groupStatusPacing(empty, starting, 3)
	assert.True(t, progress)
	assert.False(t, settled)

	up := &daskv1.DaskWorkerGroupStatus{Replicas: 3, ReadyReplicas: 3, Conditions: []metav1.Condition{found, ready("3/3", metav1.ConditionTrue)}}
	progress, settled = groupStatusPacing(starting, up, 3)
	assert.True(t, progress)
	assert.True(t, settled, "all there and ready")
	_, settled = groupStatusPacing(starting, &daskv1.DaskWorkerGroupStatus{Replicas: 5, ReadyReplicas: 5, Conditions: up.Conditions}, 3)
	assert.False(t, settled, "a scale-down still under way, though WorkersReady is True")

	lost := &daskv1.DaskWorkerGroupStatus{Conditions: []metav1.Condition{cond(daskv1.ConditionClusterFound, metav1.ConditionFalse, "gone"), ready("0/3", metav1.ConditionFalse)}}
	progress, _ = groupStatusPacing(starting, lost, 3)
	assert.False(t, progress, "a condition turning False is written at once")
	failing := &daskv1.DaskWorkerGroupStatus{Conditions: append(slices.Clone(starting.Conditions), cond(daskv1.ConditionReplicaFailure, metav1.ConditionTrue, "quota"))}
	progress, _ = groupStatusPacing(starting, failing, 3)
	assert.False(t, progress, "another condition appearing is written at once")
	progress, _ = groupStatusPacing(failing, starting, 3)
	assert.False(t, progress, "and so is its removal")

	// Clusters: a new phase (Running, which clients wait for) is written at
	// once; the scheduler and workers coming up are progress.
	running := &daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterRunning, Conditions: []metav1.Condition{
		cond(daskv1.ConditionSchedulerReady, metav1.ConditionFalse, "pending"), ready("0/3", metav1.ConditionFalse)}}
	progress, settled = clusterStatusPacing(&daskv1.DaskClusterStatus{}, running)
	assert.False(t, progress, "the phase changed")
	assert.False(t, settled)
	halfUp := &daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterRunning, Replicas: 3, ReadyReplicas: 1, Conditions: []metav1.Condition{
		cond(daskv1.ConditionSchedulerReady, metav1.ConditionTrue, "ready"), ready("1/3", metav1.ConditionFalse)}}
	progress, settled = clusterStatusPacing(running, halfUp)
	assert.True(t, progress)
	assert.False(t, settled)
	allUp := &daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterRunning, Replicas: 3, ReadyReplicas: 3, Conditions: []metav1.Condition{
		cond(daskv1.ConditionSchedulerReady, metav1.ConditionTrue, "ready"), ready("3/3", metav1.ConditionTrue)}}
	_, settled = clusterStatusPacing(halfUp, allUp)
	assert.True(t, settled)
	progress, _ = clusterStatusPacing(running, &daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterError})
	assert.False(t, progress)
}

// Issue 19: a group coming up costs one status write, not one per Pod
// event: progress waits up to statusWriteInterval, and the status that has
// settled (every worker there and ready) is written at once. A change users
// and events act on is never held back.
func TestProgressingStatusWaitsAndSettledIsWrittenAtOnce(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 2)
	f := newFixture(t, c, g)
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.now = func() time.Time { return now }
	ctx := context.Background()
	statusWrites := func() int { return statusWritesOf(f, "daskworkergroups") }

	requeue, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	require.Len(t, f.actions("create", "pods"), 2)
	assert.Zero(t, statusWrites(), "0/2 workers is progress: it waits")
	assert.Equal(t, statusWriteInterval, requeue, "and is looked at again when the wait is over")

	now = now.Add(300 * time.Millisecond)
	for _, name := range f.createdPodNames() {
		p := workerPod(g, name, runningNotReady, 0)
		f.addToCache(p)
		f.ctrl.onPodAdd(p)
	}
	requeue, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	assert.Zero(t, statusWrites(), "2 workers, none ready: still progress")
	assert.Equal(t, statusWriteInterval-300*time.Millisecond, requeue, "the wait is not pushed back by more progress")

	now = now.Add(200 * time.Millisecond)
	for _, name := range f.createdPodNames() {
		p := workerPod(g, name, ready, 0)
		require.NoError(t, f.ctrl.caches.in("").pods.GetIndexer().Update(p))
	}
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	require.Equal(t, 1, statusWrites(), "settled: written at once")
	st := lastStatusWrite[*daskv1.DaskWorkerGroup](t, f, "daskworkergroups").Status
	assert.Equal(t, [2]int32{2, 2}, [2]int32{st.Replicas, st.ReadyReplicas})

	// The cluster goes: ClusterFound turns False, which is written at once.
	require.NoError(t, f.ctrl.caches.in("").groups.GetIndexer().Update(&daskv1.DaskWorkerGroup{
		ObjectMeta: g.ObjectMeta, Spec: g.Spec, Status: st}))
	require.NoError(t, f.ctrl.caches.in("").clusters.GetIndexer().Delete(c))
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	require.Equal(t, 2, statusWrites())
	found := apimeta.FindStatusCondition(lastStatusWrite[*daskv1.DaskWorkerGroup](t, f, "daskworkergroups").Status.Conditions, daskv1.ConditionClusterFound)
	require.NotNil(t, found)
	assert.Equal(t, metav1.ConditionFalse, found.Status)
}

// A sync that runs between the group's status write and the watch event
// that brings it compares with what was written, not with the older cache:
// otherwise each such sync writes the same status again.
func TestGroupStatusIsNotWrittenTwiceWhileTheCacheLags(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 1)
	g.ResourceVersion = "10"
	p := workerPod(g, "g-worker-a", ready, time.Hour)
	f := newFixture(t, c, g, p)
	f.dask.PrependReactor("update", "daskworkergroups", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.UpdateAction).GetObject().(*daskv1.DaskWorkerGroup).DeepCopy()
		obj.ResourceVersion = "11" // as the API server answers a write
		return true, obj, nil
	})
	writes := func() int {
		n := 0
		for _, a := range f.dask.Actions() {
			if a.GetSubresource() == "status" {
				n++
			}
		}
		return n
	}
	for i := 0; i < 3; i++ {
		_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
		require.NoError(t, err)
	}
	assert.Equal(t, 1, writes(), "the cache still holds resourceVersion 10: the status is written once")
}

// Many objects progressing at once share a budget of progress writes: each
// waits longer, up to a bound; one alone waits the base interval.
func TestProgressIntervalGrowsWithTheObjectsProgressing(t *testing.T) {
	assert.Equal(t, 2*time.Second, progressInterval(2*time.Second, 1, 0))
	assert.Equal(t, 2*time.Second, progressInterval(2*time.Second, 1, 1))
	assert.Equal(t, 4*time.Second, progressInterval(2*time.Second, 2, 1), "a cluster waits twice as long")
	assert.Equal(t, 8*time.Second, progressInterval(2*time.Second, 1, 200), "200 objects: 25 writes a second")
	assert.Equal(t, maxProgressInterval, progressInterval(2*time.Second, 1, 5000))
	assert.Equal(t, maxProgressInterval, progressInterval(2*time.Second, 2, 5000))

	// Through the controller: with 500 groups progressing, the next waits 20 s.
	c, g := cluster("c"), group("g", "c", 2)
	f := newFixture(t, c, g)
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.now = func() time.Time { return now }
	for i := range 500 {
		f.ctrl.statusPace.deferral(fmt.Sprintf("DaskWorkerGroup/ns/other-%d", i), now, time.Second)
	}
	requeue, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	require.Len(t, f.actions("create", "pods"), 2)
	assert.Equal(t, 20*time.Second, requeue, "0/2 workers is progress: it waits its share")
}

// An object that wrote its progress and waits for its Pods still counts
// among those progressing, until a settled write; its next progress waits a
// full interval again.
func TestProgressWrittenStillCounts(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 2)
	f := newFixture(t, c, g)
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.now = func() time.Time { return now }
	key := "DaskWorkerGroup/ns/g"
	assert.Equal(t, 2*time.Second, f.ctrl.statusWait(key, 1, true, false))
	now = now.Add(2 * time.Second)
	assert.Zero(t, f.ctrl.statusWait(key, 1, true, false), "the wait is over: written")
	f.ctrl.statusWritten(key, false)
	assert.Equal(t, 1, f.ctrl.statusPace.size(), "still progressing")
	assert.Equal(t, 2*time.Second, f.ctrl.statusWait(key, 1, true, false), "the next progress waits again")
	f.ctrl.statusWritten(key, true)
	assert.Zero(t, f.ctrl.statusPace.size(), "settled")
}

// Issue 29, item 15: a new cluster's first status, Running as soon as its
// Service exists, is written at once, its Pods still starting: the
// KubeCluster client waits resource_timeout for Running (1 s in the
// Python operator's own test_cluster_crashloopbackoff), so no write is
// saved on what a waiting client reads.
func TestFirstRunningIsWrittenAtOnce(t *testing.T) {
	statusWrites := func(f *fixture) int { return statusWritesOf(f, "daskclusters") }
	ctx := context.Background()

	t.Run("Running with nothing ready yet", func(t *testing.T) {
		f := newFixture(t, cluster("c"))
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		require.Len(t, f.actions("create", "services"), 1)
		require.Equal(t, 1, statusWrites(f), "written in the sync that created the Service")
		assert.Equal(t, daskv1.DaskClusterRunning, lastClusterStatus(t, f).Phase)
	})

	t.Run("its group appearing with the workers it asks for is progress, paced", func(t *testing.T) {
		f := newFixture(t, cluster("c"))
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		require.Equal(t, 1, statusWrites(f))
		for _, res := range []string{"services", "pods", "daskworkergroups"} {
			f.addToCache(f.actions("create", res)[0].(k8stesting.CreateAction).GetObject())
		}
		f.addToCache(lastClusterStatusObject(t, f))
		_, err = f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		assert.Equal(t, 1, statusWrites(f), "0/0 workers ready, then 0/1: no worker became unready")
	})

	t.Run("a child the cache lags behind is not created again", func(t *testing.T) {
		f := newFixture(t, cluster("c"))
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		// The Service and Pod events came; the group's has not.
		for _, res := range []string{"services", "pods"} {
			f.addToCache(f.actions("create", res)[0].(k8stesting.CreateAction).GetObject())
		}
		_, err = f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err, "the group we created stands in for the cache's copy")
		assert.Len(t, f.actions("create", "daskworkergroups"), 1, "no second create")
	})

	t.Run("a failure is written at once", func(t *testing.T) {
		f := newFixture(t, cluster("c"))
		f.kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, fmt.Errorf("the API server is unreachable")
		})
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.Error(t, err)
		assert.Equal(t, 1, statusWrites(f), "a condition users act on is not held")
	})
}

// statusWritesOf counts the status writes of a resource sent so far.
func statusWritesOf(f *fixture, resource string) int {
	n := 0
	for _, a := range f.dask.Actions() {
		if a.GetSubresource() == "status" && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

// Issue 29, item 10: a scheduler or workers that were ready and are not any
// more are written at once, not paced as progress; from False to another
// False (1/3, then 2/3 ready) is still progress.
func TestReadinessLostIsWrittenAtOnce(t *testing.T) {
	cond := func(typ string, s metav1.ConditionStatus, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: "R" + string(s), Message: msg}
	}
	for _, typ := range []string{daskv1.ConditionSchedulerReady, daskv1.ConditionWorkersReady, daskv1.ConditionWorkersUpdated} {
		was := []metav1.Condition{cond(typ, metav1.ConditionTrue, "ready")}
		now := []metav1.Condition{cond(typ, metav1.ConditionFalse, "not ready")}
		assert.False(t, conditionsProgressOnly(was, now, false), "%s turning False", typ)
		assert.True(t, conditionsProgressOnly(now, was, true), "%s turning True", typ)
		assert.True(t, conditionsProgressOnly(now, []metav1.Condition{cond(typ, metav1.ConditionFalse, "less not ready")}, true), typ)
	}
	// More workers wanted, none fewer ready (a new cluster's group appearing
	// with 3 where there were 0, a scale-up): progress to come.
	up := &daskv1.DaskWorkerGroupStatus{Replicas: 3, ReadyReplicas: 3, Conditions: []metav1.Condition{cond(daskv1.ConditionWorkersReady, metav1.ConditionTrue, "3/3")}}
	more := &daskv1.DaskWorkerGroupStatus{Replicas: 3, ReadyReplicas: 3, Conditions: []metav1.Condition{cond(daskv1.ConditionWorkersReady, metav1.ConditionFalse, "3/5")}}
	progress, _ := groupStatusPacing(up, more, 5)
	assert.True(t, progress, "scaled up: paced")
	fewer := &daskv1.DaskWorkerGroupStatus{Replicas: 3, ReadyReplicas: 2, Conditions: []metav1.Condition{cond(daskv1.ConditionWorkersReady, metav1.ConditionFalse, "2/3")}}
	progress, _ = groupStatusPacing(up, fewer, 3)
	assert.False(t, progress, "a worker became unready: at once")
	ready := &daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterRunning, Replicas: 3, ReadyReplicas: 3,
		Conditions: []metav1.Condition{cond(daskv1.ConditionSchedulerReady, metav1.ConditionTrue, "ready")}}
	lost := ready.DeepCopy()
	lost.Conditions[0] = cond(daskv1.ConditionSchedulerReady, metav1.ConditionFalse, "scheduler Pod not Ready")
	progress, _ = clusterStatusPacing(ready, lost)
	assert.False(t, progress)
}

// Issue 29, item 11: objects that never settle (suspended, a LoadBalancer
// without an address, a worker stuck Pending) stop counting among the
// objects progressing once they stop changing, so they do not lengthen
// everyone else's wait for good.
func TestObjectsThatNeverSettleStopCountingAsProgressing(t *testing.T) {
	f := newFixture(t, cluster("c"))
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.now = func() time.Time { return now }
	for i := range 400 {
		key := fmt.Sprintf("DaskWorkerGroup/ns/stuck-%d", i)
		f.ctrl.statusWait(key, 1, true, false)
		f.ctrl.statusWritten(key, false) // wrote its progress; never settles
	}
	assert.Equal(t, 16*time.Second, f.ctrl.statusWait("DaskWorkerGroup/ns/busy-now", 1, true, false),
		"while they progress, everyone's writes share the budget (25 a second)")
	now = now.Add(maxProgressInterval)
	assert.Equal(t, statusWriteInterval, f.ctrl.statusWait("DaskWorkerGroup/ns/new", 1, true, false),
		"they have not changed for a while: a new object waits the base interval")
}

// A group's and a cluster's WorkersReady say the same, from the counts.
func TestSetWorkersReady(t *testing.T) {
	for _, tc := range []struct {
		ready, desired int32
		status         metav1.ConditionStatus
		msg            string
	}{
		{0, 3, metav1.ConditionFalse, "0/3 workers ready"},
		{3, 3, metav1.ConditionTrue, "3/3 workers ready"},
		{5, 3, metav1.ConditionTrue, "5/3 workers ready"},
		{0, 0, metav1.ConditionTrue, "0/0 workers ready"},
	} {
		var conds []metav1.Condition
		setWorkersReady(&conds, 4, tc.ready, tc.desired)
		require.Len(t, conds, 1)
		assert.Equal(t, tc.status, conds[0].Status)
		assert.Equal(t, tc.msg, conds[0].Message)
		assert.Equal(t, int64(4), conds[0].ObservedGeneration)
	}
}

// lastClusterStatusObject is the DaskCluster of the last status write.
func lastClusterStatusObject(t *testing.T, f *fixture) *daskv1.DaskCluster {
	return lastStatusWrite[*daskv1.DaskCluster](t, f, "daskclusters")
}
