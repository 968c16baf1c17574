package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

func createCounts(f *fixture) [3]int {
	return [3]int{len(f.actions("create", "services")), len(f.actions("create", "pods")), len(f.actions("create", "daskworkergroups"))}
}

func TestClusterChildrenTheCacheLagsBehindAreNotCreatedAgain(t *testing.T) {
	ctx := context.Background()
	start := time.Unix(1_800_000_000, 0)
	newCreated := func(t *testing.T) (*fixture, *time.Time) {
		f := newFixture(t, cluster("c"))
		f.writeStatusAtOnce()
		now := start
		f.ctrl.now = func() time.Time { return now }
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		require.Equal(t, [3]int{1, 1, 1}, createCounts(f))
		return f, &now
	}

	t.Run("a sync before any of their events", func(t *testing.T) {
		f, now := newCreated(t)
		*now = now.Add(time.Second)
		requeue, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err, "what we created exists: no refused create, no error")
		assert.Equal(t, [3]int{1, 1, 1}, createCounts(f), "nothing created twice")
		st := lastClusterStatus(t, f)
		cond := apimeta.FindStatusCondition(st.Conditions, daskv1.ConditionSchedulerReady)
		require.NotNil(t, cond)
		assert.Equal(t, "PodNotReady", cond.Reason, "the status tells of the Pod we created, not of a missing one")
		assert.Equal(t, createdTTL-time.Second, requeue, "looked at again when the memory ends, should the events never come")
	})

	t.Run("a child deleted after its add event is created anew", func(t *testing.T) {
		f, _ := newCreated(t)
		sched := f.actions("create", "pods")[0].(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		f.ctrl.onPodAdd(sched)
		f.ctrl.onPodDelete(sched)
		require.NoError(t, f.kube.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), sched.Namespace, sched.Name))
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		assert.Equal(t, [3]int{1, 2, 1}, createCounts(f), "the scheduler Pod again, nothing else")
	})

	t.Run("an event for the object it replaced does not end the memory", func(t *testing.T) {
		f, _ := newCreated(t)
		old := f.actions("create", "pods")[0].(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		old.UID = "the-replaced-one"
		// The fake API server gives created objects no UID; the real one does.
		created, ok := createdAs[*corev1.Pod](f.ctrl.created, "Pod", "ns", old.Name)
		require.True(t, ok)
		created.UID = "the-new-one"
		f.ctrl.onPodDelete(old)
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		assert.Equal(t, [3]int{1, 1, 1}, createCounts(f))
	})

	t.Run("events lost: created again once the memory ends", func(t *testing.T) {
		f, now := newCreated(t)
		*now = now.Add(createdTTL)
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		assert.Equal(t, [3]int{2, 2, 2}, createCounts(f), "each is tried again")
		require.Error(t, err, "and found existing, ours: the cache lags")
		assert.True(t, onlyCacheLag(err), err.Error())
		assert.Zero(t, f.ctrl.created.stale("Pod/ns/c-scheduler"))
	})
}

func TestJobClusterTheCacheLagsBehindIsNotCreatedAgain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, daskJob("j", corev1.RestartPolicyNever))
	f.writeStatusAtOnce()
	_, err := f.ctrl.syncJob(ctx, "ns/j")
	require.NoError(t, err)
	require.Len(t, f.actions("create", "daskclusters"), 1)
	requeue, err := f.ctrl.syncJob(ctx, "ns/j")
	require.NoError(t, err)
	assert.Len(t, f.actions("create", "daskclusters"), 1, "the cluster we created is not created again")
	assert.Positive(t, requeue)
	assert.LessOrEqual(t, requeue, createdTTL)

	// Its add event ends the memory: a cluster deleted later is made anew.
	jc := f.actions("create", "daskclusters")[0].(k8stesting.CreateAction).GetObject()
	f.ctrl.onCluster(jc, true)
	require.NoError(t, f.dask.Tracker().Delete(daskv1.SchemeGroupVersion.WithResource("daskclusters"), "ns", "j"))
	_, err = f.ctrl.syncJob(ctx, "ns/j")
	require.NoError(t, err)
	assert.Len(t, f.actions("create", "daskclusters"), 2)
}

func TestCreatedChildrenAreSweptOnceExpired(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newCreatedChildren(func() time.Time { return now })
	c.remember("Pod", &metav1.ObjectMeta{Namespace: "ns", Name: "lost"})
	now = now.Add(createdTTL)
	c.remember("Pod", &metav1.ObjectMeta{Namespace: "ns", Name: "new"})
	assert.Len(t, c.m, 1, "a child whose events were lost and that nobody asked for again is not kept")
}
