package controller

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/dask-operator/dask-operator/pkg/kueue"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
)

// Base is what every kind's controller shares: the clients, the informer
// caches, the event recorder, the options, the way to reach Dask
// schedulers, the clock, and the pacing of status writes (one budget for
// all kinds). A kind's own memory (expectations, results of scheduler
// calls, what it wrote) lives in its own Controller.
type Base struct {
	Kube     kubernetes.Interface
	Dask     versioned.Interface
	Caches   *Caches
	Recorder record.EventRecorder
	Opts     Options
	DashAPI  *daskapi.Client
	// Now is the clock; tests replace it. Every part of a controller keeps
	// time by it (clock reads it at each call).
	Now func() time.Time
	// StatusPace paces the progress-only status writes of every kind
	// (pacer.go); statusInterval is its base interval (0 writes every
	// change at once).
	StatusPace     *Pacer
	StatusInterval time.Duration
	// Incumbents finds what a takeover from the Python operator has left
	// to do (cluster/takeover.go).
	Incumbents *Incumbents

	workMu  sync.Mutex
	workCtx context.Context
}

// SetWorkContext records the context of the running workers.
func (b *Base) SetWorkContext(ctx context.Context) {
	b.workMu.Lock()
	defer b.workMu.Unlock()
	b.workCtx = ctx
}

// SchedulerContext is the parent of every background scheduler call: it
// ends when the workers are aborted (the lease is lost) or their drain
// ends, so that no retire_workers is sent after that.
func (b *Base) SchedulerContext() context.Context {
	b.workMu.Lock()
	defer b.workMu.Unlock()
	if b.workCtx == nil {
		return context.Background() // syncs called directly, in unit tests
	}
	return b.workCtx
}

// NewBase builds what the kinds share: the informers of the watched
// namespaces (not started) and the rest of Base. Events go to recorder.
func NewBase(kube kubernetes.Interface, dask versioned.Interface, opts Options, recorder record.EventRecorder) (*Base, error) {
	opts.Defaults()
	if opts.Resolver == nil {
		return nil, fmt.Errorf("controller: no scheduler resolver")
	}
	caches, err := NewCaches(kube, dask, opts.Namespaces, opts.ResyncPeriod)
	if err != nil {
		return nil, err
	}
	// Kueue: its Workloads are watched when the API server serves them
	// (queue.go); otherwise a queue label gets a condition saying so.
	if opts.Dynamic != nil {
		installed, err := kueue.Installed(kube.Discovery())
		if err != nil {
			return nil, err
		}
		if installed {
			if caches.Kueue, err = kueue.NewCache(opts.Dynamic, opts.Namespaces, opts.ResyncPeriod); err != nil {
				return nil, err
			}
		}
	}
	return &Base{
		Kube:           kube,
		Dask:           dask,
		Caches:         caches,
		Recorder:       recorder,
		Opts:           opts,
		DashAPI:        daskapi.New(opts.Resolver),
		Now:            time.Now,
		StatusPace:     NewPacer(),
		StatusInterval: StatusWriteInterval,
		Incumbents:     NewIncumbents(kube, caches),
	}, nil
}

// Clock reads Now at each call, so that a clock a test sets later is used:
// give it to every part of a controller that keeps time.
func (b *Base) Clock() time.Time { return b.Now() }

// Enqueue adds the key of obj (or of a deleted object's tombstone) to q.
func Enqueue(q *Queue, obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	q.Add(key)
}

// ControllerKey returns the "namespace/name" key of the Dask object of the
// given kind that controls obj, if one does.
func ControllerKey(obj any, kind string) (string, bool) {
	m, err := MetaOf(obj)
	if err != nil {
		return "", false
	}
	ref := metav1.GetControllerOf(m)
	if ref == nil || ref.APIVersion != daskv1.SchemeGroupVersion.String() || ref.Kind != kind {
		return "", false
	}
	return m.GetNamespace() + "/" + ref.Name, true
}

// ClusterSpecChanged tells whether a DaskCluster's update event concerns
// what its groups and autoscalers follow (its spec or labels): the status
// writes of a cluster would otherwise wake all of them each time.
func ClusterSpecChanged(old, obj any) bool {
	o, ok1 := old.(*daskv1.DaskCluster)
	n, ok2 := obj.(*daskv1.DaskCluster)
	return !ok1 || !ok2 || o.Generation != n.Generation || !maps.Equal(o.Labels, n.Labels)
}

// OnAny is an event handler that calls fn for every add, update and
// delete (the object, or a deleted one's tombstone).
func OnAny(fn func(obj any)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    fn,
		UpdateFunc: func(_, obj any) { fn(obj) },
		DeleteFunc: fn,
	}
}

// Handler is an event handler for one informer.
type Handler struct {
	Informer cache.SharedIndexInformer
	Handler  cache.ResourceEventHandler
}

// AddHandlers registers event handlers.
func AddHandlers(hs ...Handler) error {
	for _, h := range hs {
		if _, err := h.Informer.AddEventHandler(h.Handler); err != nil {
			return err
		}
	}
	return nil
}

// Resync tells an update event that changed nothing: the informer's
// periodic resync.
func Resync(old, obj any) bool {
	o, ok := old.(metav1.Object)
	return ok && o.GetResourceVersion() == ObjResourceVersion(obj)
}
