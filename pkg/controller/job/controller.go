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
		if err := controller.AddHandlers(
			controller.Handler{Informer: s.Jobs, Handler: controller.OnAny(c.enqueue)},
			// A job follows its cluster.
			controller.Handler{Informer: s.Clusters, Handler: controller.OnAny(c.onCluster)},
			controller.Handler{Informer: s.Pods, Handler: cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onPodAdd,
				UpdateFunc: c.onPodUpdate,
				DeleteFunc: c.onPodDelete,
			}},
		); err != nil {
			return nil, err
		}
	}
	// Kueue's decisions about the jobs' Workloads (queue.go).
	if base.Caches.Kueue != nil {
		if err := base.Caches.Kueue.AddHandler(controller.OnAny(c.onWorkload)); err != nil {
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
		// An evicted queued job gives its quota back once its cluster's
		// Pods are gone (queue.go): a job's cluster has the job's name.
		if deleted && c.Caches.Kueue != nil {
			if j, err := c.Caches.Job(p.Namespace, p.Labels[resources.LabelClusterName]); err == nil && queued(j) {
				c.queue.Add(p.Namespace + "/" + j.Name)
			}
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
	if controller.Resync(old, obj) {
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
