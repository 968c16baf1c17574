package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// StatusWrite is one object's status write, as every kind does it: the
// sync computes the status from what it observed, on a copy, and hands it
// here; nothing is sent when it is unchanged, a change that is mere
// progress waits its turn (pacer.go), and what was written is remembered
// until the cache holds it (ownwrites.go).
type StatusWrite[T metav1.Object] struct {
	Kind string // for the log
	Key  string
	Obj  T    // the object as the sync read it
	Same bool // the computed status equals obj's
	// Update sends obj with the computed status.
	Update func(ctx context.Context) (T, error)
	// Writes remembers what was written; nil when the kind needs no memory.
	Writes *LatestWrites[T]
	// PaceKey, when set, paces the write (statusWait): factor times the
	// interval for progress only; settled ends the object's pacing.
	PaceKey               string
	Factor                time.Duration
	ProgressOnly, Settled bool
}

// WriteStatus sends a status write and returns how long it waits instead
// (0 when it was written, or there was nothing to write). An object gone
// meanwhile is no error.
func WriteStatus[T metav1.Object](ctx context.Context, c *Base, w StatusWrite[T]) (time.Duration, error) {
	if w.Same {
		return 0, nil
	}
	if w.PaceKey != "" {
		if wait := c.StatusWait(w.PaceKey, w.Factor, w.ProgressOnly, w.Settled); wait > 0 {
			return wait, nil
		}
	}
	written, err := w.Update(ctx)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if w.Writes != nil {
		w.Writes.Remember(w.Key, written)
	}
	if w.PaceKey != "" {
		c.StatusWritten(w.PaceKey, w.Settled)
	}
	klog.V(4).InfoS("Wrote status", "kind", w.Kind, "object", klog.KObj(w.Obj), "settled", w.Settled, "progressOnly", w.ProgressOnly)
	return 0, nil
}
