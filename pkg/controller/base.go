package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
)

// Base is what every kind's controller shares: the clients, the informer
// caches, the event recorder, the options, the way to reach Dask
// schedulers, the clock, and the pacing of status writes (one budget for
// all kinds). A kind's own memory (expectations, results of scheduler
// calls, what it wrote) lives in its own Controller.
type Base struct {
	kube     kubernetes.Interface
	dask     versioned.Interface
	caches   *caches
	recorder record.EventRecorder
	opts     Options
	dashAPI  *daskapi.Client
	// now is the clock; tests replace it. Every part of a controller keeps
	// time by it (clock reads it at each call).
	now func() time.Time
	// statusPace paces the progress-only status writes of every kind
	// (pacer.go); statusInterval is its base interval (0 writes every
	// change at once).
	statusPace     *pacer
	statusInterval time.Duration
	// incumbents finds what a takeover from the Python operator has left
	// to do (takeover.go).
	incumbents *incumbents

	workMu  sync.Mutex
	workCtx context.Context
}

// clock reads now at each call, so that a clock a test sets later is used.
func (b *Base) clock() time.Time { return b.now() }

// setWorkContext records the context of the running workers.
func (b *Base) setWorkContext(ctx context.Context) {
	b.workMu.Lock()
	defer b.workMu.Unlock()
	b.workCtx = ctx
}

// schedulerContext is the parent of every background scheduler call: it
// ends when the workers are aborted (the lease is lost) or their drain
// ends, so that no retire_workers is sent after that.
func (b *Base) schedulerContext() context.Context {
	b.workMu.Lock()
	defer b.workMu.Unlock()
	if b.workCtx == nil {
		return context.Background() // syncs called directly, in unit tests
	}
	return b.workCtx
}
