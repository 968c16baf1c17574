package controller

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/expectations"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
	daskscheme "github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned/scheme"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

func init() {
	// Events about Dask objects need their kinds in the scheme the recorder uses.
	utilruntime.Must(daskscheme.AddToScheme(scheme.Scheme))
}

// Controller runs the DaskCluster, DaskWorkerGroup, DaskJob and
// DaskAutoscaler controllers over shared caches.
type Controller struct {
	*Base
	events record.EventBroadcaster
	expect *expectations.Expectations

	clusters    *queue
	groups      *queue
	jobs        *queue
	autoscalers *queue

	retirements   *asyncCalls[retirement]
	hashes        templateHashes
	idleChecks    *asyncCalls[*time.Time]
	targets       *asyncCalls[int]
	autoscale     *autoscaleMemory
	batches       *pacer
	uncertain     *uncertainCreates
	jobWrites     *latestWrites[*daskv1.DaskJob]
	clusterWrites *latestWrites[*daskv1.DaskCluster]
	groupWrites   *latestWrites[*daskv1.DaskWorkerGroup]
	created       *createdChildren
	legacyNoted   *notedOnce
	// rolloutProgress remembers when each group's rollout last moved.
	rolloutProgress *lastChange
	// groupPods reads a group's Pods from the cache (a seam for tests that
	// deliver an event right after the read).
	groupPods func(ns, uid string) []*corev1.Pod
}

// New builds the controllers; Run starts them.
func New(kube kubernetes.Interface, dask versioned.Interface, opts Options) (*Controller, error) {
	opts.defaults()
	if opts.Resolver == nil {
		return nil, fmt.Errorf("controller: no scheduler resolver")
	}
	caches, err := newCaches(kube, dask, opts.Namespaces, opts.ResyncPeriod)
	if err != nil {
		return nil, err
	}
	events := record.NewBroadcaster(record.WithContext(context.Background()),
		record.WithCorrelatorOptions(record.CorrelatorOptions{SpamKeyFunc: spamKeyByReason}))
	base := &Base{
		kube:           kube,
		dask:           dask,
		caches:         caches,
		recorder:       events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "dask-operator"}),
		opts:           opts,
		dashAPI:        daskapi.New(opts.Resolver),
		now:            time.Now,
		statusPace:     newPacer(),
		incumbents:     newIncumbents(kube, caches),
		statusInterval: statusWriteInterval,
	}
	c := &Controller{
		Base:            base,
		events:          events,
		expect:          expectations.New(expectations.DefaultTTL),
		autoscale:       newAutoscaleMemory(),
		batches:         newPacer(),
		uncertain:       newUncertainCreates(),
		jobWrites:       newLatestWrites[*daskv1.DaskJob](),
		clusterWrites:   newLatestWrites[*daskv1.DaskCluster](),
		groupWrites:     newLatestWrites[*daskv1.DaskWorkerGroup](),
		legacyNoted:     newNotedOnce(),
		rolloutProgress: newLastChange(),
	}
	clock := base.clock
	c.expect.SetClock(clock)
	c.retirements = newAsyncCalls[retirement](clock)
	c.idleChecks = newAsyncCalls[*time.Time](clock)
	c.targets = newAsyncCalls[int](clock)
	c.created = newCreatedChildren(clock)
	c.groupPods = caches.podsControlledBy
	c.clusters = newQueue("daskcluster", c.syncCluster)
	c.groups = newQueue("daskworkergroup", c.syncWorkerGroup)
	c.jobs = newQueue("daskjob", c.syncJob)
	c.autoscalers = newQueue("daskautoscaler", c.syncAutoscaler)
	if err := c.addEventHandlers(); err != nil {
		return nil, err
	}
	return c, nil
}

// Start starts the informers. A replica that waits for leadership keeps
// its caches warm, so that it can take over at once.
func (c *Controller) Start(ctx context.Context) {
	c.caches.start(ctx.Done())
}

// Run starts the caches and the workers and blocks until ctx is done and the
// workers have stopped.
func (c *Controller) Run(ctx context.Context) error {
	c.Start(ctx)
	return c.RunWorkers(ctx, 0)
}

// RunWorkers waits for the caches, then runs the workers until ctx is done.
// Then it lets in-flight syncs finish, for at most drain (0: no limit).
func (c *Controller) RunWorkers(ctx context.Context, drain time.Duration) error {
	return c.RunWorkersUntil(ctx, context.Background(), drain)
}

