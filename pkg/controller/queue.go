package controller

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/dask-operator/dask-operator/pkg/metrics"
)

// syncFunc reconciles one object. A positive duration asks for another sync
// after that long even when nothing changes (polling a scheduler, deadlines).
type syncFunc func(ctx context.Context, key string) (time.Duration, error)

// Queue is a rate-limited workqueue of object keys ("namespace/name") with
// the sync function its workers run.
type Queue struct {
	Name    string
	q       workqueue.TypedRateLimitingInterface[string]
	sync    syncFunc
	Stats   *progress
	stopped atomic.Bool
}

// maxRetryDelay caps a failing key's exponential backoff. client-go's
// default grows to 1000 s: during a 20 s API server outage a key fails a
// dozen times and then waits as long again after the server is back. The
// overall rate of retries stays bounded by the token bucket (10/s, bursts
// of 100), as in client-go's default.
const maxRetryDelay = 15 * time.Second

// newRateLimiter is client-go's DefaultTypedControllerRateLimiter with the
// per-key backoff capped at maxRetryDelay.
func newRateLimiter() workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, maxRetryDelay),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

func NewQueue(name string, sync syncFunc) *Queue {
	return &Queue{
		Name: name,
		q: workqueue.NewTypedRateLimitingQueueWithConfig(
			newRateLimiter(),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name},
		),
		sync:  sync,
		Stats: &progress{},
	}
}

func (q *Queue) Add(key string) { q.q.Add(key) }

// Run starts workers and blocks until the queue is stopped and the workers
// have finished the syncs they are in. Syncs get ctx.
func (q *Queue) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q.next(ctx) {
			}
		}()
	}
	wg.Wait()
}

// Stop makes the workers return once their current sync is done: keys still
// queued are not synced (the next leader or process does that).
func (q *Queue) Stop() {
	q.stopped.Store(true)
	q.q.ShutDown()
}

func (q *Queue) next(ctx context.Context) bool {
	key, quit := q.q.Get()
	if quit {
		return false
	}
	defer q.q.Done(key)
	if q.stopped.Load() || ctx.Err() != nil {
		return true // the queue hands out what it held until it is empty
	}
	q.Stats.started()
	defer q.Stats.finished()

	start := time.Now()
	after, err := q.sync(ctx, key)
	metrics.SyncDuration.WithLabelValues(q.Name, metrics.ResultLabel(err)).Observe(time.Since(start).Seconds())
	if err != nil {
		if apierrors.IsConflict(err) {
			// Our cache lagged a write; the retry sees the newer object.
			klog.V(2).InfoS("Conflict, will retry", "controller", q.Name, "key", key, "err", err)
		} else {
			klog.ErrorS(err, "Sync failed, will retry", "controller", q.Name, "key", key)
		}
		q.q.AddRateLimited(key)
		return true
	}
	q.q.Forget(key)
	if after > 0 {
		q.q.AddAfter(key, after)
	}
	return true
}

// progress records when workers last finished an item, so that a liveness
// probe can tell a stuck queue from an idle one.
type progress struct {
	mu           sync.Mutex
	inFlight     int
	lastFinished time.Time
	oldestStart  time.Time
}

func (p *progress) started() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inFlight == 0 {
		p.oldestStart = time.Now()
	}
	p.inFlight++
}

func (p *progress) finished() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inFlight--
	p.lastFinished = time.Now()
	if p.inFlight == 0 {
		p.oldestStart = time.Time{}
	}
}

// StuckFor reports how long work has been in flight without any item
// finishing; zero when the queue is idle or moving.
func (p *progress) StuckFor(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inFlight == 0 {
		return 0
	}
	since := p.oldestStart
	if p.lastFinished.After(since) {
		since = p.lastFinished
	}
	return now.Sub(since)
}

// Stalled returns an error naming the first queue that has held work for
// longer than threshold without finishing any item.
func Stalled(queues []*Queue, threshold time.Duration) error {
	now := time.Now()
	for _, q := range queues {
		if d := q.Stats.StuckFor(now); d > threshold {
			return fmt.Errorf("queue %s has made no progress for %s", q.Name, d.Round(time.Second))
		}
	}
	return nil
}
