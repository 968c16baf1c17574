package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
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
		c.hashes.forget([]string{"DaskWorkerGroup"}, key)
		c.batches.forget(key)
		c.uncertain.forget(key)
		c.statusPace.forget("DaskWorkerGroup/" + key)
		c.groupWrites.forget(key)
		c.legacyNoted.forget("DaskWorkerGroup/" + key)
		c.rolloutProgress.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	// A sync between our status write and its watch event compares with
	// what we wrote, not with the older cache (which would write it again).
	group = c.groupWrites.newest(key, group)
	if group.DeletionTimestamp != nil {
		return 0, nil
	}
	status := group.Status.DeepCopy()
	status.ObservedGeneration = group.Generation
	status.Selector = resources.WorkerGroupSelector(group.Spec.Cluster, group.Name).String()

	// Expectations are read before the Pods, as the ReplicaSet controller
	// does: the add event of a Pod this group just created may arrive
	// between the two reads, and a list taken before it, trusted because
	// the expectation is met by then, would create that Pod again.
	satisfied := c.expect.Satisfied(key)
	active, terminal, deleting := c.sortGroupPods(ns, group)

	var requeue time.Duration
	var manageErr error
	cluster, err := c.caches.cluster(ns, group.Spec.Cluster)
	waiting := func(reason, msg string) {
		if c.conditionWouldChange(group.Status.Conditions, daskv1.ConditionClusterFound, metav1.ConditionFalse) {
			c.recorder.Event(group, corev1.EventTypeNormal, daskv1.ReasonWaitingForCluster, msg)
		}
		setCondition(&status.Conditions, group.Generation, daskv1.ConditionClusterFound, metav1.ConditionFalse, reason, msg)
	}
	ref := metav1.GetControllerOf(group)
	switch {
	case apierrors.IsNotFound(err):
		waiting("ClusterNotFound", fmt.Sprintf("waiting for DaskCluster %q: no workers are created until it exists", group.Spec.Cluster))
	case err == nil && cluster.DeletionTimestamp != nil:
		waiting("ClusterDeleting", fmt.Sprintf("DaskCluster %q is being deleted: no workers are created", group.Spec.Cluster))
	case err == nil && ref != nil && ref.Kind == "DaskCluster" && ref.UID != cluster.UID:
		// A new cluster reuses the name of the deleted one that controls
		// this group: the group goes with its owner and never joins the
		// new cluster.
		waiting("OwnerDeleted", fmt.Sprintf("this group belongs to a deleted DaskCluster %q (uid %s), not to the one of that name now; it is being garbage collected",
			group.Spec.Cluster, ref.UID))
	case err != nil:
		return 0, err
	default:
		setCondition(&status.Conditions, group.Generation, daskv1.ConditionClusterFound, metav1.ConditionTrue, "ClusterFound",
			fmt.Sprintf("workers join DaskCluster %q", cluster.Name))
		if msg, disabled := resources.SchedulerAPIDisabled(cluster); disabled {
			c.warnOnce(group, group.Status.Conditions, daskv1.ConditionGracefulScaleDown, daskv1.ReasonSchedulerAPIDisabled, msg)
			setCondition(&status.Conditions, group.Generation, daskv1.ConditionGracefulScaleDown, metav1.ConditionFalse, daskv1.ReasonSchedulerAPIDisabled, msg)
		} else {
			apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionGracefulScaleDown)
		}
		suspended := resources.Suspended(cluster)
		if suspended {
			setCondition(&status.Conditions, group.Generation, daskv1.ConditionSuspended, metav1.ConditionTrue, "ClusterSuspended",
				fmt.Sprintf("DaskCluster %q is suspended (spec.suspend): its workers are deleted and none is created", cluster.Name))
		} else {
			apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionSuspended)
		}
		takingOver := c.incumbents.of(ctx, cluster).pending(group.Name)
		if takingOver {
			setCondition(&status.Conditions, group.Generation, daskv1.ConditionTakingOver, metav1.ConditionTrue, daskv1.ReasonTakingOver,
				"taking over this group's workers from the Python operator's Deployments: no worker is created or deleted until they are adopted")
		} else {
			apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionTakingOver)
		}
		gs := &groupSync{key: key, group: group, cluster: cluster, status: status, active: active, terminal: terminal, deleting: deleting}
		switch {
		case takingOver:
		case suspended:
			manageErr = c.suspendWorkers(ctx, key, group, append(active, terminal...))
		case satisfied:
			requeue, manageErr = c.manageWorkers(ctx, gs)
		case c.retirements.done(key):
			// Workers the scheduler retired go now, whatever creations are
			// still expected (an outage can leave some pending for minutes):
			// with restartPolicy Always a retired worker would start again
			// and rejoin the scheduler while its Pod waits.
			res, _ := c.retirements.take(key)
			requeue, manageErr = c.finishRetirement(ctx, gs, res)
		default:
			// Should the events of our own creations or deletions be lost,
			// look again when their expectations expire; creates that
			// failed uncertainly are settled by a read.
			again := c.resolveUncertain(ctx, key, ns)
			if c.expect.Satisfied(key) {
				active, terminal, deleting = c.sortGroupPods(ns, group)
				gs.active, gs.terminal, gs.deleting = active, terminal, deleting
				requeue, manageErr = c.manageWorkers(ctx, gs)
			} else {
				requeue = soonest(again, c.expect.Remaining(key))
			}
		}
	}

	desired := resources.Replicas(&group.Spec.Worker)
	status.Replicas, status.ReadyReplicas = int32(len(active)), countReady(active)
	setWorkersReady(&status.Conditions, group.Generation, status.ReadyReplicas, desired)
	c.rolloutStatus(key, group, active, status)

	progressOnly, settled := groupStatusPacing(&group.Status, status, desired)
	wait, err := writeStatus(ctx, c.Base, statusWrite[*daskv1.DaskWorkerGroup]{
		kind: "DaskWorkerGroup", key: key, obj: group, same: equality.Semantic.DeepEqual(&group.Status, status),
		update: func(ctx context.Context) (*daskv1.DaskWorkerGroup, error) {
			updated := group.DeepCopy()
			updated.Status = *status
			return c.dask.KubernetesV1().DaskWorkerGroups(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		},
		writes:  c.groupWrites,
		paceKey: "DaskWorkerGroup/" + key, factor: 1, progressOnly: progressOnly, settled: settled,
	})
	if err != nil {
		return 0, errors.Join(manageErr, err)
	}
	return soonest(requeue, wait), manageErr
}