// RunWorkersUntil runs the workers until stop or abort ends. When stop ends,
// no queued key is synced any more, and the syncs in flight keep their
// context for at most drain (0: no limit) to finish. When abort ends (the
// leader's lease is lost), every sync and scheduler call is cancelled at
// once: nothing may write after that.
func (c *Controller) RunWorkersUntil(stop, abort context.Context, drain time.Duration) error {
	work, cancelWork := context.WithCancel(abort)
	defer cancelWork()
	c.setWorkContext(work)

	c.events.StartStructuredLogging(4)
	sink := c.opts.Events
	if sink == nil {
		sink = c.kube.CoreV1()
	}
	c.events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: sink.Events("")})
	defer c.events.Shutdown()

	klog.InfoS("Waiting for informer caches to sync")
	waitCtx, cancelWait := context.WithCancel(work)
	defer cancelWait()
	defer context.AfterFunc(stop, cancelWait)()
	if !c.caches.waitForSync(waitCtx.Done()) {
		return fmt.Errorf("caches did not sync: %w", waitCtx.Err())
	}
	klog.InfoS("Starting workers", "workersPerQueue", c.opts.Workers)
	done := make(chan struct{})
	queues := []*queue{c.clusters, c.groups, c.jobs, c.autoscalers}
	for _, q := range queues {
		go func() {
			q.run(work, c.opts.Workers)
			done <- struct{}{}
		}()
	}
	select {
	case <-stop.Done():
		klog.InfoS("Stopping: letting in-flight syncs finish", "timeout", drain)
	case <-work.Done():
		klog.InfoS("Aborting: in-flight syncs are cancelled")
	}
	for _, q := range queues {
		q.stop()
	}
	var timeout <-chan time.Time
	if drain > 0 {
		timeout = time.After(drain)
	}
	for range queues {
		select {
		case <-done:
		case <-timeout:
			cancelWork()
			return fmt.Errorf("in-flight syncs did not finish within %s", drain)
		}
	}
	klog.InfoS("Workers stopped")
	return nil
}

// HasSynced reports whether the caches have been filled.
func (c *Controller) HasSynced() bool { return c.caches.hasSynced() }

// Stalled returns an error when a queue has held work for longer than
// threshold without finishing any item.
func (c *Controller) Stalled(threshold time.Duration) error {
	now := time.Now()
	for _, q := range []*queue{c.clusters, c.groups, c.jobs, c.autoscalers} {
		if d := q.stats.stuckFor(now); d > threshold {
			return fmt.Errorf("queue %s has made no progress for %s", q.name, d.Round(time.Second))
		}
	}
	return nil
}

func (c *Controller) addEventHandlers() error {
	for _, s := range c.caches.scopes {
		handlers := []struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{
			{s.clusters, cache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { c.onCluster(obj, true) },
				UpdateFunc: func(old, obj any) { c.onClusterUpdate(old, obj) },
				DeleteFunc: func(obj any) { c.onCluster(obj, true) },
			}},
			{s.groups, cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onGroup,
				UpdateFunc: func(_, obj any) { c.onGroup(obj) },
				DeleteFunc: c.onGroup,
			}},
			{s.jobs, cache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { c.enqueue(c.jobs, obj) },
				UpdateFunc: func(_, obj any) { c.enqueue(c.jobs, obj) },
				DeleteFunc: func(obj any) { c.enqueue(c.jobs, obj) },
			}},
			{s.autoscalers, cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onAutoscaler,
				UpdateFunc: func(_, obj any) { c.onAutoscaler(obj) },
				DeleteFunc: c.onAutoscaler,
			}},
			{s.pods, cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onPodAdd,
				UpdateFunc: c.onPodUpdate,
				DeleteFunc: c.onPodDelete,
			}},
			{s.services, cache.ResourceEventHandlerFuncs{
				AddFunc:    c.onService,
				UpdateFunc: func(_, obj any) { c.onService(obj) },
				DeleteFunc: c.onService,
			}},
		}
		workload := cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onWorkload,
			UpdateFunc: func(_, obj any) { c.onWorkload(obj) },
			DeleteFunc: c.onWorkload,
		}
		for _, inf := range []cache.SharedIndexInformer{s.deployments, s.replicaSets} {
			handlers = append(handlers, struct {
				inf cache.SharedIndexInformer
				h   cache.ResourceEventHandler
			}{inf, workload})
		}
		for _, h := range handlers {
			if _, err := h.inf.AddEventHandler(h.h); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Controller) enqueue(q *queue, obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	q.add(key)
}

func (c *Controller) onCluster(obj any, related bool) {
	c.created.observed("DaskCluster", obj)
	c.enqueue(c.clusters, obj)
	m, err := metaOf(obj)
	if err != nil {
		return
	}
	if related {
		// Groups wait for their cluster; autoscalers follow it.
		for _, g := range c.caches.groupsOf(m.GetNamespace(), m.GetName()) {
			c.enqueue(c.groups, g)
		}
		for _, a := range c.caches.autoscalersOf(m.GetNamespace(), m.GetName()) {
			c.enqueue(c.autoscalers, a)
		}
	}
	if ref := metav1.GetControllerOf(m); ref != nil && ref.Kind == "DaskJob" {
		c.jobs.add(m.GetNamespace() + "/" + ref.Name)
	}
}

