package workergroup

import (
	"context"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Issue 15, item 11: a group controlled by a deleted cluster does not join
// a new cluster that reuses the name; one of a cluster being deleted says so.
func TestGroupFollowsOnlyItsOwnCluster(t *testing.T) {
	c := testobjects.Cluster("c")
	g := testobjects.Group("g", "c", 2)
	g.OwnerReferences = []metav1.OwnerReference{resources.ControllerRefToCluster(c)}
	g.OwnerReferences[0].UID = "uid-of-the-deleted-c"
	f := newFixture(t, c, g)
	_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	assert.Empty(t, f.Actions("create", "pods"))
	cond := apimeta.FindStatusCondition(lastGroupStatus(t, f).Conditions, daskv1.ConditionClusterFound)
	require.NotNil(t, cond)
	assert.Equal(t, "OwnerDeleted", cond.Reason)

	deleting := testobjects.Cluster("c")
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	f = newFixture(t, deleting, testobjects.Group("g", "c", 2))
	_, err = f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	assert.Empty(t, f.Actions("create", "pods"))
	cond = apimeta.FindStatusCondition(lastGroupStatus(t, f).Conditions, daskv1.ConditionClusterFound)
	require.NotNil(t, cond)
	assert.Equal(t, "ClusterDeleting", cond.Reason, "a cluster being deleted is not 'not found'")
}
