// Package expectations remembers the Pods a controller has asked the API
// server to create or delete and has not yet seen in its cache. While a
// controller waits for its own writes to show up, it must not create or delete
// again: a lagging cache would otherwise make it create the same Pods twice
// (the Python operator once created 31 workers for 20).
//
// It follows the Kubernetes ReplicaSet controller's expectations, tracking
// Pods by name rather than by count so that duplicate or missed events cannot
// drift the bookkeeping, and expiring entries so a lost event delays a
// controller but never wedges it.
package expectations

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
)

// DefaultTTL is how long an expectation is waited for (as in Kubernetes).
const DefaultTTL = 5 * time.Minute

// Expectations is safe for concurrent use.
type Expectations struct {
	mu      sync.Mutex
	entries map[string]*entry
	ttl     time.Duration
	now     func() time.Time
}

type entry struct {
	creations sets.Set[string]
	deletions sets.Set[string]
	since     time.Time
}

// New returns Expectations whose entries expire after ttl.
func New(ttl time.Duration) *Expectations {
	return &Expectations{entries: map[string]*entry{}, ttl: ttl, now: time.Now}
}

// SetClock replaces the clock, for tests.
func (e *Expectations) SetClock(now func() time.Time) { e.now = now }

func (e *Expectations) get(key string) *entry {
	en, ok := e.entries[key]
	if !ok {
		en = &entry{creations: sets.New[string](), deletions: sets.New[string]()}
		e.entries[key] = en
	}
	return en
}

// ExpectCreations records that the controller of key is about to create Pods
// with these names.
func (e *Expectations) ExpectCreations(key string, names ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.get(key)
	en.creations.Insert(names...)
	en.since = e.now()
}

// ExpectDeletions records that the controller of key is about to delete
// Pods with these names.
func (e *Expectations) ExpectDeletions(key string, names ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.get(key)
	en.deletions.Insert(names...)
	en.since = e.now()
}

// CreationObserved lowers the expectation for a created Pod: its add event
// arrived, or its creation failed.
func (e *Expectations) CreationObserved(key, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if en, ok := e.entries[key]; ok {
		en.creations.Delete(name)
	}
}

// DeletionObserved lowers the expectation for a deleted Pod: its delete (or
// terminating) event arrived, or the delete call failed.
func (e *Expectations) DeletionObserved(key, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if en, ok := e.entries[key]; ok {
		en.deletions.Delete(name)
	}
}

// Satisfied reports whether the controller of key has seen all its writes,
// or has waited longer than the TTL for them. An expired entry is dropped.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.entries[key]
	if !ok {
		return true
	}
	if en.creations.Len() == 0 && en.deletions.Len() == 0 {
		return true
	}
	if e.now().Sub(en.since) > e.ttl {
		delete(e.entries, key)
		return true
	}
	return false
}

// Remaining returns how long key's unmet expectations are still waited for
// (0 when they are met): a controller requeues for that long, so that a lost
// event delays it by at most the TTL, not until the next resync.
func (e *Expectations) Remaining(key string) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.entries[key]
	if !ok || (en.creations.Len() == 0 && en.deletions.Len() == 0) {
		return 0
	}
	if d := en.since.Add(e.ttl).Sub(e.now()); d > 0 {
		return d + 10*time.Millisecond
	}
	return time.Millisecond
}

// Pending returns how many creations and deletions key still waits for.
func (e *Expectations) Pending(key string) (creations, deletions int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if en, ok := e.entries[key]; ok {
		return en.creations.Len(), en.deletions.Len()
	}
	return 0, 0
}

// Forget drops everything recorded for key (its object was deleted).
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.entries, key)
}
