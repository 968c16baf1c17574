package cluster

import (
	"context"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dask-operator/dask-operator/pkg/resources"
)

// A Deployment that carries a cluster's label but belongs to no Dask object
// (a user's own) is never touched and does not hold the cluster back.
func TestTakeoverLeavesForeignDeploymentsAlone(t *testing.T) {
	c := testobjects.Cluster("c")
	f := newFixture(t, c)
	f.AddToCache(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "ns", UID: "uid-mine",
		Labels: map[string]string{resources.LabelClusterName: "c", resources.LabelComponent: resources.ComponentScheduler}}})
	_, err := f.ctrl.syncCluster(context.Background(), "ns/c")
	require.NoError(t, err)
	assert.Empty(t, controllertest.Deletions(f.Fixture, "deployments"))
	creates := f.Actions("create", "pods")
	require.Len(t, creates, 1, "the scheduler Pod is created as usual")
}

// Issue 29, item 8: a ReplicaSet whose Pod template carries a cluster's
// labels, controlled by a user's own Deployment that is not in the
// label-filtered cache, is not the Python operator's: read live, the
// Deployment lives, so the cluster gets its scheduler; nothing is deleted.
// One whose Deployment is gone (the orphaning under way) still holds the
// takeover back.
func TestTakeoverIsNotBlockedByAUsersDeployment(t *testing.T) {
	c := testobjects.Cluster("c")
	labels := map[string]string{resources.LabelClusterName: "c", resources.LabelComponent: resources.ComponentScheduler}
	users := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: "ns", UID: "uid-mine"}} // no Dask labels itself
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "mine-5d4f", Namespace: "ns", UID: "uid-rs-mine", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(users, appsv1.SchemeGroupVersion.WithKind("Deployment"))}}}
	f := newFixture(t, c, rs)
	require.NoError(t, f.Kube.Tracker().Add(users)) // live, not in the cache
	_, err := f.ctrl.syncCluster(context.Background(), "ns/c")
	require.NoError(t, err)
	require.Len(t, f.Actions("create", "pods"), 1, "the scheduler Pod is created")
	assert.Empty(t, controllertest.Deletions(f.Fixture, "replicasets"))
	assert.Empty(t, controllertest.Deletions(f.Fixture, "deployments"))

	// Its Deployment gone: the ReplicaSet is being orphaned; the scheduler waits.
	f = newFixture(t, c, rs)
	_, err = f.ctrl.syncCluster(context.Background(), "ns/c")
	require.NoError(t, err)
	assert.Empty(t, f.Actions("create", "pods"), "no second scheduler while the takeover is under way")
}