// groupSync is the state of one worker group's sync, as the Job
// controller's syncJobCtx: what it read, and the status it computes, handed
// to the steps that manage the group's workers.
type groupSync struct {
	key     string
	group   *daskv1.DaskWorkerGroup
	cluster *daskv1.DaskCluster
	status  *daskv1.DaskWorkerGroupStatus
	// active Pods run or may; terminal ones ended; deleting counts those
	// being deleted and not gone yet (a rollout's surge counts them).
	active, terminal []*corev1.Pod
	deleting         int
}

// sortGroupPods reads the group's Pods from the cache: the active ones, the
// ended ones, and how many are terminating (a rollout's surge counts them).
func (c *Controller) sortGroupPods(ns string, group *daskv1.DaskWorkerGroup) (active, terminal []*corev1.Pod, deleting int) {
	for _, p := range c.groupPods(ns, string(group.UID)) {
		switch {
		case p.DeletionTimestamp != nil:
			if !podTerminal(p) {
				deleting++
			}
		case podTerminal(p):
			terminal = append(terminal, p)
		default:
			active = append(active, p)
		}
	}
	return active, terminal, deleting
}

// suspendWorkers deletes every worker Pod of a suspended cluster's group.
// They are not retired: the user stopped the cluster, scheduler included, so
// there is nothing to move their results to.
func (c *Controller) suspendWorkers(ctx context.Context, key string, group *daskv1.DaskWorkerGroup, pods []*corev1.Pod) error {
	c.retirements.take(key) // a retire that ended tells of Pods about to go
	if len(pods) == 0 {
		return nil
	}
	if err := c.deleteWorkers(ctx, key, group, pods, "suspended"); err != nil {
		return err
	}
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Name
	}
	klog.InfoS("Deleted the workers of a suspended cluster", "daskworkergroup", klog.KObj(group), "pods", names)
	c.recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonSuspended, "Cluster suspended: deleted %d worker Pods: %s", len(pods), nameList(names))
	return nil
}

type hashEntry struct {
	uid        types.UID
	generation int64
	hash       string
}

// rolloutStatus sets updatedReplicas, the template hash and the Updated
// condition: False while workers run an outdated template or a rollout has
// not made replicas of them yet, True otherwise (what `kubectl wait
// --for=condition=Updated` waits on after a change). Scaling and creation
// leave it True: it flips only for a rollout, so that it costs no status
// writes of its own. It ends a rollout's Progressing condition when the
// rollout completes.
func (c *Controller) rolloutStatus(key string, group *daskv1.DaskWorkerGroup, active []*corev1.Pod, status *daskv1.DaskWorkerGroupStatus) {
	hash := c.hashes.worker(key, group)
	var updated int32
	for _, p := range active {
		if !resources.Outdated(p, hash) {
			updated++
		}
	}
	status.UpdatedReplicas, status.TemplateHash = updated, hash
	desired := resources.Replicas(&group.Spec.Worker)
	outdated := int32(len(active)) - updated
	gen := group.Generation
	old := apimeta.FindStatusCondition(group.Status.Conditions, daskv1.ConditionProgressing)
	rolling := old != nil && old.Reason != daskv1.ReasonRolloutComplete
	switch {
	case outdated > 0 && resources.WorkerRollout(&group.Spec.Worker).OnDelete:
		setCondition(&status.Conditions, gen, daskv1.ConditionUpdated, metav1.ConditionFalse, daskv1.ReasonOnDelete,
			fmt.Sprintf("%d workers run an outdated template; spec.worker.strategy.type is OnDelete: each is replaced only when its Pod is deleted", outdated))
	case outdated > 0 || rolling && updated < desired:
		setCondition(&status.Conditions, gen, daskv1.ConditionUpdated, metav1.ConditionFalse, daskv1.ReasonRollingUpdate,
			fmt.Sprintf("%d of %d workers run template %s; %d outdated are being replaced", updated, desired, hash, outdated))
	default:
		setCondition(&status.Conditions, gen, daskv1.ConditionUpdated, metav1.ConditionTrue, "AllUpdated",
			fmt.Sprintf("every worker runs template %s", hash))
		if rolling {
			klog.InfoS("Rollout complete", "daskworkergroup", klog.KObj(group), "templateHash", hash)
			c.recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonRolloutComplete, "Every worker runs template %s", hash)
			setCondition(&status.Conditions, gen, daskv1.ConditionProgressing, metav1.ConditionTrue, daskv1.ReasonRolloutComplete,
				fmt.Sprintf("no worker runs an outdated template (current: %s)", hash))
		}
	}
}

