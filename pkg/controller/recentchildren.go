package controller

import (
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CreatedTTL is how long a child we created stands in for the cache's copy.
// The cache normally holds it within milliseconds; the limit only matters
// when its events were lost (a relist that skipped an add and a delete),
// and then the next sync after it creates the child again.
const CreatedTTL = 30 * time.Second

// CreatedChildren remembers the single children a sync created (a cluster's
// scheduler Service, scheduler Pod and default worker group; a job's
// cluster) until the informer cache has seen them. A sync that runs before
// the cache catches up, which the first child's add event brings at once,
// would otherwise create the others again: a refused create each, and a
// status computed as if they were missing, which the next sync replaces.
// Any event for the child (add, update, delete) ends the memory: from then
// on the cache answers, and a child deleted later is created anew.
type CreatedChildren struct {
	mu    sync.Mutex
	m     map[string]createdChild
	now   func() time.Time
	swept time.Time
}

type createdChild struct {
	obj  metav1.Object
	at   time.Time
	read bool // a sync has used it in place of the cache's copy
}

func NewCreatedChildren(now func() time.Time) *CreatedChildren {
	return &CreatedChildren{m: map[string]createdChild{}, now: now}
}

func CreatedKey(kind, ns, name string) string { return kind + "/" + ns + "/" + name }

func (c *CreatedChildren) remember(kind string, obj metav1.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.m[CreatedKey(kind, obj.GetNamespace(), obj.GetName())] = createdChild{obj: obj, at: now}
	// Children whose events were lost and that no sync asked for again.
	if now.Sub(c.swept) >= CreatedTTL {
		c.swept = now
		for k, e := range c.m {
			if now.Sub(e.at) >= CreatedTTL {
				delete(c.m, k)
			}
		}
	}
}

// Observed ends the memory of a child: the cache has an event for it.
func (c *CreatedChildren) Observed(kind string, obj any) {
	m, err := MetaOf(obj)
	if err != nil {
		return
	}
	key := CreatedKey(kind, m.GetNamespace(), m.GetName())
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return
	}
	// Only the child we created: an event for an older object of the same
	// name (the one just replaced) says nothing about the new one.
	if e, ok := c.m[key]; ok && (m.GetUID() == "" || e.obj.GetUID() == m.GetUID()) {
		delete(c.m, key)
	}
}

// Stale is how long the longest remembered of the named children that a
// sync has used in place of the cache's copy is still remembered; 0 when
// none is. That sync looks again then, so that a child whose events were
// lost is created again.
func (c *CreatedChildren) Stale(keys ...string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var longest time.Duration
	now := c.now()
	for _, k := range keys {
		if e, ok := c.m[k]; ok && e.read {
			if left := CreatedTTL - now.Sub(e.at); left > longest {
				longest = left
			}
		}
	}
	return longest
}

// CreatedAs returns the child of that kind and name we created and the
// cache has not seen yet, if there is one.
func CreatedAs[T metav1.Object](c *CreatedChildren, kind, ns, name string) (T, bool) {
	var zero T
	key := CreatedKey(kind, ns, name)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return zero, false
	}
	if c.now().Sub(e.at) >= CreatedTTL {
		delete(c.m, key)
		return zero, false
	}
	obj, ok := e.obj.(T)
	if ok {
		e.read = true
		c.m[key] = e
	}
	return obj, ok
}
