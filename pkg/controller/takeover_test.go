package controller

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// What the Python operator makes of a cluster: a Deployment, its ReplicaSet
// and its Pod for the scheduler and for each worker, all labelled as ours.
type kopfObjects struct {
	deployments []*appsv1.Deployment
	replicaSets []*appsv1.ReplicaSet
	pods        []*corev1.Pod
}

func kopfCluster(c *daskv1.DaskCluster, g *daskv1.DaskWorkerGroup, workers ...string) kopfObjects {
	var out kopfObjects
	add := func(name string, labels map[string]string, owner metav1.OwnerReference) {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace, UID: types.UID("uid-d-" + name),
			Labels: labels, OwnerReferences: []metav1.OwnerReference{owner}}}
		rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-5d4f", Namespace: c.Namespace, UID: types.UID("uid-rs-" + name),
			Labels: labels, OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}}}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + "-5d4f-x7k2p", Namespace: c.Namespace, UID: types.UID("uid-p-" + name),
			Labels: labels, ResourceVersion: "1", OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.9",
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}}
		out.deployments = append(out.deployments, d)
		out.replicaSets = append(out.replicaSets, rs)
		out.pods = append(out.pods, p)
	}
	add(c.Name+"-scheduler", map[string]string{resources.LabelClusterName: c.Name, resources.LabelComponent: resources.ComponentScheduler},
		*metav1.NewControllerRef(c, daskv1.SchemeGroupVersion.WithKind("DaskCluster")))
	for _, w := range workers {
		add(g.Name+"-worker-"+w, resources.WorkerGroupSelector(c.Name, g.Name),
			*metav1.NewControllerRef(g, daskv1.SchemeGroupVersion.WithKind("DaskWorkerGroup")))
	}
	return out
}

func deletions(f *fixture, resource string) []k8stesting.DeleteActionImpl {
	var out []k8stesting.DeleteActionImpl
	for _, a := range f.actions("delete", resource) {
		out = append(out, a.(k8stesting.DeleteActionImpl))
	}
	return out
}