func (c *Controller) conditionWouldChange(conds []metav1.Condition, typ string, status metav1.ConditionStatus) bool {
	old := apimeta.FindStatusCondition(conds, typ)
	return old == nil || old.Status != status
}

// manageWorkers brings the number of active worker Pods to spec.worker.replicas.
func (c *Controller) manageWorkers(ctx context.Context, s *groupSync) (time.Duration, error) {
	key, group, cluster, status, active, terminal, deleting := s.key, s.group, s.cluster, s.status, s.active, s.terminal, s.deleting
	// Workers the scheduler retired are gone from Dask: remove their Pods
	// whatever the count now is; replacements follow.
	if res, ok := c.retirements.take(key); ok {
		return c.finishRetirement(ctx, s, res)
	}

	var errs []error
	if len(terminal) > 0 {
		errs = append(errs, c.deleteWorkers(ctx, key, group, terminal, "ended"))
	}
	// Labels and annotations added to the group or its cluster reach
	// running workers. The template's metadata is the same for every Pod.
	template := resources.WorkerPodWithHash(group, cluster, group.Name, c.opts.ClusterDomain, c.hashes.worker(key, group))
	for _, p := range active {
		if patch := resources.MetadataPatch(p, template); patch != nil {
			if _, err := c.kube.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	desired := int(resources.Replicas(&group.Spec.Worker))
	hash := c.hashes.worker(key, group)
	var outdated []*corev1.Pod
	for _, p := range active {
		if resources.Outdated(p, hash) {
			outdated = append(outdated, p)
		}
	}
	rollout := resources.WorkerRollout(&group.Spec.Worker)
	if len(outdated) > 0 && !rollout.OnDelete {
		requeue, err := c.rollWorkers(ctx, s, outdated, rollout)
		return requeue, errors.Join(append(errs, err)...)
	}
	diff := len(active) - desired
	if diff <= 0 {
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionSchedulerReachable)
	}
	var requeue time.Duration
	switch {
	case diff < 0:
		var err error
		klog.V(2).InfoS("Scaling up", "daskworkergroup", klog.KObj(group), "replicas", desired, "active", len(active),
			"terminating", deleting, "ended", len(terminal))
		requeue, err = c.createWorkers(ctx, s, -diff)
		errs = append(errs, err)
	case diff > 0:
		// Outdated workers (OnDelete) go first.
		errs = append(errs, c.scaleDown(ctx, s, outdatedFirst(active, hash), diff))
	}
	return requeue, errors.Join(errs...)
}

// outdatedFirst ranks Pods for scale-down, the outdated ones first.
func outdatedFirst(pods []*corev1.Pod, hash string) []*corev1.Pod {
	ranked := rankForScaleDown(pods)
	out := make([]*corev1.Pod, 0, len(ranked))
	for _, old := range []bool{true, false} {
		for _, p := range ranked {
			if resources.Outdated(p, hash) == old {
				out = append(out, p)
			}
		}
	}
	return out
}

// rollWorkers replaces outdated workers, as a Deployment's rolling update
// does, but Dask-aware: at most replicas+maxSurge Pods exist (terminating
// ones included), at least replicas-maxUnavailable are Ready, and every
// outdated worker is retired through the scheduler (its results move to
// other workers) before its Pod is deleted; the scheduler-unreachable
// fallback never applies to a rollout.
func (c *Controller) rollWorkers(ctx context.Context, s *groupSync, outdated []*corev1.Pod, rollout resources.Rollout) (time.Duration, error) {
	key, group, status, active, terminating := s.key, s.group, s.status, s.active, s.deleting
	desired := int(resources.Replicas(&group.Spec.Worker))
	hash := c.hashes.worker(key, group)
	var readyTotal, unreadyOld int
	var unreadyNew []*corev1.Pod
	for _, p := range active {
		switch {
		case podReady(p):
			readyTotal++
		case resources.Outdated(p, hash):
			unreadyOld++
		default:
			unreadyNew = append(unreadyNew, p)
		}
	}
	current := len(active) - len(outdated)

	var errs []error
	var requeue time.Duration
	// New workers, up to the surge (Pods still terminating count: their
	// resources are not free yet).
	create := min(desired+rollout.MaxSurge-len(active)-terminating, desired-current)
	var createErr error
	if create > 0 {
		requeue, createErr = c.createWorkers(ctx, s, create)
		errs = append(errs, createErr)
	}
	// Outdated workers, as many as availability allows: any not Ready, and
	// Ready ones beyond replicas-maxUnavailable. A group scaled down during
	// the rollout sheds its excess too.
	remove := unreadyOld + max(0, readyTotal-(desired-rollout.MaxUnavailable))
	remove = min(len(outdated), max(remove, len(active)-desired-rollout.MaxSurge))
	retiring := c.retirements.running(key)
	if remove > 0 && !retiring {
		errs = append(errs, c.scaleDown(ctx, s, rankForScaleDown(outdated), remove))
		retiring = true
	}

	msg := fmt.Sprintf("rolling out worker template %s: %d of %d workers updated, %d outdated (maxSurge %d, maxUnavailable %d)",
		hash, current, desired, len(outdated), rollout.MaxSurge, rollout.MaxUnavailable)
	if old := apimeta.FindStatusCondition(group.Status.Conditions, daskv1.ConditionProgressing); old == nil || old.Reason != daskv1.ReasonRollingUpdate && old.Reason != daskv1.ReasonProgressDeadlineExceeded {
		klog.InfoS("Rolling out a new worker template", "daskworkergroup", klog.KObj(group), "templateHash", hash,
			"outdated", len(outdated), "maxSurge", rollout.MaxSurge, "maxUnavailable", rollout.MaxUnavailable)
		c.recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonRollingUpdate, "Rolling out worker template %s: %d outdated workers are retired through the scheduler and replaced, at most %d above replicas and %d not Ready",
			hash, len(outdated), rollout.MaxSurge, rollout.MaxUnavailable)
	}
	// Stalled: nothing can move until new workers are Ready, or can be
	// created at all (quota, admission), or Pods still terminating free the
	// surge; and that has lasted longer than the progress deadline.
	now := c.now()
	since := c.rolloutProgress.since(key, fmt.Sprintf("%d/%d/%d/%d", readyTotal, len(outdated), current, terminating), now)
	var waiting, stall string
	switch {
	case create <= 0 && !retiring && len(unreadyNew) > 0:
		oldest := unreadyNew[0]
		for _, p := range unreadyNew {
			if p.CreationTimestamp.Before(&oldest.CreationTimestamp) {
				oldest = p
			}
		}
		since = oldest.CreationTimestamp.Time
		waiting = fmt.Sprintf("waiting for %d new workers to become Ready", len(unreadyNew))
		stall = fmt.Sprintf("%d new workers not Ready after %s (for example Pod %s, %s); no more outdated worker is retired until they are",
			len(unreadyNew), rollout.ProgressDeadline, oldest.Name, podStateSummary(oldest))
	case createErr != nil && !namespaceTerminating(createErr):
		waiting = "new workers cannot be created yet: " + createErr.Error()
		stall = fmt.Sprintf("no new worker could be created for %s: %v", rollout.ProgressDeadline, createErr)
	case create <= 0 && !retiring && terminating > 0:
		waiting = fmt.Sprintf("waiting for %d Pods still terminating, which take up the surge", terminating)
		stall = fmt.Sprintf("%d Pods still terminating after %s take up the surge (maxSurge %d): no new worker is created until they are gone",
			terminating, rollout.ProgressDeadline, rollout.MaxSurge)
	}
	if stall != "" {
		waited := now.Sub(since)
		if waited < rollout.ProgressDeadline {
			setCondition(&status.Conditions, group.Generation, daskv1.ConditionProgressing, metav1.ConditionTrue, daskv1.ReasonRollingUpdate, msg+"; "+waiting)
			return soonest(requeue, rollout.ProgressDeadline-waited), errors.Join(errs...)
		}
		stallMsg := fmt.Sprintf("%s; paused: %s", msg, stall)
		if c.conditionWouldChange(group.Status.Conditions, daskv1.ConditionProgressing, metav1.ConditionFalse) {
			c.recorder.Event(group, corev1.EventTypeWarning, daskv1.ReasonProgressDeadlineExceeded, stallMsg)
		}
		setCondition(&status.Conditions, group.Generation, daskv1.ConditionProgressing, metav1.ConditionFalse, daskv1.ReasonProgressDeadlineExceeded, stallMsg)
		return requeue, errors.Join(errs...)
	}
	if old := apimeta.FindStatusCondition(group.Status.Conditions, daskv1.ConditionProgressing); old != nil && old.Reason == daskv1.ReasonProgressDeadlineExceeded {
		c.recorder.Event(group, corev1.EventTypeNormal, daskv1.ReasonRolloutResumed, "New workers are Ready: the rollout goes on")
	}
	setCondition(&status.Conditions, group.Generation, daskv1.ConditionProgressing, metav1.ConditionTrue, daskv1.ReasonRollingUpdate, msg)
	return requeue, errors.Join(errs...)
}

