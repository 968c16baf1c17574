package manager

import (
	"context"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Issue 14, part 3: a cluster the Python operator made is taken over without
// a second scheduler, an extra worker or a deleted Pod: its Deployments and
// then its ReplicaSets are removed orphaning their Pods, which the cluster
// and the group then adopt; nothing is created or deleted until then.
func TestTakeoverFromThePythonOperatorKeepsItsPods(t *testing.T) {
	c := testobjects.Cluster("c")
	g := testobjects.Group("c-default", "c", 2)
	g.OwnerReferences = []metav1.OwnerReference{resources.ControllerRefToCluster(c)}
	kopf := testobjects.KopfCluster(c, g, "aaa", "bbb")
	f := newFixture(t, c, g)
	f.WriteStatusAtOnce()
	for _, o := range kopf.Deployments {
		f.AddToCache(o)
	}
	for _, o := range kopf.ReplicaSets {
		f.AddToCache(o)
	}
	for _, o := range kopf.Pods {
		f.AddToCache(o)
	}
	ctx := context.Background()
	noPodChanges := func(step string) {
		t.Helper()
		assert.Empty(t, f.Actions("create", "pods"), "%s: no Pod is created", step)
		assert.Empty(t, f.Actions("delete", "pods"), "%s: no Pod is deleted", step)
	}
	groupWaits := func(step string) {
		t.Helper()
		_, err := f.ctrl.groups.Sync(ctx, "ns/c-default")
		require.NoError(t, err)
		noPodChanges(step + ", group")
		got, err := f.Dask.KubernetesV1().DaskWorkerGroups("ns").Get(ctx, "c-default", metav1.GetOptions{})
		require.NoError(t, err)
		cond := apimeta.FindStatusCondition(got.Status.Conditions, daskv1.ConditionTakingOver)
		require.NotNil(t, cond, step)
		assert.Equal(t, metav1.ConditionTrue, cond.Status, step)
	}

	// 1. The Deployments go, orphaning their ReplicaSets.
	_, err := f.ctrl.clusters.Sync(ctx, "ns/c")
	require.NoError(t, err)
	dels := controllertest.Deletions(f.Fixture, "deployments")
	require.Len(t, dels, 3)
	for _, d := range dels {
		require.NotNil(t, d.DeleteOptions.PropagationPolicy)
		assert.Equal(t, metav1.DeletePropagationOrphan, *d.DeleteOptions.PropagationPolicy, d.Name)
		require.NotNil(t, d.DeleteOptions.Preconditions)
	}
	assert.Empty(t, controllertest.Deletions(f.Fixture, "replicasets"), "a ReplicaSet a Deployment still controls is left to the garbage collector")
	noPodChanges("Deployments removed")
	groupWaits("Deployments removed")
	got, err := f.Dask.KubernetesV1().DaskClusters("ns").Get(ctx, "c", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, apimeta.FindStatusCondition(got.Status.Conditions, daskv1.ConditionTakingOver))
	assert.Equal(t, 3, controllertest.CountEvents(f.Fixture, daskv1.ReasonTakingOver))
	f.ClearActions()
	s := f.ctrl.base.Caches.In("")
	svc, err := f.Kube.CoreV1().Services("ns").Get(ctx, "c-scheduler", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, s.Services.GetIndexer().Add(svc))

	// 2. The garbage collector orphaned the ReplicaSets: they go, orphaning
	// their Pods.
	for _, d := range kopf.Deployments {
		require.NoError(t, s.Deployments.GetIndexer().Delete(d))
	}
	for i, rs := range kopf.ReplicaSets {
		rs = rs.DeepCopy()
		rs.OwnerReferences = nil
		kopf.ReplicaSets[i] = rs
		require.NoError(t, s.ReplicaSets.GetIndexer().Update(rs))
	}
	_, err = f.ctrl.clusters.Sync(ctx, "ns/c")
	require.NoError(t, err)
	for _, d := range controllertest.Deletions(f.Fixture, "replicasets") {
		assert.Equal(t, metav1.DeletePropagationOrphan, *d.DeleteOptions.PropagationPolicy, d.Name)
	}
	assert.Len(t, controllertest.Deletions(f.Fixture, "replicasets"), 3)
	noPodChanges("ReplicaSets removed")
	groupWaits("ReplicaSets removed")
	f.ClearActions()

	// 3. The ReplicaSets are gone from the cache before their Pods' update
	// (the garbage collector removed their owner references) arrives: the
	// Pods still name a ReplicaSet, and must still hold the cluster and the
	// group back, or the group would create workers beside the ones it is
	// about to adopt.
	for _, rs := range kopf.ReplicaSets {
		require.NoError(t, s.ReplicaSets.GetIndexer().Delete(rs))
	}
	_, err = f.ctrl.clusters.Sync(ctx, "ns/c")
	require.NoError(t, err)
	noPodChanges("ReplicaSets gone, Pods not yet orphaned")
	groupWaits("ReplicaSets gone, Pods not yet orphaned")
	f.ClearActions()

	// 4. The Pods are orphans: the cluster adopts them.
	for i, p := range kopf.Pods {
		p = p.DeepCopy() // the cache's copy must not change under it
		p.OwnerReferences = nil
		kopf.Pods[i] = p
		require.NoError(t, s.Pods.GetIndexer().Update(p))
		_, err := f.Kube.CoreV1().Pods("ns").Update(ctx, p, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	f.ClearActions()
	_, err = f.ctrl.clusters.Sync(ctx, "ns/c")
	require.NoError(t, err)
	noPodChanges("Pods adopted")
	require.Len(t, f.Actions("patch", "pods"), 3)
	owners := map[string]string{}
	for _, p := range kopf.Pods {
		live, err := f.Kube.CoreV1().Pods("ns").Get(ctx, p.Name, metav1.GetOptions{})
		require.NoError(t, err)
		ref := metav1.GetControllerOf(live)
		require.NotNil(t, ref, p.Name)
		owners[p.Name] = ref.Kind + "/" + ref.Name
		assert.Equal(t, "python-operator", live.Annotations[resources.AnnotationAdoptedFrom])
		require.NoError(t, s.Pods.GetIndexer().Update(live))
	}
	assert.Equal(t, map[string]string{
		"c-scheduler-5d4f-x7k2p":          "DaskCluster/c",
		"c-default-worker-aaa-5d4f-x7k2p": "DaskWorkerGroup/c-default",
		"c-default-worker-bbb-5d4f-x7k2p": "DaskWorkerGroup/c-default",
	}, owners)
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonAdoptedSchedulerWithoutAPI), "the adopted scheduler serves no /api/v1: users are told")
	f.ClearActions()

	// 5. Done: the adopted scheduler is the cluster's, the group has its two
	// workers; nothing is created, and the conditions go.
	_, err = f.ctrl.clusters.Sync(ctx, "ns/c")
	require.NoError(t, err)
	noPodChanges("after the takeover, cluster")
	got, err = f.Dask.KubernetesV1().DaskClusters("ns").Get(ctx, "c", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Nil(t, apimeta.FindStatusCondition(got.Status.Conditions, daskv1.ConditionTakingOver))
	ready := apimeta.FindStatusCondition(got.Status.Conditions, daskv1.ConditionSchedulerReady)
	require.NotNil(t, ready)
	assert.Equal(t, metav1.ConditionTrue, ready.Status, ready.Message)
	_, err = f.ctrl.groups.Sync(ctx, "ns/c-default")
	require.NoError(t, err)
	noPodChanges("after the takeover, group")
	gotGroup, err := f.Dask.KubernetesV1().DaskWorkerGroups("ns").Get(ctx, "c-default", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Nil(t, apimeta.FindStatusCondition(gotGroup.Status.Conditions, daskv1.ConditionTakingOver))
	assert.Equal(t, int32(2), gotGroup.Status.ReadyReplicas)

	// 6. When the adopted scheduler ends, it is replaced by one of ours.
	sched := kopf.Pods[0].DeepCopy()
	sched.Status.Phase = corev1.PodFailed
	live, err := f.Kube.CoreV1().Pods("ns").Get(ctx, sched.Name, metav1.GetOptions{})
	require.NoError(t, err)
	sched.OwnerReferences, sched.Annotations = live.OwnerReferences, live.Annotations
	require.NoError(t, s.Pods.GetIndexer().Update(sched))
	_, err = f.ctrl.clusters.Sync(ctx, "ns/c")
	require.NoError(t, err)
	require.Len(t, controllertest.Deletions(f.Fixture, "pods"), 1, "the ended adopted scheduler is deleted")
	require.NoError(t, s.Pods.GetIndexer().Delete(sched))
	_, err = f.ctrl.clusters.Sync(ctx, "ns/c")
	require.NoError(t, err)
	creates := f.Actions("create", "pods")
	require.Len(t, creates, 1)
	assert.Equal(t, "c-scheduler", creates[0].(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name)
}