func (c *Controller) onClusterUpdate(old, obj any) {
	o, n := old.(*daskv1.DaskCluster), obj.(*daskv1.DaskCluster)
	// Only spec or metadata changes concern the cluster's groups; status
	// changes would otherwise wake every group on every status write.
	related := o.Generation != n.Generation || !maps.Equal(o.Labels, n.Labels)
	c.onCluster(obj, related)
}

func (c *Controller) onGroup(obj any) {
	c.created.observed("DaskWorkerGroup", obj)
	c.enqueue(c.groups, obj)
	if g, ok := tombstoneAs[*daskv1.DaskWorkerGroup](obj); ok {
		c.clusters.add(g.Namespace + "/" + g.Spec.Cluster)
	}
}

func (c *Controller) onAutoscaler(obj any) {
	c.enqueue(c.autoscalers, obj)
	if a, ok := tombstoneAs[*daskv1.DaskAutoscaler](obj); ok {
		c.clusters.add(a.Namespace + "/" + a.Spec.Cluster)
	}
}

func (c *Controller) onService(obj any) {
	c.created.observed("Service", obj)
	c.enqueueOwner(obj)
}

// enqueueOwner enqueues the Dask object that controls a Pod or Service.
func (c *Controller) enqueueOwner(obj any) {
	m, err := metaOf(obj)
	if err != nil {
		return
	}
	ref := metav1.GetControllerOf(m)
	if ref == nil || ref.APIVersion != daskv1.SchemeGroupVersion.String() {
		c.enqueueTakeover(m, ref)
		return
	}
	key := m.GetNamespace() + "/" + ref.Name
	switch ref.Kind {
	case "DaskCluster":
		c.clusters.add(key)
	case "DaskWorkerGroup":
		c.groups.add(key)
	case "DaskJob":
		c.jobs.add(key)
	}
}

// onWorkload handles a Deployment's or ReplicaSet's event.
func (c *Controller) onWorkload(obj any) {
	if m, err := metaOf(obj); err == nil {
		c.enqueueTakeover(m, nil)
	}
}

// enqueueTakeover enqueues the cluster and group of a Pod no Dask object
// controls, or of a Deployment or ReplicaSet: what a takeover from the
// Python operator waits for (takeover.go).
func (c *Controller) enqueueTakeover(m metav1.Object, ref *metav1.OwnerReference) {
	if ref != nil && ref.Kind != "ReplicaSet" && ref.Kind != "Deployment" {
		return
	}
	labels := m.GetLabels()
	cluster := labels[resources.LabelClusterName]
	if cluster == "" {
		return
	}
	c.clusters.add(m.GetNamespace() + "/" + cluster)
	if group := labels[resources.LabelWorkerGroupName]; group != "" {
		c.groups.add(m.GetNamespace() + "/" + group)
	}
}

// expectationKey is the key under which the controller of a Pod records the
// creations and deletions it waits for.
func expectationKey(p *corev1.Pod) (string, bool) {
	ref := metav1.GetControllerOf(p)
	if ref == nil || ref.APIVersion != daskv1.SchemeGroupVersion.String() {
		return "", false
	}
	key := p.Namespace + "/" + ref.Name
	switch ref.Kind {
	case "DaskWorkerGroup":
		return key, true
	case "DaskJob":
		return jobExpectationKey(key), true
	}
	return "", false
}

func (c *Controller) onPodAdd(obj any) {
	c.created.observed("Pod", obj)
	p, ok := podFromCache(obj)
	if !ok {
		return
	}
	if key, ok := expectationKey(p); ok {
		c.expect.CreationObserved(key, p.Name)
		if p.DeletionTimestamp != nil {
			c.expect.DeletionObserved(key, p.Name)
		}
	}
	c.enqueueOwner(p)
}

func (c *Controller) onPodUpdate(old, obj any) {
	o, oldOK := old.(metav1.Object)
	if oldOK && o.GetResourceVersion() == objResourceVersion(obj) {
		return // a resync: nothing changed
	}
	c.created.observed("Pod", obj)
	p, ok := podFromCache(obj)
	if !ok {
		return
	}
	if key, ok := expectationKey(p); ok && p.DeletionTimestamp != nil {
		c.expect.DeletionObserved(key, p.Name)
	}
	c.enqueueOwner(p)
}

func (c *Controller) onPodDelete(obj any) {
	c.created.observed("Pod", obj)
	p, ok := podFromCache(obj)
	if !ok {
		return
	}
	if key, ok := expectationKey(p); ok {
		c.expect.DeletionObserved(key, p.Name)
	}
	c.enqueueOwner(p)
}