// podStateSummary says in a few words why a Pod is not Ready.
func podStateSummary(p *corev1.Pod) string {
	for _, s := range p.Status.ContainerStatuses {
		if w := s.State.Waiting; w != nil && w.Reason != "" {
			return fmt.Sprintf("container %s waiting: %s", s.Name, w.Reason)
		}
	}
	if p.Spec.NodeName == "" {
		return "not scheduled"
	}
	return fmt.Sprintf("phase %s", cmp.Or(string(p.Status.Phase), "unknown"))
}

func (c *Controller) createWorkers(ctx context.Context, s *groupSync, count int) (time.Duration, error) {
	key, group, cluster, status := s.key, s.group, s.cluster, s.status
	if wait := c.batches.wait(key, c.now()); wait > 0 {
		return wait, nil
	}
	n := min(count, c.opts.MaxPodOpsPerSync)
	names := make([]string, n)
	for i := range names {
		names[i] = resources.NewWorkerName(group.Name)
	}
	c.expect.ExpectCreations(key, names...)
	hash := c.hashes.worker(key, group)
	successes, attempted, err := slowStartBatch(n, 1, func(i int) error {
		pod := resources.WorkerPodWithHash(group, cluster, names[i], c.opts.ClusterDomain, hash)
		if _, err := c.kube.CoreV1().Pods(group.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			if createMayHaveHappened(err) {
				c.uncertain.add(key, names[i], c.now()) // expected until a read says (uncertain.go)
			} else {
				c.expect.CreationObserved(key, names[i]) // its event will never come
			}
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
		c.recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonScaledUp, "Created %d worker Pods", successes)
		c.legacyNoted.note(c.recorder, group, "DaskWorkerGroup", key, group.UID, &group.Spec.Worker.Spec, group.Annotations, cluster.Annotations)
	}
	if err != nil && namespaceTerminating(err) {
		return 0, nil
	}
	if err != nil {
		msg := fmt.Sprintf("creating worker Pods failed after %d of %d: %v", successes, count, err)
		c.recorder.Event(group, corev1.EventTypeWarning, daskv1.ReasonFailedCreate, msg)
		setCondition(&status.Conditions, group.Generation, daskv1.ConditionReplicaFailure, metav1.ConditionTrue, daskv1.ReasonFailedCreate, msg)
		return 0, errors.New(msg)
	}
	apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionReplicaFailure)
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
		c.recorder.Event(group, corev1.EventTypeWarning, daskv1.ReasonFailedDelete, err.Error())
		return err
	}
	return nil
}

