package controller

import (
	"sync"
	"time"
)

// expeditingQueue is the storage under a workqueue: first in, first out,
// except for keys marked with expedite, which go to the front once their
// time has come. A cluster whose first status is held for a moment (see
// firstStatusWait) asks for that: its hold ends while hundreds of other
// clusters may be queued behind their creates, and a FIFO would sync it
// again, and show it Running, only after every one of them. The sync it
// needs then is cheap (a status write, no create), so it goes first.
//
// Push, Touch, Len and Pop are called by the workqueue under its own lock;
// expedite is called by syncs, so the marks have a lock of their own.
type expeditingQueue struct {
	now func() time.Time

	mu    sync.Mutex
	marks map[string]time.Time // key -> from when it goes to the front

	// Entries whose seq is no longer their key's live one were moved to
	// the front by Touch; Pop skips them.
	normal, front []queued
	live          map[string]liveEntry
	seq           uint64
}

type queued struct {
	key string
	seq uint64
}

type liveEntry struct {
	seq     uint64
	inFront bool
}

func newExpeditingQueue(now func() time.Time) *expeditingQueue {
	return &expeditingQueue{now: now, marks: map[string]time.Time{}, live: map[string]liveEntry{}}
}

// expedite puts key at the front of the queue when it is added at or after
// from (by a delayed add ending a hold, or by an event). The mark ends when
// the key leaves the queue at or after from.
func (q *expeditingQueue) expedite(key string, from time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.marks[key] = from
}

// due reports whether key goes to the front now; ending, whether its mark
// also ends (the key leaves the queue).
func (q *expeditingQueue) due(key string, ending bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	from, ok := q.marks[key]
	if !ok || q.now().Before(from) {
		return false
	}
	if ending {
		delete(q.marks, key)
	}
	return true
}

func (q *expeditingQueue) Push(key string) {
	q.seq++
	e := liveEntry{seq: q.seq, inFront: q.due(key, false)}
	q.live[key] = e
	if e.inFront {
		q.front = append(q.front, queued{key, e.seq})
	} else {
		q.normal = append(q.normal, queued{key, e.seq})
	}
}

// Touch is called when a key already queued is added again: a key whose
// time has come moves to the front.
func (q *expeditingQueue) Touch(key string) {
	e, ok := q.live[key]
	if !ok || e.inFront || !q.due(key, false) {
		return
	}
	q.seq++
	q.live[key] = liveEntry{seq: q.seq, inFront: true}
	q.front = append(q.front, queued{key, q.seq})
}

func (q *expeditingQueue) Len() int { return len(q.live) }

func (q *expeditingQueue) Pop() string {
	for {
		list := &q.front
		if len(q.front) == 0 {
			list = &q.normal
		}
		if len(*list) == 0 {
			return "" // the workqueue pops only while Len() > 0
		}
		e := (*list)[0]
		(*list)[0] = queued{}
		*list = (*list)[1:]
		if live, ok := q.live[e.key]; ok && live.seq == e.seq {
			delete(q.live, e.key)
			q.due(e.key, true)
			return e.key
		}
	}
}
