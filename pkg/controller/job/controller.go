// Package job is the DaskJob controller: a job's cluster, then its runner
// Pod, whose end ends the job (restart policy, backoff limit, deadline,
// suspend, TTL after it finished); the cluster is deleted when the job ends.
package job

import (
	"context"
	"time"

	"github.com/dask-operator/dask-operator/pkg/resources"

	"k8s.io/client-go/tools/cache"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/expectations"
)

// Controller reconciles DaskJobs.
type Controller struct {
	*controller.Base
	queue *controller.Queue

	// expect holds the runner Pod creations and deletions each job waits
	// to see.
	expect    *expectations.Expectations
	jobWrites *controller.LatestWrites[*daskv1.DaskJob]
	// created remembers the clusters created until the cache has them.
	created *controller.CreatedChildren
}

// New builds the DaskJob controller on base's informers.
func New(base *controller.Base) (*Controller, error) {
	c := &Controller{
		Base:      base,
		expect:    expectations.New(expectations.DefaultTTL),
		jobWrites: controller.NewLatestWrites[*daskv1.DaskJob](),
		created:   controller.NewCreatedChildren(base.Clock),
	}
	c.expect.SetClock(base.Clock)
	c.queue = controller.NewQueue("daskjob", c.syncJob)
	for _, s := range base.Caches.Scopes {
		handlers := []struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{
			{s.Jobs, cache.ResourceEventHandlerFuncs{
				AddFunc:    c.enqueue,
				UpdateFunc: func(_, obj any) { c.enqueue(obj) },
				DeleteFunc: c.enqueue,
			}},
			// A job follows its cluster.
			{s.Clusters, cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onCluster,
				UpdateFunc: func(_, obj any) { c.onCluster(obj) },
				DeleteFunc: c.onCluster,
			}},
			{s.Pods, cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onPodAdd,
				UpdateFunc: c.onPodUpdate,
				DeleteFunc: c.onPodDelete,
			}},
		}
		for _, h := range handlers {
			if _, err := h.inf.AddEventHandler(h.h); err != nil {
				return nil, err
			}
		}
	}
	// Kueue's decisions about the jobs' Workloads (queue.go).
	if base.Caches.Kueue != nil {
		if err := base.Caches.Kueue.AddHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onWorkload,
			UpdateFunc: func(_, obj any) { c.onWorkload(obj) },
			DeleteFunc: c.onWorkload,
		}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Controller) onWorkload(obj any) {
	if key, ok := controller.ControllerKey(obj, "DaskJob"); ok {
		c.queue.Add(key)
	}
}

// Queue is the controller's workqueue, for the manager to run.
func (c *Controller) Queue() *controller.Queue { return c.queue }

// forget drops what the controller remembers of a job that is gone.
func (c *Controller) forget(key string) {
	c.expect.Forget(jobExpectationKey(key))
	c.jobWrites.Forget(key)
}

func (c *Controller) enqueue(obj any) { controller.Enqueue(c.queue, obj) }

func (c *Controller) onCluster(obj any) {
	c.created.Observed("DaskCluster", obj)
	if key, ok := controller.ControllerKey(obj, "DaskJob"); ok {
		c.queue.Add(key)
	}
}

// onPod enqueues the job of a runner Pod and tells the job's expectations
// what was seen.
func (c *Controller) onPod(obj any, created, deleted bool) {
	c.created.Observed("Pod", obj)
	p, ok := controller.PodFromCache(obj)
	if !ok {
		return
	}
	key, ours := controller.ControllerKey(p, "DaskJob")
	if !ours {
		// An evicted job gives its quota back once its cluster's Pods are
		// gone (queue.go): a job's cluster has the job's name.
		if cluster := p.Labels[resources.LabelClusterName]; deleted && cluster != "" && c.Caches.Kueue != nil {
			c.queue.Add(p.Namespace + "/" + cluster)
		}
		return
	}
	if created {
		c.expect.CreationObserved(jobExpectationKey(key), p.Name)
	}
	if deleted || p.DeletionTimestamp != nil {
		c.expect.DeletionObserved(jobExpectationKey(key), p.Name)
	}
	c.queue.Add(key)
}

func (c *Controller) onPodAdd(obj any) { c.onPod(obj, true, false) }

func (c *Controller) onPodUpdate(old, obj any) {
	if o, ok := old.(interface{ GetResourceVersion() string }); ok && o.GetResourceVersion() == controller.ObjResourceVersion(obj) {
		return // a resync: nothing changed
	}
	c.onPod(obj, false, false)
}

func (c *Controller) onPodDelete(obj any) { c.onPod(obj, false, true) }

// Sync reconciles one object by its key ("namespace/name"), as the queue's
// workers do; a positive duration asks for another sync after that long.
func (c *Controller) Sync(ctx context.Context, key string) (time.Duration, error) {
	return c.syncJob(ctx, key)
}
