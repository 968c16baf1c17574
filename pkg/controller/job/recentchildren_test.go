package job

import (
	"context"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

func TestJobClusterTheCacheLagsBehindIsNotCreatedAgain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, testobjects.DaskJob("j", corev1.RestartPolicyNever))
	f.WriteStatusAtOnce()
	_, err := f.ctrl.syncJob(ctx, "ns/j")
	require.NoError(t, err)
	require.Len(t, f.Actions("create", "daskclusters"), 1)
	requeue, err := f.ctrl.syncJob(ctx, "ns/j")
	require.NoError(t, err)
	assert.Len(t, f.Actions("create", "daskclusters"), 1, "the cluster we created is not created again")
	assert.Positive(t, requeue)
	assert.LessOrEqual(t, requeue, controller.CreatedTTL)

	// Its add event ends the memory: a cluster deleted later is made anew.
	jc := f.Actions("create", "daskclusters")[0].(k8stesting.CreateAction).GetObject()
	f.ctrl.onCluster(jc)
	require.NoError(t, f.Dask.Tracker().Delete(daskv1.SchemeGroupVersion.WithResource("daskclusters"), "ns", "j"))
	_, err = f.ctrl.syncJob(ctx, "ns/j")
	require.NoError(t, err)
	assert.Len(t, f.Actions("create", "daskclusters"), 2)
}
