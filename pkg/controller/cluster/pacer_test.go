package cluster

import (
	"context"
	"fmt"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// Issue 29, item 15: a new cluster's first status, Running as soon as its
// Service exists, is written at once, its Pods still starting: the
// KubeCluster client waits resource_timeout for Running (1 s in the
// Python operator's own test_cluster_crashloopbackoff), so no write is
// saved on what a waiting client reads.
func TestFirstRunningIsWrittenAtOnce(t *testing.T) {
	statusWrites := func(f *fixture) int { return controllertest.StatusWritesOf(f.Fixture, "daskclusters") }
	ctx := context.Background()

	t.Run("Running with nothing ready yet", func(t *testing.T) {
		f := newFixture(t, testobjects.Cluster("c"))
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		require.Len(t, f.Actions("create", "services"), 1)
		require.Equal(t, 1, statusWrites(f), "written in the sync that created the Service")
		assert.Equal(t, daskv1.DaskClusterRunning, controllertest.LastClusterStatus(t, f.Fixture).Phase)
	})

	t.Run("its group appearing with the workers it asks for is progress, paced", func(t *testing.T) {
		f := newFixture(t, testobjects.Cluster("c"))
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		require.Equal(t, 1, statusWrites(f))
		for _, res := range []string{"services", "pods", "daskworkergroups"} {
			f.AddToCache(f.Actions("create", res)[0].(k8stesting.CreateAction).GetObject())
		}
		f.AddToCache(controllertest.LastClusterStatusObject(t, f.Fixture))
		_, err = f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		assert.Equal(t, 1, statusWrites(f), "0/0 workers ready, then 0/1: no worker became unready")
	})

	t.Run("a child the cache lags behind is not created again", func(t *testing.T) {
		f := newFixture(t, testobjects.Cluster("c"))
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err)
		// The Service and Pod events came; the group's has not.
		for _, res := range []string{"services", "pods"} {
			f.AddToCache(f.Actions("create", res)[0].(k8stesting.CreateAction).GetObject())
		}
		_, err = f.ctrl.syncCluster(ctx, "ns/c")
		require.NoError(t, err, "the group we created stands in for the cache's copy")
		assert.Len(t, f.Actions("create", "daskworkergroups"), 1, "no second create")
	})

	t.Run("a failure is written at once", func(t *testing.T) {
		f := newFixture(t, testobjects.Cluster("c"))
		f.Kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, fmt.Errorf("the API server is unreachable")
		})
		_, err := f.ctrl.syncCluster(ctx, "ns/c")
		require.Error(t, err)
		assert.Equal(t, 1, statusWrites(f), "a condition users act on is not held")
	})
}
