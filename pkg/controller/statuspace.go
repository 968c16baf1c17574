package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// statusPacer spaces out status writes that only update worker counts.
// While workers are being created or become ready, every Pod event would
// otherwise cost a status write, and those writes share the client's rate
// limit with the creation of Pods. Other changes are written at once.
type statusPacer struct {
	mu       sync.Mutex
	last     map[string]time.Time
	interval time.Duration
}

func newStatusPacer(interval time.Duration) *statusPacer {
	return &statusPacer{last: map[string]time.Time{}, interval: interval}
}

// wait returns how long a counts-only status write of key must wait.
func (p *statusPacer) wait(key string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.last[key]; ok && now.Sub(t) < p.interval {
		return p.interval - now.Sub(t)
	}
	return 0
}

func (p *statusPacer) wrote(key string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[key] = now
}

func (p *statusPacer) forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.last, key)
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