// Issue 14, part 3: a cluster the Python operator made is taken over without
// a second scheduler, an extra worker or a deleted Pod: its Deployments and
// then its ReplicaSets are removed orphaning their Pods, which the cluster
// and the group then adopt; nothing is created or deleted until then.
func TestTakeoverFromThePythonOperatorKeepsItsPods(t *testing.T) {
	c := cluster("c")
	g := group("c-default", "c", 2)
	g.OwnerReferences = []metav1.OwnerReference{resources.ControllerRefToCluster(c)}
	kopf := kopfCluster(c, g, "aaa", "bbb")
	f := newFixture(t, c, g)
	f.writeStatusAtOnce()
	for _, o := range kopf.deployments {
		f.addToCache(o)
	}
	for _, o := range kopf.replicaSets {
		f.addToCache(o)
	}
	for _, o := range kopf.pods {
		f.addToCache(o)
	}
	ctx := context.Background()
	noPodChanges := func(step string) {
		t.Helper()
		assert.Empty(t, f.actions("create", "pods"), "%s: no Pod is created", step)
		assert.Empty(t, f.actions("delete", "pods"), "%s: no Pod is deleted", step)
	}
	groupWaits := func(step string) {
		t.Helper()
		_, err := f.ctrl.syncWorkerGroup(ctx, "ns/c-default")
		require.NoError(t, err)
		noPodChanges(step + ", group")
		got, err := f.dask.KubernetesV1().DaskWorkerGroups("ns").Get(ctx, "c-default", metav1.GetOptions{})
		require.NoError(t, err)
		cond := apimeta.FindStatusCondition(got.Status.Conditions, daskv1.ConditionTakingOver)
		require.NotNil(t, cond, step)
		assert.Equal(t, metav1.ConditionTrue, cond.Status, step)
	}

	// 1. The Deployments go, orphaning their ReplicaSets.
	_, err := f.ctrl.syncCluster(ctx, "ns/c")
	require.NoError(t, err)
	dels := deletions(f, "deployments")
	require.Len(t, dels, 3)
	for _, d := range dels {
		require.NotNil(t, d.DeleteOptions.PropagationPolicy)
		assert.Equal(t, metav1.DeletePropagationOrphan, *d.DeleteOptions.PropagationPolicy, d.Name)
		require.NotNil(t, d.DeleteOptions.Preconditions)
	}
	assert.Empty(t, deletions(f, "replicasets"), "a ReplicaSet a Deployment still controls is left to the garbage collector")
	noPodChanges("Deployments removed")
	groupWaits("Deployments removed")
	got, err := f.dask.KubernetesV1().DaskClusters("ns").Get(ctx, "c", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, apimeta.FindStatusCondition(got.Status.Conditions, daskv1.ConditionTakingOver))
	assert.Equal(t, 3, countEvents(f, daskv1.ReasonTakingOver))
	f.clearActions()
	s := f.ctrl.caches.in("")
	svc, err := f.kube.CoreV1().Services("ns").Get(ctx, "c-scheduler", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, s.services.GetIndexer().Add(svc))

	// 2. The garbage collector orphaned the ReplicaSets: they go, orphaning
	// their Pods.
	for _, d := range kopf.deployments {
		require.NoError(t, s.deployments.GetIndexer().Delete(d))
	}
	for i, rs := range kopf.replicaSets {
		rs = rs.DeepCopy()
		rs.OwnerReferences = nil
		kopf.replicaSets[i] = rs
		require.NoError(t, s.replicaSets.GetIndexer().Update(rs))
	}
	_, err = f.ctrl.syncCluster(ctx, "ns/c")
	require.NoError(t, err)
	for _, d := range deletions(f, "replicasets") {
		assert.Equal(t, metav1.DeletePropagationOrphan, *d.DeleteOptions.PropagationPolicy, d.Name)
	}
	assert.Len(t, deletions(f, "replicasets"), 3)
	noPodChanges("ReplicaSets removed")
	groupWaits("ReplicaSets removed")
	f.clearActions()

	// 3. The ReplicaSets are gone from the cache before their Pods' update
	// (the garbage collector removed their owner references) arrives: the
	// Pods still name a ReplicaSet, and must still hold the cluster and the
	// group back, or the group would create workers beside the ones it is
	// about to adopt.
	for _, rs := range kopf.replicaSets {
		require.NoError(t, s.replicaSets.GetIndexer().Delete(rs))
	}
	_, err = f.ctrl.syncCluster(ctx, "ns/c")
	require.NoError(t, err)
	noPodChanges("ReplicaSets gone, Pods not yet orphaned")
	groupWaits("ReplicaSets gone, Pods not yet orphaned")
	f.clearActions()

	// 4. The Pods are orphans: the cluster adopts them.
	for i, p := range kopf.pods {
		p = p.DeepCopy() // the cache's copy must not change under it
		p.OwnerReferences = nil
		kopf.pods[i] = p
		require.NoError(t, s.pods.GetIndexer().Update(p))
		_, err := f.kube.CoreV1().Pods("ns").Update(ctx, p, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	f.clearActions()
	_, err = f.ctrl.syncCluster(ctx, "ns/c")
	require.NoError(t, err)
	noPodChanges("Pods adopted")
	require.Len(t, f.actions("patch", "pods"), 3)
	owners := map[string]string{}
	for _, p := range kopf.pods {
		live, err := f.kube.CoreV1().Pods("ns").Get(ctx, p.Name, metav1.GetOptions{})
		require.NoError(t, err)
		ref := metav1.GetControllerOf(live)
		require.NotNil(t, ref, p.Name)
		owners[p.Name] = ref.Kind + "/" + ref.Name
		assert.Equal(t, "python-operator", live.Annotations[resources.AnnotationAdoptedFrom])
		require.NoError(t, s.pods.GetIndexer().Update(live))
	}
	assert.Equal(t, map[string]string{
		"c-scheduler-5d4f-x7k2p":          "DaskCluster/c",
		"c-default-worker-aaa-5d4f-x7k2p": "DaskWorkerGroup/c-default",
		"c-default-worker-bbb-5d4f-x7k2p": "DaskWorkerGroup/c-default",
	}, owners)
	assert.Equal(t, 1, countEvents(f, daskv1.ReasonAdoptedSchedulerWithoutAPI), "the adopted scheduler serves no /api/v1: users are told")
	f.clearActions()

	// 5. Done: the adopted scheduler is the cluster's, the group has its two
	// workers; nothing is created, and the conditions go.
	_, err = f.ctrl.syncCluster(ctx, "ns/c")
	require.NoError(t, err)
	noPodChanges("after the takeover, cluster")
	got, err = f.dask.KubernetesV1().DaskClusters("ns").Get(ctx, "c", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Nil(t, apimeta.FindStatusCondition(got.Status.Conditions, daskv1.ConditionTakingOver))
	ready := apimeta.FindStatusCondition(got.Status.Conditions, daskv1.ConditionSchedulerReady)
	require.NotNil(t, ready)
	assert.Equal(t, metav1.ConditionTrue, ready.Status, ready.Message)
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/c-default")
	require.NoError(t, err)
	noPodChanges("after the takeover, group")
	gotGroup, err := f.dask.KubernetesV1().DaskWorkerGroups("ns").Get(ctx, "c-default", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Nil(t, apimeta.FindStatusCondition(gotGroup.Status.Conditions, daskv1.ConditionTakingOver))
	assert.Equal(t, int32(2), gotGroup.Status.ReadyReplicas)

	// 6. When the adopted scheduler ends, it is replaced by one of ours.
	sched := kopf.pods[0].DeepCopy()
	sched.Status.Phase = corev1.PodFailed
	live, err := f.kube.CoreV1().Pods("ns").Get(ctx, sched.Name, metav1.GetOptions{})
	require.NoError(t, err)
	sched.OwnerReferences, sched.Annotations = live.OwnerReferences, live.Annotations
	require.NoError(t, s.pods.GetIndexer().Update(sched))
	_, err = f.ctrl.syncCluster(ctx, "ns/c")
	require.NoError(t, err)
	require.Len(t, deletions(f, "pods"), 1, "the ended adopted scheduler is deleted")
	require.NoError(t, s.pods.GetIndexer().Delete(sched))
	_, err = f.ctrl.syncCluster(ctx, "ns/c")
	require.NoError(t, err)
	creates := f.actions("create", "pods")
	require.Len(t, creates, 1)
	assert.Equal(t, "c-scheduler", creates[0].(k8stesting.CreateAction).GetObject().(*corev1.Pod).Name)
}

// A Deployment that carries a cluster's label but belongs to no Dask object
// (a user's own) is never touched and does not hold the cluster back.
func TestTakeoverLeavesForeignDeploymentsAlone(t *testing.T) {
	c := cluster("c")
	f := newFixture(t, c)
	f.addToCache(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "ns", UID: "uid-mine",
		Labels: map[string]string{resources.LabelClusterName: "c", resources.LabelComponent: resources.ComponentScheduler}}})
	_, err := f.ctrl.syncCluster(context.Background(), "ns/c")
	require.NoError(t, err)
	assert.Empty(t, deletions(f, "deployments"))
	creates := f.actions("create", "pods")
	require.Len(t, creates, 1, "the scheduler Pod is created as usual")
}

// Issue 29, item 8: a ReplicaSet whose Pod template carries a cluster's
// labels, controlled by a user's own Deployment that is not in the
// label-filtered cache, is not the Python operator's: read live, the
// Deployment lives, so the cluster gets its scheduler; nothing is deleted.
// One whose Deployment is gone (the orphaning under way) still holds the
// takeover back.
func TestTakeoverIsNotBlockedByAUsersDeployment(t *testing.T) {
	c := cluster("c")
	labels := map[string]string{resources.LabelClusterName: "c", resources.LabelComponent: resources.ComponentScheduler}
	users := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "ns", UID: "uid-mine"}} // no Dask labels itself
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "mine-5d4f", Namespace: "ns", UID: "uid-rs-mine", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(users, appsv1.SchemeGroupVersion.WithKind("Deployment"))}}}
	f := newFixture(t, c, rs)
	require.NoError(t, f.kube.Tracker().Add(users)) // live, not in the cache
	_, err := f.ctrl.syncCluster(context.Background(), "ns/c")
	require.NoError(t, err)
	require.Len(t, f.actions("create", "pods"), 1, "the scheduler Pod is created")
	assert.Empty(t, deletions(f, "replicasets"))
	assert.Empty(t, deletions(f, "deployments"))

	// Its Deployment gone: the ReplicaSet is being orphaned; the scheduler waits.
	f = newFixture(t, c, rs)
	_, err = f.ctrl.syncCluster(context.Background(), "ns/c")
	require.NoError(t, err)
	assert.Empty(t, f.actions("create", "pods"), "no second scheduler while the takeover is under way")
}
