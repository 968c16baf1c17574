package cluster

import (
	"context"
	"errors"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Which of a cluster and its default group was scaled is decided from the
// count they last agreed on; the record the cluster keeps is written with its
// spec, so a follow that was cut short between the two objects can not make
// the cluster push its old count back onto a group a user scaled again.
func TestDefaultGroupScaledDirectlyIsFollowed(t *testing.T) {
	ctx := context.Background()
	withCounts := func(c, g int32, onCluster, onGroup string) (*daskv1.DaskCluster, *daskv1.DaskWorkerGroup) {
		cl := testobjects.Cluster("c")
		cl.ResourceVersion = "10"
		cl.Spec.Worker.Replicas = testobjects.Int32p(c)
		if onCluster != "" {
			cl.Annotations = map[string]string{resources.AnnotationSyncedReplicas: onCluster}
		}
		grp := resources.DefaultWorkerGroup(cl)
		grp.ResourceVersion = "11"
		grp.Spec.Worker.Replicas = testobjects.Int32p(g)
		grp.Annotations[resources.AnnotationSyncedReplicas] = onGroup
		return cl, grp
	}
	clusterPatches := func(f *fixture) []string {
		var out []string
		for _, a := range f.Actions("patch", "daskclusters") {
			out = append(out, string(a.(k8stesting.PatchAction).GetPatch()))
		}
		return out
	}
	groupUpdates := func(f *fixture) []*daskv1.DaskWorkerGroup {
		var out []*daskv1.DaskWorkerGroup
		for _, a := range f.Actions("update", "daskworkergroups") {
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
	c := testobjects.Cluster("c")
	c.Labels = map[string]string{"team": "new"}
	sched := resources.SchedulerPod(c)
	sched.Labels["team"] = "old"
	sched.UID = "uid-sched"
	sched.Status.Phase = corev1.PodFailed
	f := newFixture(t, c, sched)
	f.Kube.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("pods"), sched.Name, errors.New("no patch"))
	})
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Equal(t, []string{sched.Name}, controllertest.DeletedNames(f.Fixture, "pods"), "the failed scheduler is deleted, to be recreated")
}

// Issue 15, item 8: a create refused with AlreadyExists is told apart by
// reading the object live: our own object in a lagging cache is retried
// quietly; a foreign one (outside the label-filtered cache) is a conflict,
// reported once as a condition and a Warning event.
func TestAlreadyExistsIsReadLive(t *testing.T) {
	c := testobjects.Cluster("c")
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "c-scheduler", Namespace: "ns", UID: "someone-else"}}
	f := newFixture(t, c)
	require.NoError(t, f.Kube.Tracker().Add(foreign)) // in the API server, not in the cache
	ctx := context.Background()
	_, err := f.ctrl.syncCluster(ctx, "ns/c")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Pod c-scheduler already exists and is not controlled by this DaskCluster")
	var written *daskv1.DaskCluster
	for _, a := range f.Dask.Actions() {
		if a.GetSubresource() == "status" {
			written = a.(k8stesting.UpdateAction).GetObject().(*daskv1.DaskCluster)
		}
	}
	require.NotNil(t, written)
	cond := apimeta.FindStatusCondition(written.Status.Conditions, daskv1.ConditionResourcesCreated)
	require.NotNil(t, cond)
	assert.Equal(t, daskv1.ReasonNameConflict, cond.Reason)
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonNameConflict))

	// The next sync, with that condition already written, warns no more.
	c2 := c.DeepCopy()
	c2.Status = written.Status
	f.AddToCache(c2)
	_, err = f.ctrl.syncCluster(ctx, "ns/c")
	require.Error(t, err)
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonNameConflict), "a standing conflict is reported once")

	// Our own Pod that the cache has not seen yet is no conflict.
	own := resources.SchedulerPod(c)
	f = newFixture(t, c)
	require.NoError(t, f.Kube.Tracker().Add(own))
	_, err = f.ctrl.syncCluster(ctx, "ns/c")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not in the cache yet")
	assert.Zero(t, controllertest.CountEvents(f.Fixture, daskv1.ReasonNameConflict))
}
