package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// /healthz fails when a queue holds work without finishing any item.
func TestProgressTellsAStuckQueueFromAnIdleOne(t *testing.T) {
	var p progress
	now := time.Now()
	assert.Zero(t, p.StuckFor(now.Add(time.Hour)), "an idle queue is not stuck")

	p.started()
	assert.Greater(t, p.StuckFor(now.Add(10*time.Minute)), 9*time.Minute, "an item that never finishes")

	p.started()
	p.finished() // one of two finished: the queue moves
	assert.Less(t, p.StuckFor(time.Now()), time.Second)
	p.finished()
	assert.Zero(t, p.StuckFor(now.Add(time.Hour)))
}

// Issue 15, item 9: once a queue is stopped (SIGTERM), the keys it still
// holds are not synced; the sync in flight finishes with a live context.
func TestStoppedQueueSyncsNoQueuedKey(t *testing.T) {
	var mu sync.Mutex
	var synced []string
	var liveWhileFinishing bool
	inA, release := make(chan struct{}), make(chan struct{})
	q := NewQueue("test-stop", func(ctx context.Context, key string) (time.Duration, error) {
		mu.Lock()
		synced = append(synced, key)
		mu.Unlock()
		if key == "a" {
			close(inA)
			<-release
			liveWhileFinishing = ctx.Err() == nil
		}
		return 0, nil
	})
	q.Add("a")
	done := make(chan struct{})
	go func() { q.Run(context.Background(), 1); close(done) }()
	<-inA
	q.Add("b")
	q.Add("c")
	q.Stop()
	close(release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the queue's workers did not return")
	}
	assert.Equal(t, []string{"a"}, synced)
	assert.True(t, liveWhileFinishing)
}

// A key that failed many times (all through an API server outage) is
// retried within maxRetryDelay, not after client-go's default 1000 s.
func TestRetryBackoffIsCapped(t *testing.T) {
	rl := newRateLimiter()
	var last time.Duration
	for range 30 {
		last = rl.When("ns/x")
	}
	assert.Equal(t, maxRetryDelay, last)
	assert.Less(t, rl.When("ns/other"), 100*time.Millisecond, "another key starts afresh")
	rl.Forget("ns/x")
	assert.Less(t, rl.When("ns/x"), 100*time.Millisecond, "a key that synced starts afresh")
}

func TestStalledNamesTheQueue(t *testing.T) {
	idle, groups := NewQueue("daskcluster", nil), NewQueue("daskworkergroup", nil)
	queues := []*Queue{idle, groups}
	assert.NoError(t, Stalled(queues, time.Minute))
	groups.Stats.started()
	groups.Stats.oldestStart = time.Now().Add(-10 * time.Minute)
	assert.ErrorContains(t, Stalled(queues, 5*time.Minute), "daskworkergroup")
}
