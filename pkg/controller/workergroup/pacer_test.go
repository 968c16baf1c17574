package workergroup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// Issue 19: a group coming up costs one status write, not one per Pod
// event: progress waits up to statusWriteInterval, and the status that has
// settled (every worker there and ready) is written at once. A change users
// and events act on is never held back.
func TestProgressingStatusWaitsAndSettledIsWrittenAtOnce(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 2)
	f := newFixture(t, c, g)
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.Now = func() time.Time { return now }
	ctx := context.Background()
	statusWrites := func() int { return controllertest.StatusWritesOf(f.Fixture, "daskworkergroups") }

	requeue, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	require.Len(t, f.Actions("create", "pods"), 2)
	assert.Zero(t, statusWrites(), "0/2 workers is progress: it waits")
	assert.Equal(t, controller.StatusWriteInterval, requeue, "and is looked at again when the wait is over")

	now = now.Add(300 * time.Millisecond)
	for _, name := range f.CreatedPodNames() {
		p := testobjects.WorkerPod(g, name, testobjects.RunningNotReady, 0)
		f.AddToCache(p)
		f.ctrl.onPodAdd(p)
	}
	requeue, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	assert.Zero(t, statusWrites(), "2 workers, none ready: still progress")
	assert.Equal(t, controller.StatusWriteInterval-300*time.Millisecond, requeue, "the wait is not pushed back by more progress")

	now = now.Add(200 * time.Millisecond)
	for _, name := range f.CreatedPodNames() {
		p := testobjects.WorkerPod(g, name, testobjects.Ready, 0)
		require.NoError(t, f.ctrl.Caches.In("").Pods.GetIndexer().Update(p))
	}
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	require.Equal(t, 1, statusWrites(), "settled: written at once")
	st := controllertest.LastStatusWrite[*daskv1.DaskWorkerGroup](t, f.Fixture, "daskworkergroups").Status
	assert.Equal(t, [2]int32{2, 2}, [2]int32{st.Replicas, st.ReadyReplicas})

	// The cluster goes: ClusterFound turns False, which is written at once.
	require.NoError(t, f.ctrl.Caches.In("").Groups.GetIndexer().Update(&daskv1.DaskWorkerGroup{
		ObjectMeta: g.ObjectMeta, Spec: g.Spec, Status: st}))
	require.NoError(t, f.ctrl.Caches.In("").Clusters.GetIndexer().Delete(c))
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	require.Equal(t, 2, statusWrites())
	found := apimeta.FindStatusCondition(controllertest.LastStatusWrite[*daskv1.DaskWorkerGroup](t, f.Fixture, "daskworkergroups").Status.Conditions, daskv1.ConditionClusterFound)
	require.NotNil(t, found)
	assert.Equal(t, metav1.ConditionFalse, found.Status)
}

// A sync that runs between the group's status write and the watch event
// that brings it compares with what was written, not with the older cache:
// otherwise each such sync writes the same status again.
func TestGroupStatusIsNotWrittenTwiceWhileTheCacheLags(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 1)
	g.ResourceVersion = "10"
	p := testobjects.WorkerPod(g, "g-worker-a", testobjects.Ready, time.Hour)
	f := newFixture(t, c, g, p)
	f.Dask.PrependReactor("update", "daskworkergroups", func(a k8stesting.Action) (bool, runtime.Object, error) {
		obj := a.(k8stesting.UpdateAction).GetObject().(*daskv1.DaskWorkerGroup).DeepCopy()
		obj.ResourceVersion = "11" // as the API server answers a write
		return true, obj, nil
	})
	writes := func() int {
		n := 0
		for _, a := range f.Dask.Actions() {
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
	assert.Equal(t, 2*time.Second, controller.ProgressInterval(2*time.Second, 1, 0))
	assert.Equal(t, 2*time.Second, controller.ProgressInterval(2*time.Second, 1, 1))
	assert.Equal(t, 4*time.Second, controller.ProgressInterval(2*time.Second, 2, 1), "a cluster waits twice as long")
	assert.Equal(t, 8*time.Second, controller.ProgressInterval(2*time.Second, 1, 200), "200 objects: 25 writes a second")
	assert.Equal(t, controller.MaxProgressInterval, controller.ProgressInterval(2*time.Second, 1, 5000))
	assert.Equal(t, controller.MaxProgressInterval, controller.ProgressInterval(2*time.Second, 2, 5000))

	// Through the controller: with 500 groups progressing, the next waits 20 s.
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 2)
	f := newFixture(t, c, g)
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.Now = func() time.Time { return now }
	for i := range 500 {
		f.ctrl.StatusPace.Deferral(fmt.Sprintf("DaskWorkerGroup/ns/other-%d", i), now, time.Second)
	}
	requeue, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	require.Len(t, f.Actions("create", "pods"), 2)
	assert.Equal(t, 20*time.Second, requeue, "0/2 workers is progress: it waits its share")
}

// An object that wrote its progress and waits for its Pods still counts
// among those progressing, until a settled write; its next progress waits a
// full interval again.
func TestProgressWrittenStillCounts(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 2)
	f := newFixture(t, c, g)
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.Now = func() time.Time { return now }
	key := "DaskWorkerGroup/ns/g"
	assert.Equal(t, 2*time.Second, f.ctrl.StatusWait(key, 1, true, false))
	now = now.Add(2 * time.Second)
	assert.Zero(t, f.ctrl.StatusWait(key, 1, true, false), "the wait is over: written")
	f.ctrl.StatusWritten(key, false)
	assert.Equal(t, 1, f.ctrl.StatusPace.Size(), "still progressing")
	assert.Equal(t, 2*time.Second, f.ctrl.StatusWait(key, 1, true, false), "the next progress waits again")
	f.ctrl.StatusWritten(key, true)
	assert.Zero(t, f.ctrl.StatusPace.Size(), "settled")
}

// Issue 29, item 11: objects that never settle (suspended, a LoadBalancer
// without an address, a worker stuck Pending) stop counting among the
// objects progressing once they stop changing, so they do not lengthen
// everyone else's wait for good.
func TestObjectsThatNeverSettleStopCountingAsProgressing(t *testing.T) {
	f := newFixture(t, testobjects.Cluster("c"))
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.Now = func() time.Time { return now }
	for i := range 400 {
		key := fmt.Sprintf("DaskWorkerGroup/ns/stuck-%d", i)
		f.ctrl.StatusWait(key, 1, true, false)
		f.ctrl.StatusWritten(key, false) // wrote its progress; never settles
	}
	assert.Equal(t, 16*time.Second, f.ctrl.StatusWait("DaskWorkerGroup/ns/busy-now", 1, true, false),
		"while they progress, everyone's writes share the budget (25 a second)")
	now = now.Add(controller.MaxProgressInterval)
	assert.Equal(t, controller.StatusWriteInterval, f.ctrl.StatusWait("DaskWorkerGroup/ns/new", 1, true, false),
		"they have not changed for a while: a new object waits the base interval")
}