// scaleDown removes diff workers. Pods whose worker cannot have joined the
// scheduler (no Pod IP, or no container started) hold no data and go at
// once. Every other Pod, Ready or not (a worker whose readiness probe fails
// under load still holds results), goes through the scheduler, in the
// background: Pods whose worker never registered are deleted, and the
// workers chosen from this group are retired by address (the scheduler moves
// their data away first) before their Pods are deleted.
//
// ranked are the Pods to choose from, first to remove first.
func (c *Controller) scaleDown(ctx context.Context, s *groupSync, ranked []*corev1.Pod, diff int) error {
	key, group, cluster := s.key, s.group, s.cluster
	n := min(diff, c.opts.MaxPodOpsPerSync)
	var unstarted, started []*corev1.Pod
	for _, p := range ranked {
		if workerCannotHaveJoined(p) {
			unstarted = append(unstarted, p)
		} else {
			started = append(started, p)
		}
	}
	if len(unstarted) > 0 {
		victims := unstarted[:min(n, len(unstarted))]
		if err := c.deleteWorkers(ctx, key, group, victims, "unready"); err != nil {
			return err
		}
		klog.InfoS("Deleted worker Pods that had not started", "daskworkergroup", klog.KObj(group), "count", len(victims))
		c.recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonScaledDown, "Deleted %d worker Pods that had not started", len(victims))
		return nil
	}
	if c.retirements.running(key) {
		return nil // a retire in progress is waited for; its end enqueues the group
	}
	target := schedulerTarget(cluster)
	timeout := c.opts.RetireTimeout
	hash := c.hashes.worker(key, group)
	candidates := make([]workerRef, len(started))
	for i, p := range started {
		candidates[i] = workerRef{name: p.Name, ip: p.Status.PodIP, tier: victimTier(p, hash)}
	}
	base := c.schedulerContext()
	c.retirements.start(key, func() (retirement, error) {
		ctx, cancel := context.WithTimeout(base, timeout)
		defer cancel()
		return c.retire(ctx, target, candidates, n)
	}, func() { c.groups.add(key) })
	klog.InfoS("Asking the scheduler to retire workers", "daskworkergroup", klog.KObj(group), "count", n)
	return nil
}

// workerCannotHaveJoined tells a Pod whose Dask worker cannot have
// registered with the scheduler: it has no address, or none of its
// containers has started.
func workerCannotHaveJoined(p *corev1.Pod) bool {
	if p.Status.PodIP == "" {
		return true
	}
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Running != nil || s.State.Terminated != nil || s.RestartCount > 0 {
			return false
		}
	}
	return p.Status.Phase == corev1.PodPending
}

