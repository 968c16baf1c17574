package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 30: one clock. Scheduler-call results and expectations keep the
// controller's time, so that a test (or anything that sets the clock) sees
// every part agree.
func TestEveryPartKeepsTheControllersClock(t *testing.T) {
	f := newFixture(t, cluster("c"))
	now := time.Unix(1_800_000_000, 0)
	f.ctrl.now = func() time.Time { return now }

	done := make(chan struct{})
	require.True(t, f.ctrl.idleChecks.start("ns/c", func() (*time.Time, error) { return nil, nil }, func() { close(done) }))
	<-done
	res, ok := f.ctrl.idleChecks.peek("ns/c")
	require.True(t, ok)
	assert.Equal(t, now, res.at)

	f.ctrl.expect.ExpectCreations("ns/g", "g-a")
	assert.False(t, f.ctrl.expect.Satisfied("ns/g"))
	now = now.Add(10 * time.Minute) // past the expectations' TTL by the controller's clock only
	assert.True(t, f.ctrl.expect.Satisfied("ns/g"), "expired by the controller's clock")
}
