// Package workergroup is the DaskWorkerGroup controller: it keeps a group's
// worker Pods at the count asked for, like a ReplicaSet (expectations,
// batched creation, ranking for scale-down), retires workers through the
// Dask scheduler before deleting them (scaledown.go), rolls them out when
// their template changes (rollout.go), and writes the group's status.
package workergroup

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/expectations"
)

// Controller reconciles DaskWorkerGroups.
type Controller struct {
	*controller.Base
	queue *controller.Queue

	// expect holds the Pod creations and deletions each group waits to see.
	expect *expectations.Expectations
	// retirements holds the results of retire_workers calls.
	retirements *controller.AsyncCalls[retirement]
	hashes      controller.TemplateHashes
	// batches paces creation batches (the incumbent's allocation delay).
	batches *controller.Pacer
	// uncertain holds the creates that may have happened (uncertain.go).
	uncertain   *uncertainCreates
	groupWrites *controller.LatestWrites[*daskv1.DaskWorkerGroup]
	legacyNoted *controller.NotedOnce
	// rolloutProgress remembers when each group's rollout last moved.
	rolloutProgress *lastChange
	// groupPods reads a group's Pods from the cache (a seam for tests that
	// deliver an event right after the read).
	groupPods func(ns, uid string) []*corev1.Pod
}

// New builds the DaskWorkerGroup controller on base's informers.
func New(base *controller.Base) (*Controller, error) {
	c := &Controller{
		Base:            base,
		expect:          expectations.New(expectations.DefaultTTL),
		retirements:     controller.NewAsyncCalls[retirement](base.Clock),
		batches:         controller.NewPacer(),
		uncertain:       newUncertainCreates(),
		groupWrites:     controller.NewLatestWrites[*daskv1.DaskWorkerGroup](),
		legacyNoted:     controller.NewNotedOnce(),
		rolloutProgress: newLastChange(),
		groupPods:       base.Caches.PodsControlledBy,
	}
	c.expect.SetClock(base.Clock)
	c.queue = controller.NewQueue("daskworkergroup", c.syncWorkerGroup)
	for _, s := range base.Caches.Scopes {
		if err := controller.AddHandlers(
			controller.Handler{Informer: s.Groups, Handler: controller.OnAny(c.enqueue)},
			// Groups wait for their cluster and follow its spec.
			controller.Handler{Informer: s.Clusters, Handler: cache.ResourceEventHandlerFuncs{
				AddFunc: c.onCluster,
				UpdateFunc: func(old, obj any) {
					if controller.ClusterSpecChanged(old, obj) {
						c.onCluster(obj)
					}
				},
				DeleteFunc: c.onCluster,
			}},
			controller.Handler{Informer: s.Pods, Handler: cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onPodAdd,
				UpdateFunc: c.onPodUpdate,
				DeleteFunc: c.onPodDelete,
			}},
			controller.Handler{Informer: s.Deployments, Handler: controller.OnAny(c.onTakeover)},
			controller.Handler{Informer: s.ReplicaSets, Handler: controller.OnAny(c.onTakeover)},
		); err != nil {
			return nil, err
		}
	}
	// Kueue's decisions about a queued cluster hold its groups back or
	// set how many workers they may run.
	if base.Caches.Kueue != nil {
		if err := base.Caches.Kueue.AddHandler(controller.OnAny(c.onWorkload)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Controller) onWorkload(obj any) {
	key, ok := controller.ControllerKey(obj, "DaskCluster")
	if !ok {
		return
	}
	ns, name, _ := strings.Cut(key, "/")
	for _, g := range c.Caches.GroupsOf(ns, name) {
		c.enqueue(g)
	}
}

// Queue is the controller's workqueue, for the manager to run.
func (c *Controller) Queue() *controller.Queue { return c.queue }

// forget drops what the controller remembers of a group that is gone.
func (c *Controller) forget(key string) {
	c.expect.Forget(key)
	c.retirements.Forget(key)
	c.hashes.Forget([]string{"DaskWorkerGroup"}, key)
	c.batches.Forget(key)
	c.uncertain.forget(key)
	c.StatusPace.Forget("DaskWorkerGroup/" + key)
	c.groupWrites.Forget(key)
	c.legacyNoted.Forget("DaskWorkerGroup/" + key)
	c.rolloutProgress.forget(key)
}

func (c *Controller) enqueue(obj any) { controller.Enqueue(c.queue, obj) }

func (c *Controller) onCluster(obj any) {
	m, err := controller.MetaOf(obj)
	if err != nil {
		return
	}
	for _, g := range c.Caches.GroupsOf(m.GetNamespace(), m.GetName()) {
		c.enqueue(g)
	}
}

func (c *Controller) onTakeover(obj any) {
	if ns, _, group, ok := controller.TakeoverOf(obj); ok && group != "" {
		c.queue.Add(ns + "/" + group)
	}
}

// onPod enqueues the group of a worker Pod, or of a Pod a takeover waits
// for, and tells the group's expectations what was seen.
func (c *Controller) onPod(obj any, created, deleted bool) {
	p, ok := controller.PodFromCache(obj)
	if !ok {
		return
	}
	key, ours := controller.ControllerKey(p, "DaskWorkerGroup")
	if !ours {
		c.onTakeover(p)
		return
	}
	if created {
		c.expect.CreationObserved(key, p.Name)
	}
	if deleted || p.DeletionTimestamp != nil {
		c.expect.DeletionObserved(key, p.Name)
	}
	c.queue.Add(key)
}

func (c *Controller) onPodAdd(obj any) { c.onPod(obj, true, false) }

func (c *Controller) onPodUpdate(old, obj any) {
	if controller.Resync(old, obj) {
		return // a resync: nothing changed
	}
	c.onPod(obj, false, false)
}

func (c *Controller) onPodDelete(obj any) { c.onPod(obj, false, true) }

// Sync reconciles one object by its key ("namespace/name"), as the queue's
// workers do; a positive duration asks for another sync after that long.
func (c *Controller) Sync(ctx context.Context, key string) (time.Duration, error) {
	return c.syncWorkerGroup(ctx, key)
}
