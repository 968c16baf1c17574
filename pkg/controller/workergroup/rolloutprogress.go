package workergroup

import (
	"sync"
	"time"
)

// lastChange remembers, per key, a state and since when it has not changed:
// how long a rollout has made no progress, whatever holds it up.
type lastChange struct {
	mu sync.Mutex
	m  map[string]stateSince
}

type stateSince struct {
	state string
	since time.Time
}

func newLastChange() *lastChange { return &lastChange{m: map[string]stateSince{}} }

// since records state for key at now and returns since when key has had it.
func (l *lastChange) since(key, state string, now time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.m[key]; ok && old.state == state {
		return old.since
	}
	l.m[key] = stateSince{state: state, since: now}
	return now
}

func (l *lastChange) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}
