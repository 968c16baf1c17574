package controller

import (
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// StatusWriteInterval paces the status writes of an object that is
// progressing (Pods being created or becoming ready, a scheduler starting):
// a change that is only progress waits this long from when it is first
// seen, so that a burst of progress (workers coming up together) lands in
// one write, and such writes come at most once per interval. A status that
// has settled (everything asked for is there and ready) and any other
// change (an error, a condition users or events act on) is written at once. While workers are being created, every Pod event would
// otherwise cost a status write, and those writes share the client's rate
// limit, and the API server, with the creation of Pods.
const StatusWriteInterval = 2 * time.Second

// ClusterStatusFactor lengthens a cluster's interval: its worker counts
// are copied from its groups' statuses, which are paced themselves, so that
// a group's progress reaches the cluster in one write rather than two.
const ClusterStatusFactor = 2

// progressWriteBudget bounds the progress-only status writes of all objects
// together, per second: while many objects progress at once (a thousand
// clusters starting), each one's interval grows so that their progress
// writes stay within it, and their Pods' creation keeps the client's rate
// and the API server. One cluster starting alone keeps statusWriteInterval.
const progressWriteBudget = 25

// MaxProgressInterval bounds how stale a progressing status may become.
const MaxProgressInterval = 30 * time.Second

// Pacer remembers, per key, a time before which something must wait: the
// next progress-only status write (deferral), or the next creation batch when
// DASK_KUBERNETES__CONTROLLER__WORKER_ALLOCATION__DELAY is set.
type Pacer struct {
	mu        sync.Mutex
	notBefore map[string]time.Time
	// active is when each key last showed progress (a deferral started, a
	// progress write): what counts it among the objects progressing.
	active map[string]time.Time
	// pruned is when active last lost its stale keys: at most once a
	// second, so that counting stays cheap for every progress write of a
	// burst of thousands.
	pruned time.Time
}

func NewPacer() *Pacer {
	return &Pacer{notBefore: map[string]time.Time{}, active: map[string]time.Time{}}
}

// progressing counts the keys that showed progress within the last
// maxProgressInterval (a second more at most, between prunings). An object that never settles (a suspended cluster,
// a LoadBalancer without an address, a worker stuck Pending) stops counting
// once it stops changing: a few hundred of them must not make every other
// object's progress wait the longest interval.
func (p *Pacer) progressing(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := now.Sub(p.pruned); d >= time.Second || d < 0 {
		for key, t := range p.active {
			if now.Sub(t) >= MaxProgressInterval {
				delete(p.active, key)
			}
		}
		p.pruned = now
	}
	return len(p.active)
}

// Wait returns how long key must still wait at now.
func (p *Pacer) Wait(key string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.notBefore[key]; ok && now.Before(t) {
		return t.Sub(now)
	}
	delete(p.notBefore, key)
	return 0
}

// Size is how many keys the pacer holds.
func (p *Pacer) Size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.notBefore)
}

func (p *Pacer) Hold(key string, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notBefore[key] = until
}

func (p *Pacer) Forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.notBefore, key)
	delete(p.active, key)
}

// Deferral returns how long a progress-only status write of key must still
// wait at now: its first call (or the first after a progress write) starts a
// wait of d, and it returns 0 once that has passed.
func (p *Pacer) Deferral(key string, now time.Time, d time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.notBefore[key]
	if !ok || t.IsZero() {
		p.notBefore[key] = now.Add(d)
		p.active[key] = now
		return d
	}
	if now.Before(t) {
		return t.Sub(now)
	}
	return 0
}

// progressWritten keeps key counted among the progressing objects, with no
// wait started: its next progress waits again, from when it is first seen.
func (p *Pacer) progressWritten(key string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notBefore[key] = time.Time{}
	p.active[key] = now
}

// StatusWait says how long a changed status of the object paced under key
// waits before it is written, for an interval of factor times the status
// interval: 0 for a change that is more than progress, or for a status that
// has settled.
func (c *Base) StatusWait(key string, factor time.Duration, progressOnly, settled bool) time.Duration {
	if !progressOnly || settled || c.StatusInterval == 0 {
		return 0
	}
	now := c.Now()
	return c.StatusPace.Deferral(key, now, ProgressInterval(c.StatusInterval, factor, c.StatusPace.progressing(now)))
}

// ProgressInterval is how long a progress-only status write waits with
// other objects progressing (not settled since their first progress):
// factor times the base interval, lengthened so that all of them together
// write within progressWriteBudget, up to maxProgressInterval.
func ProgressInterval(base, factor time.Duration, progressing int) time.Duration {
	d := factor * base
	if spread := factor * time.Duration(progressing) * time.Second / progressWriteBudget; spread > d {
		d = spread
	}
	return min(d, max(MaxProgressInterval, factor*base))
}

