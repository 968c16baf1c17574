package workergroup

import (
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With a batch size, one sync creates at most that many Pods; with a
// delay, the next batch waits for it.
func TestWorkerBatchesArePaced(t *testing.T) {
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 10)
	f := newFixture(t, c, g)
	f.WriteStatusAtOnce()
	f.ctrl.Opts.MaxPodOpsPerSync = 4
	f.ctrl.Opts.WorkerBatchDelay = time.Minute
	requeue, err := f.ctrl.syncWorkerGroup(t.Context(), "ns/g")
	require.NoError(t, err)
	assert.Len(t, f.Actions("create", "pods"), 4)
	assert.Equal(t, time.Minute, requeue)

	f.ClearActions()
	f.ctrl.expect.Forget("ns/g") // as if the cache had caught up
	requeue, err = f.ctrl.syncWorkerGroup(t.Context(), "ns/g")
	require.NoError(t, err)
	assert.Empty(t, f.Actions("create", "pods"), "the next batch waits for the delay")
	assert.Greater(t, requeue, 50*time.Second)
}
