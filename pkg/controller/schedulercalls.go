package controller

import (
	"sync"
	"time"
)

// asyncCalls runs at most one slow call (to a Dask scheduler) per key in the
// background, so that queue workers never wait on a scheduler. When a call
// ends, its result is stored and the key is enqueued; the next sync reads it.
type asyncCalls[T any] struct {
	now      func() time.Time // the controller's clock
	mu       sync.Mutex
	inFlight map[string]time.Time
	results  map[string]asyncResult[T]
}

type asyncResult[T any] struct {
	value T
	err   error
	at    time.Time
}

func newAsyncCalls[T any](now func() time.Time) *asyncCalls[T] {
	return &asyncCalls[T]{now: now, inFlight: map[string]time.Time{}, results: map[string]asyncResult[T]{}}
}

// start runs call in the background unless one is already running for key,
// and calls done when it ends. It reports whether it started a call.
func (a *asyncCalls[T]) start(key string, call func() (T, error), done func()) bool {
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
		a.results[key] = asyncResult[T]{value: v, err: err, at: a.now()}
		a.mu.Unlock()
		done()
	}()
	return true
}

func (a *asyncCalls[T]) running(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.inFlight[key]
	return ok
}

// done tells whether a result of key is stored.
func (a *asyncCalls[T]) done(key string) bool {
	_, ok := a.peek(key)
	return ok
}

// take returns and removes the stored result of key.
func (a *asyncCalls[T]) take(key string) (asyncResult[T], bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.results[key]
	delete(a.results, key)
	return r, ok
}

// peek returns the stored result of key and keeps it.
func (a *asyncCalls[T]) peek(key string) (asyncResult[T], bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.results[key]
	return r, ok
}

// forget drops the stored result of key; a running call still stores its own.
func (a *asyncCalls[T]) forget(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.results, key)
}
