package controller

import (
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LatestWrites remembers the objects a controller last wrote, until its
// informer cache catches up with them (like client-go's MutationCache). A
// sync that runs between a status write and the watch event would otherwise
// act on the state before the write: a finished job would create its
// cluster again, a failure would be counted twice.
type LatestWrites[T metav1.Object] struct {
	mu sync.Mutex
	m  map[string]T
}

func NewLatestWrites[T metav1.Object]() *LatestWrites[T] {
	return &LatestWrites[T]{m: map[string]T{}}
}

func (l *LatestWrites[T]) Remember(key string, obj T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[key] = obj
}

// Newest returns the remembered object when it is the same object as cached
// and newer; otherwise it forgets it and returns cached.
func (l *LatestWrites[T]) Newest(key string, cached T) T {
	l.mu.Lock()
	defer l.mu.Unlock()
	mem, ok := l.m[key]
	if !ok {
		return cached
	}
	if mem.GetUID() == cached.GetUID() && newerVersion(mem.GetResourceVersion(), cached.GetResourceVersion()) {
		return mem
	}
	delete(l.m, key)
	return cached
}

func (l *LatestWrites[T]) Forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

// newerVersion compares resource versions as the integers etcd makes them;
// anything else counts as not newer, so the cache wins.
func newerVersion(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}
