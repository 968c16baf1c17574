package controller

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/metrics"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Event reasons of worker groups.
const (
	ReasonScaledUp          = "ScaledUp"
	ReasonScaledDown        = "ScaledDown"
	ReasonFailedCreate      = "FailedCreate"
	ReasonFailedDelete      = "FailedDelete"
	ReasonRetiring          = "RetiringWorkers"
	ReasonRetireFailed      = "RetireWorkersFailed"
	ReasonRetiredUnknown    = "RetiredWorkerNotFound"
	ReasonFallbackScaleDown = "FallbackScaleDown"
	ReasonWaitingForCluster = "WaitingForCluster"
)

// retryRetireAfter paces retire_workers calls while the scheduler fails.
const retryRetireAfter = 5 * time.Second

func (c *Controller) syncWorkerGroup(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	group, err := c.caches.group(ns, name)
	if apierrors.IsNotFound(err) {
		c.expect.Forget(key)
		c.retirements.forget(key)
		c.batches.forget(key)
		c.statusPace.forget("DaskWorkerGroup/" + key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if group.DeletionTimestamp != nil {
		return 0, nil
	}
	status := group.Status.DeepCopy()
	status.ObservedGeneration = group.Generation
	status.Selector = resources.WorkerGroupSelector(group.Spec.Cluster, group.Name).String()

	var active, terminal []*corev1.Pod
	for _, p := range c.caches.podsControlledBy(ns, string(group.UID)) {
		switch {
		case p.DeletionTimestamp != nil:
		case podTerminal(p):
			terminal = append(terminal, p)
		default:
			active = append(active, p)
		}
	}

	var requeue time.Duration
	var manageErr error
	cluster, err := c.caches.cluster(ns, group.Spec.Cluster)
	switch {
	case apierrors.IsNotFound(err) || (err == nil && cluster.DeletionTimestamp != nil):
		msg := fmt.Sprintf("waiting for DaskCluster %q: no workers are created until it exists", group.Spec.Cluster)
		if c.conditionWouldChange(group.Status.Conditions, CondClusterFound, metav1.ConditionFalse) {
			c.recorder.Event(group, corev1.EventTypeNormal, ReasonWaitingForCluster, msg)
		}
		setCondition(&status.Conditions, group.Generation, CondClusterFound, metav1.ConditionFalse, "ClusterNotFound", msg)
	case err != nil:
		return 0, err
	default:
		setCondition(&status.Conditions, group.Generation, CondClusterFound, metav1.ConditionTrue, "ClusterFound",
			fmt.Sprintf("workers join DaskCluster %q", cluster.Name))
		if c.expect.Satisfied(key) {
			requeue, manageErr = c.manageWorkers(ctx, key, group, cluster, active, terminal, status)
		}
	}

	var ready int32
	for _, p := range active {
		if podReady(p) {
			ready++
		}
	}
	desired := resources.Replicas(&group.Spec.Worker)
	status.Replicas, status.ReadyReplicas = int32(len(active)), ready
	setCondition(&status.Conditions, group.Generation, CondWorkersReady, boolStatus(ready >= desired),
		map[bool]string{true: "AllReady", false: "NotAllReady"}[ready >= desired],
		fmt.Sprintf("%d/%d workers ready", ready, desired))

	if !equality.Semantic.DeepEqual(&group.Status, status) {
		old := group.Status
		if countsOnly([2]int32{old.Replicas, old.ReadyReplicas}, [2]int32{status.Replicas, status.ReadyReplicas}, old.Conditions, status.Conditions) &&
			old.ObservedGeneration == status.ObservedGeneration && old.Selector == status.Selector {
			if wait := c.statusPace.wait("DaskWorkerGroup/"+key, c.now()); wait > 0 {
				return soonest(requeue, wait), manageErr
			}
		}
		c.statusPace.hold("DaskWorkerGroup/"+key, c.now().Add(statusWriteInterval))
		updated := group.DeepCopy()
		updated.Status = *status
		if _, err := c.dask.KubernetesV1().DaskWorkerGroups(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return 0, errors.Join(manageErr, err)
		}
	}
	return requeue, manageErr
}

func (c *Controller) conditionWouldChange(conds []metav1.Condition, typ string, status metav1.ConditionStatus) bool {
	old := apimeta.FindStatusCondition(conds, typ)
	return old == nil || old.Status != status
}

// manageWorkers brings the number of active worker Pods to spec.worker.replicas.
func (c *Controller) manageWorkers(ctx context.Context, key string, group *daskv1.DaskWorkerGroup, cluster *daskv1.DaskCluster,
	active, terminal []*corev1.Pod, status *daskv1.DaskWorkerGroupStatus) (time.Duration, error) {
	// Workers the scheduler retired are gone from Dask: remove their Pods
	// whatever the count now is; replacements follow.
	if res, ok := c.retirements.take(key); ok {
		return c.finishRetirement(ctx, key, group, active, res, status)
	}

	var errs []error
	if len(terminal) > 0 {
		errs = append(errs, c.deleteWorkers(ctx, key, group, terminal, "ended"))
	}
	// Labels and annotations added to the group or its cluster reach
	// running workers. The template's metadata is the same for every Pod.
	template := resources.WorkerPod(group, cluster, group.Name, c.opts.ClusterDomain)
	for _, p := range active {
		if patch := resources.MetadataPatch(p, template); patch != nil {
			if _, err := c.kube.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	desired := int(resources.Replicas(&group.Spec.Worker))
	diff := len(active) - desired
	if diff <= 0 {
		apimeta.RemoveStatusCondition(&status.Conditions, CondSchedulerReachable)
	}
	var requeue time.Duration
	switch {
	case diff < 0:
		var err error
		requeue, err = c.createWorkers(ctx, key, group, cluster, -diff, status)
		errs = append(errs, err)
	case diff > 0:
		errs = append(errs, c.scaleDown(ctx, key, group, cluster, active, diff, status))
	}
	return requeue, errors.Join(errs...)
}

func (c *Controller) createWorkers(ctx context.Context, key string, group *daskv1.DaskWorkerGroup, cluster *daskv1.DaskCluster,
	count int, status *daskv1.DaskWorkerGroupStatus) (time.Duration, error) {
	if wait := c.batches.wait(key, c.now()); wait > 0 {
		return wait, nil
	}
	n := min(count, c.opts.MaxPodOpsPerSync)
	names := make([]string, n)
	for i := range names {
		names[i] = resources.NewWorkerName(group.Name)
	}
	c.expect.ExpectCreations(key, names...)
	successes, attempted, err := slowStartBatch(n, 1, func(i int) error {
		pod := resources.WorkerPod(group, cluster, names[i], c.opts.ClusterDomain)
		if _, err := c.kube.CoreV1().Pods(group.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			c.expect.CreationObserved(key, names[i]) // its event will never come
			return err
		}
		return nil
	})
	for i := attempted; i < n; i++ {
		c.expect.CreationObserved(key, names[i])
	}
	metrics.ScaleUps.Add(float64(successes))
	if successes > 0 {
		klog.InfoS("Created worker Pods", "daskworkergroup", klog.KObj(group), "count", successes, "wanted", count)
		c.recorder.Eventf(group, corev1.EventTypeNormal, ReasonScaledUp, "Created %d worker Pods", successes)
	}
	if err != nil && namespaceTerminating(err) {
		return 0, nil
	}
	if err != nil {
		msg := fmt.Sprintf("creating worker Pods failed after %d of %d: %v", successes, count, err)
		c.recorder.Event(group, corev1.EventTypeWarning, ReasonFailedCreate, msg)
		setCondition(&status.Conditions, group.Generation, CondReplicaFailure, metav1.ConditionTrue, ReasonFailedCreate, msg)
		return 0, errors.New(msg)
	}
	apimeta.RemoveStatusCondition(&status.Conditions, CondReplicaFailure)
	if c.opts.WorkerBatchDelay > 0 && n < count {
		c.batches.hold(key, c.now().Add(c.opts.WorkerBatchDelay))
		return c.opts.WorkerBatchDelay, nil
	}
	return 0, nil
}

// deleteWorkers deletes Pods, recording the deletions it waits for.
func (c *Controller) deleteWorkers(ctx context.Context, key string, group *daskv1.DaskWorkerGroup, pods []*corev1.Pod, reason string) error {
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Name
	}
	c.expect.ExpectDeletions(key, names...)
	var mu sync.Mutex
	var errs []error
	_, attempted, _ := slowStartBatch(len(pods), len(pods), func(i int) error {
		p := pods[i]
		uid := p.UID
		err := c.kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil {
			c.expect.DeletionObserved(key, p.Name)
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				return nil // already gone, or another Pod of that name
			}
			mu.Lock()
			errs = append(errs, fmt.Errorf("delete Pod %s: %w", p.Name, err))
			mu.Unlock()
			return err
		}
		return nil
	})
	for i := attempted; i < len(pods); i++ {
		c.expect.DeletionObserved(key, pods[i].Name)
	}
	metrics.ScaleDowns.WithLabelValues(reason).Add(float64(len(pods) - len(errs)))
	if err := errors.Join(errs...); err != nil {
		c.recorder.Event(group, corev1.EventTypeWarning, ReasonFailedDelete, err.Error())
		return err
	}
	return nil
}

// scaleDown removes diff workers: Pods that are not ready first (they hold no
// data), then running workers chosen by the Dask scheduler, which moves their
// data away before they go.
func (c *Controller) scaleDown(ctx context.Context, key string, group *daskv1.DaskWorkerGroup, cluster *daskv1.DaskCluster,
	active []*corev1.Pod, diff int, status *daskv1.DaskWorkerGroupStatus) error {
	n := min(diff, c.opts.MaxPodOpsPerSync)
	var notReady, ready []*corev1.Pod
	for _, p := range rankForScaleDown(active) {
		if podReady(p) {
			ready = append(ready, p)
		} else {
			notReady = append(notReady, p)
		}
	}
	if len(notReady) > 0 {
		victims := notReady[:min(n, len(notReady))]
		if err := c.deleteWorkers(ctx, key, group, victims, "unready"); err != nil {
			return err
		}
		klog.InfoS("Deleted workers that were not ready", "daskworkergroup", klog.KObj(group), "count", len(victims))
		c.recorder.Eventf(group, corev1.EventTypeNormal, ReasonScaledDown, "Deleted %d worker Pods that were not ready", len(victims))
		return nil
	}
	if c.retirements.running(key) {
		return nil // its end enqueues the group
	}
	target := schedulerTarget(cluster)
	timeout := c.opts.RetireTimeout
	candidates := make([]workerRef, len(ready))
	for i, p := range ready {
		candidates[i] = workerRef{name: p.Name, ip: p.Status.PodIP}
	}
	c.retirements.start(key, func() (retirement, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return c.retire(ctx, target, candidates, n)
	}, func() { c.groups.add(key) })
	klog.InfoS("Asking the scheduler to retire workers", "daskworkergroup", klog.KObj(group), "count", n)
	return nil
}

// workerRef is what identifies a worker Pod to the scheduler.
type workerRef struct{ name, ip string }

// retirement is the outcome of a graceful scale-down: Pods whose worker
// never joined the scheduler (they hold no data) and the workers the
// scheduler retired.
type retirement struct {
	unregistered []string
	retired      []daskapi.Worker
}

// retire removes n workers gracefully. Pods the scheduler does not know go
// first; the rest are chosen and retired by the scheduler, which moves their
// data away before it answers.
func (c *Controller) retire(ctx context.Context, target daskapi.Target, candidates []workerRef, n int) (retirement, error) {
	known, err := c.dashAPI.GetWorkers(ctx, target)
	if err != nil {
		return retirement{}, err
	}
	names, ips := map[string]bool{}, map[string]bool{}
	for _, w := range known {
		names[w.Name] = true
		ips[addressHost(w.Address)] = true
	}
	var out retirement
	for _, p := range candidates {
		if len(out.unregistered) < n && !names[p.name] && (p.ip == "" || !ips[p.ip]) {
			out.unregistered = append(out.unregistered, p.name)
		}
	}
	if rest := n - len(out.unregistered); rest > 0 {
		out.retired, err = c.dashAPI.RetireWorkers(ctx, target, rest)
	}
	return out, err
}

// finishRetirement deletes the Pods of the workers the scheduler retired, or
// handles its failure.
func (c *Controller) finishRetirement(ctx context.Context, key string, group *daskv1.DaskWorkerGroup, active []*corev1.Pod,
	res asyncResult[retirement], status *daskv1.DaskWorkerGroupStatus) (time.Duration, error) {
	if res.err != nil {
		return c.retireFailed(ctx, key, group, active, res.err, status)
	}
	setCondition(&status.Conditions, group.Generation, CondSchedulerReachable, metav1.ConditionTrue, "WorkersRetired",
		fmt.Sprintf("the scheduler retired %d workers; %d Pods had no worker registered", len(res.value.retired), len(res.value.unregistered)))
	victims, unknown := matchRetiredWorkers(res.value.retired, active)
	for _, p := range active {
		for _, name := range res.value.unregistered {
			if p.Name == name && !slices.Contains(victims, p) {
				victims = append(victims, p)
			}
		}
	}
	if len(unknown) > 0 {
		c.recorder.Eventf(group, corev1.EventTypeWarning, ReasonRetiredUnknown,
			"The scheduler retired workers %s that match no Pod of this group by name or IP; start workers with --name $(DASK_WORKER_NAME)",
			strings.Join(unknown, ", "))
	}
	if len(victims) == 0 {
		// Nothing to delete: do not ask again at once, or the scheduler would
		// retire worker after worker that we cannot map to Pods.
		return 30 * time.Second, nil
	}
	if err := c.deleteWorkers(ctx, key, group, victims, "retired"); err != nil {
		return 0, err
	}
	names := make([]string, len(victims))
	for i, p := range victims {
		names[i] = p.Name
	}
	klog.InfoS("Deleted retired workers", "daskworkergroup", klog.KObj(group), "pods", names)
	c.recorder.Eventf(group, corev1.EventTypeNormal, ReasonScaledDown, "Retired and deleted %d workers (%d without a registered Dask worker): %s",
		len(victims), len(res.value.unregistered), strings.Join(names, ", "))
	return 0, nil
}

// retireFailed reports a scheduler that could not retire workers. Running
// workers are deleted without retiring them only after RetireFallbackAfter.
func (c *Controller) retireFailed(ctx context.Context, key string, group *daskv1.DaskWorkerGroup, active []*corev1.Pod,
	callErr error, status *daskv1.DaskWorkerGroupStatus) (time.Duration, error) {
	desired := int(resources.Replicas(&group.Spec.Worker))
	excess := len(active) - desired
	if excess <= 0 {
		apimeta.RemoveStatusCondition(&status.Conditions, CondSchedulerReachable)
		return 0, nil
	}
	fallback := c.opts.RetireFallbackAfter
	var plan string
	if fallback > 0 {
		plan = fmt.Sprintf("running workers will be deleted without retiring them (their data is lost) once the scheduler has been unreachable for %s", fallback)
	} else {
		plan = "running workers are kept until the scheduler answers"
	}
	msg := fmt.Sprintf("cannot retire %d workers through the scheduler: %v; %s", excess, callErr, plan)
	setCondition(&status.Conditions, group.Generation, CondSchedulerReachable, metav1.ConditionFalse, "RetireFailed", msg)
	c.recorder.Event(group, corev1.EventTypeWarning, ReasonRetireFailed, msg)

	since := apimeta.FindStatusCondition(status.Conditions, CondSchedulerReachable).LastTransitionTime.Time
	if since.IsZero() {
		since = c.now()
	}
	if fallback > 0 && c.now().Sub(since) >= fallback {
		var ready []*corev1.Pod
		for _, p := range active {
			if podReady(p) {
				ready = append(ready, p)
			}
		}
		victims := newestFirst(ready)[:min(excess, len(ready), c.opts.MaxPodOpsPerSync)]
		if err := c.deleteWorkers(ctx, key, group, victims, "fallback"); err != nil {
			return 0, err
		}
		names := make([]string, len(victims))
		for i, p := range victims {
			names[i] = p.Name
		}
		klog.InfoS("Deleted running workers without retiring them", "daskworkergroup", klog.KObj(group), "pods", names, "err", callErr)
		c.recorder.Eventf(group, corev1.EventTypeWarning, ReasonFallbackScaleDown,
			"Scheduler unreachable for %s: deleted %d running workers without retiring them: %s",
			c.now().Sub(since).Round(time.Second), len(victims), strings.Join(names, ", "))
		return 0, nil
	}
	return retryRetireAfter, nil
}

// matchRetiredWorkers maps the workers the scheduler retired to Pods: by
// name (workers run with --name $(DASK_WORKER_NAME)), else by the IP in the
// worker's address. It returns the Pods and the workers it could not map.
func matchRetiredWorkers(retired []daskapi.Worker, pods []*corev1.Pod) ([]*corev1.Pod, []string) {
	byName := make(map[string]*corev1.Pod, len(pods))
	byIP := make(map[string]*corev1.Pod, len(pods))
	for _, p := range pods {
		byName[p.Name] = p
		if p.Status.PodIP != "" {
			byIP[p.Status.PodIP] = p
		}
	}
	seen := map[string]bool{}
	var victims []*corev1.Pod
	var unknown []string
	for _, w := range retired {
		p, ok := byName[w.Name]
		if !ok {
			p, ok = byIP[addressHost(w.Address)]
		}
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%s (%s)", w.Name, w.Address))
			continue
		}
		if !seen[p.Name] {
			seen[p.Name] = true
			victims = append(victims, p)
		}
	}
	sort.Strings(unknown)
	return victims, unknown
}

// addressHost returns the host of a Dask address such as tcp://10.0.0.5:4321.
func addressHost(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Hostname()
}