// workerRef is what identifies a worker Pod to the scheduler, with its
// victimTier.
type workerRef struct {
	name, ip string
	tier     int
}

// victimTier orders scale-down victims before the bytes their workers hold
// do: not Ready first, then outdated, so that a rollout with
// maxUnavailable 0 does not retire Ready workers while unready outdated ones
// stay, and OnDelete scale-downs take outdated workers first.
func victimTier(p *corev1.Pod, hash string) int {
	tier := 0
	if podReady(p) {
		tier += 2
	}
	if !resources.Outdated(p, hash) {
		tier++
	}
	return tier
}

// retirement is the outcome of a graceful scale-down: Pods whose worker
// has not joined the scheduler (they hold no data), the workers the
// scheduler retired, and the addresses asked for, by Pod (a Pod may run
// several workers).
type retirement struct {
	unregistered []string
	retired      []daskapi.Worker
	asked        map[string][]string
}

// errSchedulerUnreachable marks a scale-down that could not even list the
// scheduler's workers: only then may the fallback delete running workers.
// A scheduler that answers but fails or is slow to retire keeps its workers.
type errSchedulerUnreachable struct{ err error }

func (e errSchedulerUnreachable) Error() string { return e.err.Error() }
func (e errSchedulerUnreachable) Unwrap() error { return e.err }

// retire removes n workers of one group gracefully. candidates are the
// group's started Pods, first to remove first. Pods the scheduler does not
// know go first; then the first registered candidates are retired by their
// workers' addresses, so the scheduler retires no worker of another group.
func (c *Controller) retire(ctx context.Context, target daskapi.Target, candidates []workerRef, n int) (retirement, error) {
	listCtx, cancel := context.WithTimeout(ctx, c.opts.SchedulerCallTimeout)
	known, err := c.dashAPI.GetWorkers(listCtx, target)
	cancel()
	if err != nil {
		return retirement{}, errSchedulerUnreachable{err}
	}
	addrs := workerAddresses(known, candidates)
	// Among registered workers, those holding the fewest results go first,
	// as Dask's own choice (workers_to_close) does: less data to move. Ties,
	// and schedulers that do not tell, keep the group's order.
	memCtx, cancel := context.WithTimeout(ctx, c.opts.SchedulerCallTimeout)
	if held, err := c.dashAPI.WorkerMemory(memCtx, target); err == nil {
		candidates = byHeldBytes(candidates, addrs, held)
	}
	cancel()
	var out retirement
	for _, p := range candidates {
		if len(out.unregistered) < n && len(addrs[p.name]) == 0 {
			out.unregistered = append(out.unregistered, p.name)
		}
	}
	var toRetire []string
	out.asked = map[string][]string{}
	for i := 0; i < len(candidates) && len(out.unregistered)+len(out.asked) < n; i++ {
		if a := addrs[candidates[i].name]; len(a) > 0 {
			toRetire = append(toRetire, a...)
			out.asked[candidates[i].name] = a
		}
	}
	if len(toRetire) == 0 {
		return out, nil
	}
	out.retired, err = c.dashAPI.RetireWorkers(ctx, target, toRetire)
	// A worker that started slowly may have registered while the retire
	// ran (minutes, or until it timed out), and hold results by now: a Pod
	// counts as unregistered only if a listing taken after the retire still
	// does not know it. Without one, none does. After a retire that timed
	// out the listing gets a deadline of its own; after the work was
	// cancelled (shutdown, the Lease lost) no call is made.
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		out.unregistered = nil
		return out, err
	}
	listCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), c.opts.SchedulerCallTimeout)
	after, lerr := c.dashAPI.GetWorkers(listCtx, target)
	cancel()
	if lerr != nil {
		out.unregistered = nil
	} else {
		fresh := workerAddresses(after, candidates)
		out.unregistered = slices.DeleteFunc(out.unregistered, func(name string) bool { return len(fresh[name]) > 0 })
	}
	return out, err
}

// fullyRetired keeps the Pods every worker of which the scheduler retired:
// a Pod running several workers (--nworkers) whose retire left one of them
// still holds that worker's results.
func fullyRetired(pods []*corev1.Pod, asked map[string][]string, retired []daskapi.Worker) []*corev1.Pod {
	gone := make(map[string]bool, len(retired))
	for _, w := range retired {
		gone[w.Address] = true
	}
	return slices.DeleteFunc(pods, func(p *corev1.Pod) bool {
		if len(asked[p.Name]) < 2 {
			return false // one worker: matched to the Pod by name or IP
		}
		for _, a := range asked[p.Name] {
			if !gone[a] {
				return true
			}
		}
		return false
	})
}

// byHeldBytes orders candidates by their tier (victimTier), then by the
// bytes their workers hold, fewest first, keeping the given order among equals.
func byHeldBytes(candidates []workerRef, addrs map[string][]string, held map[string]int64) []workerRef {
	bytes := func(p workerRef) int64 {
		var n int64
		for _, a := range addrs[p.name] {
			n += held[a]
		}
		return n
	}
	out := slices.Clone(candidates)
	slices.SortStableFunc(out, func(a, b workerRef) int { return cmp.Or(cmp.Compare(a.tier, b.tier), cmp.Compare(bytes(a), bytes(b))) })
	return out
}

