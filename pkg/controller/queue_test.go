package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
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

// Issue 15, item 9: once a queue is stopped (SIGTERM), the keys it still
// holds are not synced; the sync in flight finishes with a live context.
func TestStoppedQueueSyncsNoQueuedKey(t *testing.T) {
	var mu sync.Mutex
	var synced []string
	var liveWhileFinishing bool
	inA, release := make(chan struct{}), make(chan struct{})
	q := newQueue("test-stop", func(ctx context.Context, key string) (time.Duration, error) {
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
	q.add("a")
	done := make(chan struct{})
	go func() { q.run(context.Background(), 1); close(done) }()
	<-inA
	q.add("b")
	q.add("c")
	q.stop()
	close(release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the queue's workers did not return")
	}
	assert.Equal(t, []string{"a"}, synced)
	assert.True(t, liveWhileFinishing)
}

// Issue 15, item 9: when the lease is lost, the workers' context, which
// every background scheduler call descends from, ends at once.
func TestAbortEndsEverySchedulerCall(t *testing.T) {
	f := newFixture(t)
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	lease, lose := context.WithCancel(context.Background())
	f.ctrl.Start(stop)
	done := make(chan error, 1)
	go func() { done <- f.ctrl.RunWorkersUntil(stop, lease, 0) }()
	require.Eventually(t, func() bool { return f.ctrl.schedulerContext() != context.Background() && f.ctrl.HasSynced() }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // the workers start once the caches are synced
	sched := f.ctrl.schedulerContext()
	assert.NoError(t, sched.Err())
	lose()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the workers did not stop when the lease was lost")
	}
	assert.Error(t, sched.Err(), "scheduler calls are cancelled")
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

// Issue 19: events go through a client of their own (Options.Events), whose
// rate limit is not the one Pod creations wait on.
func TestEventsGoThroughTheirOwnClient(t *testing.T) {
	f := newFixture(t)
	events := kubefake.NewSimpleClientset()
	f.ctrl.opts.Events = events.CoreV1()
	f.ctrl.recorder = f.ctrl.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "dask-operator"})
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.ctrl.Start(stop)
	done := make(chan error, 1)
	go func() { done <- f.ctrl.RunWorkers(stop, 0) }()
	c := cluster("c")
	require.Eventually(t, func() bool {
		f.ctrl.recorder.Event(c, corev1.EventTypeNormal, "Test", "through the events client")
		list, err := events.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
		return err == nil && len(list.Items) > 0
	}, 5*time.Second, 50*time.Millisecond)
	list, err := f.kube.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list.Items, "nothing through the client that creates Pods")
	cancel()
	<-done
}
