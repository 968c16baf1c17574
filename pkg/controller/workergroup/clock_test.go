package workergroup

import (
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 30: one clock. Scheduler-call results and expectations keep the
// controller's time, so that a test (or anything that sets the clock) sees
// every part agree.
func TestEveryPartKeepsTheControllersClock(t *testing.T) {
	f := newFixture(t, testobjects.Cluster("c"))
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.Now = func() time.Time { return now }

	done := make(chan struct{})
	require.True(t, f.ctrl.retirements.Start("ns/g", func() (retirement, error) { return retirement{}, nil }, func() { close(done) }))
	<-done
	res, ok := f.ctrl.retirements.Peek("ns/g")
	require.True(t, ok)
	assert.Equal(t, now, res.At)

	f.ctrl.expect.ExpectCreations("ns/g", "g-a")
	assert.False(t, f.ctrl.expect.Satisfied("ns/g"))
	now = now.Add(10 * time.Minute) // past the expectations' TTL by the controller's clock only
	assert.True(t, f.ctrl.expect.Satisfied("ns/g"), "expired by the controller's clock")
}
