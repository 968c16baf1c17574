package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// /healthz fails when a queue holds work without finishing any item.
func TestProgressTellsAStuckQueueFromAnIdleOne(t *testing.T) {
	var p progress
	now := time.Now()
	assert.Zero(t, p.stuckFor(now.Add(time.Hour)), "an idle queue is not stuck")

	p.started()
	assert.Greater(t, p.stuckFor(now.Add(10*time.Minute)), 9*time.Minute, "an item that never finishes")

	p.started()
	p.finished() // one of two finished: the queue moves
	assert.Less(t, p.stuckFor(time.Now()), time.Second)
	p.finished()
	assert.Zero(t, p.stuckFor(now.Add(time.Hour)))
}

func TestStalledNamesTheQueue(t *testing.T) {
	f := newFixture(t)
	assert.NoError(t, f.ctrl.Stalled(time.Minute))
	f.ctrl.groups.stats.started()
	f.ctrl.groups.stats.oldestStart = time.Now().Add(-10 * time.Minute)
	assert.ErrorContains(t, f.ctrl.Stalled(5*time.Minute), "daskworkergroup")
}
