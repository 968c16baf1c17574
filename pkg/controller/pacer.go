package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// statusWriteInterval is the least time between two status writes of one
// object that only update worker counts. While workers are being created or
// become ready, every Pod event would otherwise cost a status write, and
// those writes share the client's rate limit with the creation of Pods.
// Other changes are written at once.
const statusWriteInterval = time.Second

// pacer remembers, per key, a time before which something must wait: the
// next counts-only status write, or the next creation batch when
// DASK_KUBERNETES__CONTROLLER__WORKER_ALLOCATION__DELAY is set.
type pacer struct {
	mu        sync.Mutex
	notBefore map[string]time.Time
}

func newPacer() *pacer { return &pacer{notBefore: map[string]time.Time{}} }

// wait returns how long key must still wait at now.
func (p *pacer) wait(key string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.notBefore[key]; ok && now.Before(t) {
		return t.Sub(now)
	}
	delete(p.notBefore, key)
	return 0
}

func (p *pacer) hold(key string, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notBefore[key] = until
}

func (p *pacer) forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.notBefore, key)
}

// countsOnly reports whether two sets of status fields differ only in
// worker counts and the WorkersReady condition that reports them.
func countsOnly(oldCounts, newCounts [2]int32, oldConds, newConds []metav1.Condition) bool {
	if oldCounts == newCounts {
		return false // something else changed
	}
	strip := func(conds []metav1.Condition) []metav1.Condition {
		out := make([]metav1.Condition, 0, len(conds))
		for _, c := range conds {
			if c.Type != CondWorkersReady {
				out = append(out, c)
			}
		}
		return out
	}
	return equality.Semantic.DeepEqual(strip(oldConds), strip(newConds))
}

// soonest combines two requeue delays, zero meaning none.
func soonest(a, b time.Duration) time.Duration {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
