package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

func TestClusterChildrenTheCacheLagsBehindAreNotCreatedAgain(t *testing.T) {
	ctx := context.Background()
	start := time.Unix(1_800_000_000, 0)
	newCreated := func(t *testing.T) (*fixture, *time.Time) {
		f := newFixture(t, testobjects.Cluster("c"))
		f.WriteStatusAtOnce()
		now := start
		f.ctrl.Now = func() time.Time { return now }
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		require.Equal(t, [3]int{1, 1, 1}, controllertest.CreateCounts(f.Fixture))
		return f, &now
	}

	t.Run("a sync before any of their events", func(t *testing.T) {
		f, now := newCreated(t)
		*now = now.Add(time.Second)
		requeue, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err, "what we created exists: no refused create, no error")
		assert.Equal(t, [3]int{1, 1, 1}, controllertest.CreateCounts(f.Fixture), "nothing created twice")
		st := controllertest.LastClusterStatus(t, f.Fixture)
		cond := apimeta.FindStatusCondition(st.Conditions, daskv1.ConditionSchedulerReady)
		require.NotNil(t, cond)
		assert.Equal(t, "PodNotReady", cond.Reason, "the status tells of the Pod we created, not of a missing one")
		assert.Equal(t, controller.CreatedTTL-time.Second, requeue, "looked at again when the memory ends, should the events never come")
	})

	t.Run("a child deleted after its add event is created anew", func(t *testing.T) {
		f, _ := newCreated(t)
		sched := f.Actions("create", "pods")[0].(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		f.ctrl.onChild("Pod", sched)
		f.ctrl.onChild("Pod", sched)
		require.NoError(t, f.Kube.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), sched.Namespace, sched.Name))
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		assert.Equal(t, [3]int{1, 2, 1}, controllertest.CreateCounts(f.Fixture), "the scheduler Pod again, nothing else")
	})

	t.Run("an event for the object it replaced does not end the memory", func(t *testing.T) {
		f, _ := newCreated(t)
		old := f.Actions("create", "pods")[0].(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		old.UID = "the-replaced-one"
		// The fake API server gives created objects no UID; the real one does.
		created, ok := controller.CreatedAs[*corev1.Pod](f.ctrl.created, "Pod", "ns", old.Name)
		require.True(t, ok)
		created.UID = "the-new-one"
		f.ctrl.onChild("Pod", old)
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		assert.Equal(t, [3]int{1, 1, 1}, controllertest.CreateCounts(f.Fixture))
	})

	t.Run("events lost: created again once the memory ends", func(t *testing.T) {
		f, now := newCreated(t)
		*now = now.Add(controller.CreatedTTL)
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		assert.Equal(t, [3]int{2, 2, 2}, controllertest.CreateCounts(f.Fixture), "each is tried again")
		require.Error(t, err, "and found existing, ours: the cache lags")
		assert.True(t, controller.OnlyCacheLag(err), err.Error())
		assert.Zero(t, f.ctrl.created.Stale("Pod/ns/c-scheduler"))
	})
}
