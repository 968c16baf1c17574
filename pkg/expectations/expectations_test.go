package expectations

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSatisfiedOnlyOnceEveryWriteIsObserved(t *testing.T) {
	e := New(time.Minute)
	assert.True(t, e.Satisfied("ns/g"), "nothing expected yet")

	e.ExpectCreations("ns/g", "a", "b")
	e.ExpectDeletions("ns/g", "c")
	assert.False(t, e.Satisfied("ns/g"))

	e.CreationObserved("ns/g", "a")
	e.CreationObserved("ns/g", "a") // a duplicate event changes nothing
	e.DeletionObserved("ns/g", "c")
	assert.False(t, e.Satisfied("ns/g"), "b is still expected")
	c, d := e.Pending("ns/g")
	assert.Equal(t, 1, c)
	assert.Equal(t, 0, d)

	e.CreationObserved("ns/g", "unrelated")
	assert.False(t, e.Satisfied("ns/g"), "an unrelated pod does not count")

	e.CreationObserved("ns/g", "b")
	assert.True(t, e.Satisfied("ns/g"))
	assert.True(t, e.Satisfied("ns/other"), "keys are independent")
}

func TestExpectationsExpire(t *testing.T) {
	now := time.Unix(1000, 0)
	e := New(5 * time.Minute)
	e.SetClock(func() time.Time { return now })
	e.ExpectCreations("ns/g", "a")
	now = now.Add(4 * time.Minute)
	assert.False(t, e.Satisfied("ns/g"))
	now = now.Add(2 * time.Minute)
	assert.True(t, e.Satisfied("ns/g"), "a lost event must not wedge the controller")
	c, _ := e.Pending("ns/g")
	assert.Zero(t, c, "an expired entry is dropped")
}

func TestForget(t *testing.T) {
	e := New(time.Minute)
	e.ExpectDeletions("ns/g", "a")
	e.Forget("ns/g")
	assert.True(t, e.Satisfied("ns/g"))
}

func TestRemainingIsTheTimeLeftToWait(t *testing.T) {
	now := time.Unix(1_000, 0)
	e := New(time.Minute)
	e.SetClock(func() time.Time { return now })
	assert.Zero(t, e.Remaining("ns/g"), "nothing expected")
	e.ExpectCreations("ns/g", "a")
	now = now.Add(20 * time.Second)
	assert.InDelta(t, 40*time.Second, e.Remaining("ns/g"), float64(100*time.Millisecond))
	now = now.Add(time.Minute)
	assert.Greater(t, e.Remaining("ns/g"), time.Duration(0), "expired but not yet dropped: sync at once")
	assert.True(t, e.Satisfied("ns/g"))
	e.ExpectDeletions("ns/g", "b")
	e.DeletionObserved("ns/g", "b")
	assert.Zero(t, e.Remaining("ns/g"), "met")
}
