package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// statusWrite is one object's status write, as every kind does it: the
// sync computes the status from what it observed, on a copy, and hands it
// here; nothing is sent when it is unchanged, a change that is mere
// progress waits its turn (pacer.go), and what was written is remembered
// until the cache holds it (ownwrites.go).
type statusWrite[T metav1.Object] struct {
	kind string // for the log
	key  string
	obj  T    // the object as the sync read it
	same bool // the computed status equals obj's
	// update sends obj with the computed status.
	update func(ctx context.Context) (T, error)
	// writes remembers what was written; nil when the kind needs no memory.
	writes *latestWrites[T]
	// paceKey, when set, paces the write (statusWait): factor times the
	// interval for progress only; settled ends the object's pacing.
	paceKey               string
	factor                time.Duration
	progressOnly, settled bool
}

// writeStatus sends a status write and returns how long it waits instead
// (0 when it was written, or there was nothing to write). An object gone
// meanwhile is no error.
func writeStatus[T metav1.Object](ctx context.Context, c *Base, w statusWrite[T]) (time.Duration, error) {
	if w.same {
		return 0, nil
	}
	if w.paceKey != "" {
		if wait := c.statusWait(w.paceKey, w.factor, w.progressOnly, w.settled); wait > 0 {
			return wait, nil
		}
	}
	written, err := w.update(ctx)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if w.writes != nil {
		w.writes.remember(w.key, written)
	}
	if w.paceKey != "" {
		c.statusWritten(w.paceKey, w.settled)
	}
	klog.V(4).InfoS("Wrote status", "kind", w.kind, "object", klog.KObj(w.obj), "settled", w.settled, "progressOnly", w.progressOnly)
	return 0, nil
}