// ClusterPaceKey is the key a cluster's status is paced under.
func ClusterPaceKey(key string) string { return "DaskCluster/" + key }

// StatusWritten records a status write of the object paced under key. A
// settled status ends its pacing; after progress, the object still counts
// among those progressing (whose number lengthens everyone's interval: an
// object that wrote its progress and waits for its Pods is progressing as
// much as one that waits to write), and its next progress waits again, from
// when it is first seen, so that each write gathers what came within one
// interval.
func (c *Base) StatusWritten(key string, settled bool) {
	if settled {
		c.StatusPace.Forget(key)
		return
	}
	c.StatusPace.progressWritten(key, c.Now())
}

// progressConditions are the conditions that tell how far an object has
// come. A change of the first kind is progress, but for turning from True
// to False (a scheduler or worker that was ready is not: written at once);
// of the second, only to True (False is a problem users and events act on:
// written at once).
var progressConditions = map[string]bool{
	daskv1.ConditionWorkersReady: true, daskv1.ConditionSchedulerReady: true, daskv1.ConditionWorkersUpdated: true,
	daskv1.ConditionResourcesCreated: false, daskv1.ConditionClusterFound: false, daskv1.ConditionUpdated: false, daskv1.ConditionServiceSelectsScheduler: false,
}

func isProgress(c *metav1.Condition) bool {
	always, ok := progressConditions[c.Type]
	return ok && (always || c.Status == metav1.ConditionTrue)
}

// conditionsProgressOnly reports whether newConds differ from oldConds only
// in progress: every condition added, changed or removed is a progress one.
//
// A progress condition turning from True to False is not progress (a
// scheduler or worker that was ready is not), except WorkersReady when no
// fewer workers are ready (readyKept): more are wanted (a new cluster's group
// appearing, a scale-up), which is progress to come.
func conditionsProgressOnly(oldConds, newConds []metav1.Condition, readyKept bool) bool {
	for i := range newConds {
		n := &newConds[i]
		o := apimeta.FindStatusCondition(oldConds, n.Type)
		if o != nil && o.Status == n.Status && o.Reason == n.Reason && o.Message == n.Message {
			continue
		}
		lost := o != nil && o.Status == metav1.ConditionTrue && n.Status != metav1.ConditionTrue &&
			!(n.Type == daskv1.ConditionWorkersReady && readyKept)
		if !isProgress(n) || lost {
			return false
		}
	}
	for i := range oldConds {
		if apimeta.FindStatusCondition(newConds, oldConds[i].Type) == nil && !isProgress(&oldConds[i]) {
			return false
		}
	}
	return true
}

// conditionsSettled reports whether every progress condition is True.
func conditionsSettled(conds []metav1.Condition) bool {
	for i := range conds {
		if _, ok := progressConditions[conds[i].Type]; ok && conds[i].Status != metav1.ConditionTrue {
			return false
		}
	}
	return true
}

// ClusterStatusPacing says whether a cluster's status change is only
// progress (the phase is the same: a new phase, Running above all, which
// the KubeCluster client waits for, is written at once; every other field
// of the status but the conditions is a count or an address), and whether
// the new status has settled: Running, the scheduler and every worker
// ready.
func ClusterStatusPacing(old, status *daskv1.DaskClusterStatus) (progressOnly, settled bool) {
	progressOnly = old.Phase == status.Phase && conditionsProgressOnly(old.Conditions, status.Conditions, status.ReadyReplicas >= old.ReadyReplicas)
	settled = status.Phase == daskv1.DaskClusterRunning && status.Replicas == status.ReadyReplicas && conditionsSettled(status.Conditions)
	return progressOnly, settled
}

// GroupStatusPacing is clusterStatusPacing for a worker group: settled once
// it has as many workers as asked for, all ready and updated.
func GroupStatusPacing(old, status *daskv1.DaskWorkerGroupStatus, desired int32) (progressOnly, settled bool) {
	progressOnly = conditionsProgressOnly(old.Conditions, status.Conditions, status.ReadyReplicas >= old.ReadyReplicas)
	settled = status.Replicas == desired && status.ReadyReplicas == desired && conditionsSettled(status.Conditions)
	return progressOnly, settled
}

// Soonest combines two requeue delays, zero meaning none.
func Soonest(a, b time.Duration) time.Duration {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