// workerAddresses maps each candidate Pod to the addresses of its Dask
// workers: by worker name (workers run with --name $(DASK_WORKER_NAME)), else
// by the IP in the worker's address (a Pod may run several workers).
func workerAddresses(known []daskapi.Worker, candidates []workerRef) map[string][]string {
	byName := map[string][]string{}
	byIP := map[string][]string{}
	for _, w := range known {
		byName[w.Name] = append(byName[w.Name], w.Address)
		if h := addressHost(w.Address); h != "" {
			byIP[h] = append(byIP[h], w.Address)
		}
	}
	out := make(map[string][]string, len(candidates))
	for _, p := range candidates {
		if a := byName[p.name]; len(a) > 0 {
			out[p.name] = a
		} else if p.ip != "" {
			out[p.name] = byIP[p.ip]
		}
	}
	return out
}

// finishRetirement deletes the Pods whose worker never registered and the
// Pods of the workers the scheduler retired, then handles a failed retire.
func (c *Controller) finishRetirement(ctx context.Context, s *groupSync, res asyncResult[retirement]) (time.Duration, error) {
	key, group, status, active := s.key, s.group, s.status, s.active
	victims, unknown := matchRetiredWorkers(res.value.retired, active)
	victims = fullyRetired(victims, res.value.asked, res.value.retired)
	registered := len(victims)
	// Pods without a registered worker go only while there are still too many
	// (the group may have been scaled up again during the retire).
	// An outdated one (a rollout) goes anyway: it is being replaced.
	excess := len(active) - int(resources.Replicas(&group.Spec.Worker)) - registered
	hash := c.hashes.worker(key, group)
	for _, p := range active {
		if !slices.Contains(res.value.unregistered, p.Name) || slices.Contains(victims, p) {
			continue
		}
		if excess > 0 || resources.Outdated(p, hash) {
			victims = append(victims, p)
			excess--
		}
	}
	if len(unknown) > 0 {
		c.recorder.Eventf(group, corev1.EventTypeWarning, daskv1.ReasonRetiredUnknown,
			"The scheduler retired workers %s that match no Pod of this group by name or IP; start workers with --name $(DASK_WORKER_NAME)",
			nameList(unknown))
	}
	if len(victims) > 0 {
		if err := c.deleteWorkers(ctx, key, group, victims[:registered], "retired"); err != nil {
			return 0, err
		}
		if err := c.deleteWorkers(ctx, key, group, victims[registered:], "unregistered"); err != nil {
			return 0, err
		}
		names := make([]string, len(victims))
		for i, p := range victims {
			names[i] = p.Name
		}
		klog.InfoS("Deleted retired workers", "daskworkergroup", klog.KObj(group), "pods", names)
		c.recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonScaledDown, "Retired and deleted %d workers (%d without a registered Dask worker): %s",
			len(victims), len(victims)-registered, nameList(names))
	}
	if res.err != nil {
		return c.retireFailed(ctx, s, victims, res.err)
	}
	if len(victims) == 0 && len(res.value.asked) > 0 {
		return c.noWorkerRetired(s, res.value.asked), nil
	}
	setCondition(&status.Conditions, group.Generation, daskv1.ConditionSchedulerReachable, metav1.ConditionTrue, "WorkersRetired",
		fmt.Sprintf("the scheduler retired %d workers; %d Pods had no worker registered", registered, len(victims)-registered))
	if len(victims) == 0 {
		return retryRetireAfter, nil
	}
	return 0, nil
}

// maxRetireBackoff bounds the pause between retires the scheduler refused.
const maxRetireBackoff = 5 * time.Minute

// noWorkerRetired reports a retire the scheduler answered without retiring
// any worker asked for (Dask answers {} when it cannot move their data): the
// scale-down does not progress, which the group's SchedulerReachable
// condition and one Warning say. It asks again after a pause as long as the
// refusals have lasted (5 s, doubling, at most 5 minutes).
func (c *Controller) noWorkerRetired(s *groupSync, asked map[string][]string) time.Duration {
	group, status := s.group, s.status
	msg := fmt.Sprintf("the scale-down does not progress: the scheduler retired none of the workers asked for (%s); "+
		"Dask does so when it cannot move their results to the workers that stay (for example, too little memory there); "+
		"it is asked again, less and less often", nameList(slices.Sorted(maps.Keys(asked))))
	wait := retryRetireAfter
	if old := apimeta.FindStatusCondition(group.Status.Conditions, daskv1.ConditionSchedulerReachable); old != nil &&
		old.Status == metav1.ConditionFalse && old.Reason == daskv1.ReasonNoWorkerRetired {
		wait = min(max(c.now().Sub(old.LastTransitionTime.Time), retryRetireAfter), maxRetireBackoff)
	}
	c.warnOnce(group, group.Status.Conditions, daskv1.ConditionSchedulerReachable, daskv1.ReasonNoWorkerRetired, msg)
	setCondition(&status.Conditions, group.Generation, daskv1.ConditionSchedulerReachable, metav1.ConditionFalse, daskv1.ReasonNoWorkerRetired, msg)
	klog.InfoS("The scheduler retired no worker", "daskworkergroup", klog.KObj(group), "asked", len(asked), "retryAfter", wait)
	return wait
}

