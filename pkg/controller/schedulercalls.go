package controller

import (
	"sync"
	"time"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// AsyncCalls runs at most one slow call (to a Dask scheduler) per key in the
// background, so that queue workers never wait on a scheduler. When a call
// ends, its result is stored and the key is enqueued; the next sync reads it.
type AsyncCalls[T any] struct {
	now      func() time.Time // the controller's clock
	mu       sync.Mutex
	inFlight map[string]time.Time
	Results  map[string]AsyncResult[T]
}

type AsyncResult[T any] struct {
	Value T
	Err   error
	At    time.Time
}

func NewAsyncCalls[T any](now func() time.Time) *AsyncCalls[T] {
	return &AsyncCalls[T]{now: now, inFlight: map[string]time.Time{}, Results: map[string]AsyncResult[T]{}}
}

// Start runs call in the background unless one is already running for key,
// and calls done when it ends. It reports whether it started a call.
func (a *AsyncCalls[T]) Start(key string, call func() (T, error), done func()) bool {
	a.mu.Lock()
	if _, ok := a.inFlight[key]; ok {
		a.mu.Unlock()
		return false
	}
	a.inFlight[key] = a.now()
	a.mu.Unlock()
	go func() {
		v, err := call()
		a.mu.Lock()
		delete(a.inFlight, key)
		a.Results[key] = AsyncResult[T]{Value: v, Err: err, At: a.now()}
		a.mu.Unlock()
		done()
	}()
	return true
}

func (a *AsyncCalls[T]) Running(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.inFlight[key]
	return ok
}

// Done tells whether a result of key is stored.
func (a *AsyncCalls[T]) Done(key string) bool {
	_, ok := a.Peek(key)
	return ok
}

// Take returns and removes the stored result of key.
func (a *AsyncCalls[T]) Take(key string) (AsyncResult[T], bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.Results[key]
	delete(a.Results, key)
	return r, ok
}

// Peek returns the stored result of key and keeps it.
func (a *AsyncCalls[T]) Peek(key string) (AsyncResult[T], bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.Results[key]
	return r, ok
}

// Forget drops the stored result of key; a running call still stores its own.
func (a *AsyncCalls[T]) Forget(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.Results, key)
}

// SchedulerTarget tells the scheduler client where a cluster's scheduler is.
func SchedulerTarget(cluster *daskv1.DaskCluster) daskapi.Target {
	return daskapi.Target{
		Namespace: cluster.Namespace,
		Cluster:   cluster.Name,
		Service:   resources.SchedulerName(cluster.Name),
		Port:      resources.ServicePort(&cluster.Spec.Scheduler.Service, resources.DashboardPortName, resources.DefaultHTTPPort),
	}
}
