package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Python operator's worker allocation variables keep working.
func TestOptionsFromTheIncumbentsEnvironment(t *testing.T) {
	t.Setenv(EnvBatchSize, "20")
	t.Setenv(EnvBatchDelay, "1.5")
	var o Options
	require.NoError(t, o.OptionsFromEnv())
	o.defaults()
	assert.Equal(t, 20, o.MaxPodOpsPerSync)
	assert.Equal(t, 1500*time.Millisecond, o.WorkerBatchDelay)

	t.Setenv(EnvBatchSize, "5000")
	o = Options{}
	require.NoError(t, o.OptionsFromEnv())
	o.defaults()
	assert.Equal(t, 500, o.MaxPodOpsPerSync, "never more than 500 per sync")

	t.Setenv(EnvBatchSize, "many")
	assert.ErrorContains(t, (&Options{}).OptionsFromEnv(), EnvBatchSize)
	t.Setenv(EnvBatchSize, "")
	t.Setenv(EnvBatchDelay, "-1")
	assert.ErrorContains(t, (&Options{}).OptionsFromEnv(), EnvBatchDelay)
}

// With a batch size, one sync creates at most that many Pods; with a
// delay, the next batch waits for it.
func TestWorkerBatchesArePaced(t *testing.T) {
	c, g := cluster("c"), group("g", "c", 10)
	f := newFixture(t, c, g)
	f.writeStatusAtOnce()
	f.ctrl.opts.MaxPodOpsPerSync = 4
	f.ctrl.opts.WorkerBatchDelay = time.Minute
	requeue, err := f.ctrl.syncWorkerGroup(t.Context(), "ns/g")
	require.NoError(t, err)
	assert.Len(t, f.actions("create", "pods"), 4)
	assert.Equal(t, time.Minute, requeue)

	f.clearActions()
	f.ctrl.expect.Forget("ns/g") // as if the cache had caught up
	requeue, err = f.ctrl.syncWorkerGroup(t.Context(), "ns/g")
	require.NoError(t, err)
	assert.Empty(t, f.actions("create", "pods"), "the next batch waits for the delay")
	assert.Greater(t, requeue, 50*time.Second)
}