// retireFailed reports a scheduler that could not retire workers. Running
// workers are deleted without retiring them only when the scheduler has been
// unreachable (its workers could not even be listed) for RetireFallbackAfter;
// a scheduler that answers but is slow or fails to retire keeps its workers.
func (c *Controller) retireFailed(ctx context.Context, s *groupSync, deleted []*corev1.Pod, callErr error) (time.Duration, error) {
	key, group, status, active := s.key, s.group, s.status, s.active
	var remaining []*corev1.Pod
	for _, p := range active {
		if !slices.Contains(deleted, p) {
			remaining = append(remaining, p)
		}
	}
	desired := int(resources.Replicas(&group.Spec.Worker))
	excess := len(remaining) - desired
	rolling := 0 // outdated workers a rollout waits to retire
	if !resources.WorkerRollout(&group.Spec.Worker).OnDelete {
		hash := c.hashes.worker(key, group)
		for _, p := range remaining {
			if resources.Outdated(p, hash) {
				rolling++
			}
		}
	}
	if rolling > 0 {
		// The surge of a rollout is no excess: only current workers beyond
		// replicas are (a group scaled down during the rollout).
		excess -= rolling
	}
	if excess <= 0 && rolling == 0 {
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionSchedulerReachable)
		return 0, nil
	}
	var unreachable errSchedulerUnreachable
	isUnreachable := errors.As(callErr, &unreachable)
	fallback := c.opts.RetireFallbackAfter
	var reason, plan string
	switch {
	case !isUnreachable:
		reason = "RetireFailed"
		plan = "the workers are kept (they may hold results) and asked to retire again"
	case fallback > 0:
		reason = "SchedulerUnreachable"
		plan = fmt.Sprintf("running workers will be deleted without retiring them (their data is lost) once the scheduler has been unreachable for %s", fallback)
	default:
		reason = "SchedulerUnreachable"
		plan = "running workers are kept until the scheduler answers"
	}
	if errors.Is(callErr, daskapi.ErrNotSupported) {
		plan = fmt.Sprintf("the scheduler serves no /api/v1 routes (%s must include %s); %s",
			resources.EnvSchedulerHTTPRoutes, resources.SchedulerAPIRoute, plan)
	}
	msg := fmt.Sprintf("cannot retire %d workers through the scheduler: %v; %s", excess, callErr, plan)
	if excess <= 0 {
		// Only a rollout waits: it never replaces a worker the scheduler
		// did not retire, whatever the fallback says.
		msg = fmt.Sprintf("cannot retire outdated workers through the scheduler: %v; the rollout waits (%d outdated workers are kept, they may hold results) and asks again", callErr, rolling)
	}
	old := apimeta.FindStatusCondition(status.Conditions, daskv1.ConditionSchedulerReachable)
	if old == nil || old.Status != metav1.ConditionFalse || old.Reason != reason {
		// The fallback's clock starts when the scheduler became unreachable.
		apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionSchedulerReachable)
		// One Warning when it starts failing, not one per retry (every
		// 5 s): the condition keeps the latest error.
		c.recorder.Event(group, corev1.EventTypeWarning, daskv1.ReasonRetireFailed, msg)
	}
	setCondition(&status.Conditions, group.Generation, daskv1.ConditionSchedulerReachable, metav1.ConditionFalse, reason, msg)

	since := apimeta.FindStatusCondition(status.Conditions, daskv1.ConditionSchedulerReachable).LastTransitionTime.Time
	if since.IsZero() {
		since = c.now()
	}
	if isUnreachable && fallback > 0 && excess > 0 && c.now().Sub(since) >= fallback {
		victims := outdatedFirst(remaining, c.hashes.worker(key, group))[:min(excess, len(remaining), c.opts.MaxPodOpsPerSync)]
		if err := c.deleteWorkers(ctx, key, group, victims, "fallback"); err != nil {
			return 0, err
		}
		names := make([]string, len(victims))
		for i, p := range victims {
			names[i] = p.Name
		}
		klog.InfoS("Deleted running workers without retiring them", "daskworkergroup", klog.KObj(group), "pods", names, "err", callErr)
		c.recorder.Eventf(group, corev1.EventTypeWarning, daskv1.ReasonFallbackScaleDown,
			"Scheduler unreachable for %s: deleted %d running workers without retiring them: %s",
			c.now().Sub(since).Round(time.Second), len(victims), nameList(names))
		return 0, nil
	}
	return retryRetireAfter, nil
}

// eventNames is how many names an event message lists; the log line that
// goes with it has them all. (The API server keeps about 1 kB of a message.)
const eventNames = 10

// nameList lists names for an event message: the first eventNames, and how
// many more there are.
func nameList(names []string) string {
	if len(names) <= eventNames {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:eventNames], ", "), len(names)-eventNames)
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
