package workergroup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dask-operator/dask-operator/pkg/kueue"

	"github.com/dask-operator/dask-operator/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/metrics"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

func (c *Controller) syncWorkerGroup(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	group, err := c.Caches.Group(ns, name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	// A sync between our status write and its watch event compares with
	// what we wrote, not with the older cache (which would write it again).
	group = c.groupWrites.Newest(key, group)
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
	cluster, err := c.Caches.Cluster(ns, group.Spec.Cluster)
	waiting := func(reason, msg string) {
		if c.conditionWouldChange(group.Status.Conditions, daskv1.ConditionClusterFound, metav1.ConditionFalse) {
			c.Recorder.Event(group, corev1.EventTypeNormal, daskv1.ReasonWaitingForCluster, msg)
		}
		controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionClusterFound, metav1.ConditionFalse, reason, msg)
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
	case daskv1.ManagedElsewhere(cluster.Spec.ManagedBy):
		// Another controller runs the cluster (spec.managedBy).
		return 0, nil
	default:
		controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionClusterFound, metav1.ConditionTrue, "ClusterFound",
			fmt.Sprintf("workers join DaskCluster %q", cluster.Name))
		if msg, disabled := resources.SchedulerAPIDisabled(cluster); disabled {
			c.WarnOnce(group, group.Status.Conditions, daskv1.ConditionGracefulScaleDown, daskv1.ReasonSchedulerAPIDisabled, msg)
			controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionGracefulScaleDown, metav1.ConditionFalse, daskv1.ReasonSchedulerAPIDisabled, msg)
		} else {
			apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionGracefulScaleDown)
		}
		adm, err := c.ClusterAdmission(cluster)
		if err != nil {
			return 0, err
		}
		suspended := resources.Suspended(cluster) || adm.Held
		switch {
		case resources.Suspended(cluster):
			controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionSuspended, metav1.ConditionTrue, "ClusterSuspended",
				fmt.Sprintf("DaskCluster %q is suspended (spec.suspend): its workers are deleted and none is created", cluster.Name))
		case adm.Held:
			controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionSuspended, metav1.ConditionTrue, adm.Reason,
				fmt.Sprintf("DaskCluster %q waits for Kueue (%s): no worker runs until it is admitted", cluster.Name, adm.Message))
		default:
			apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionSuspended)
		}
		var placement kueue.Flavor
		if adm.Queued && !adm.Held {
			group, placement, err = c.withinAdmission(group, cluster, adm, status)
			if err != nil {
				return 0, err
			}
		} else {
			apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionAdmitted)
		}
		takingOver := c.Incumbents.Of(ctx, cluster).Pending(group.Name)
		if takingOver {
			controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionTakingOver, metav1.ConditionTrue, daskv1.ReasonTakingOver,
				"taking over this group's workers from the Python operator's Deployments: no worker is created or deleted until they are adopted")
		} else {
			apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionTakingOver)
		}
		gs := &groupSync{key: key, group: group, cluster: cluster, status: status, active: active, terminal: terminal, deleting: deleting, placement: placement}
		switch {
		case takingOver:
		case suspended:
			manageErr = c.suspendWorkers(ctx, key, group, append(active, terminal...))
		case satisfied:
			requeue, manageErr = c.manageWorkers(ctx, gs)
		case c.retirements.Done(key):
			// Workers the scheduler retired go now, whatever creations are
			// still expected (an outage can leave some pending for minutes):
			// with restartPolicy Always a retired worker would start again
			// and rejoin the scheduler while its Pod waits.
			res, _ := c.retirements.Take(key)
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
				requeue = controller.Soonest(again, c.expect.Remaining(key))
			}
		}
	}

	desired := resources.Replicas(&group.Spec.Worker)
	status.Replicas, status.ReadyReplicas = int32(len(active)), controller.CountReady(active)
	controller.SetWorkersReady(&status.Conditions, group.Generation, status.ReadyReplicas, desired)
	c.rolloutStatus(key, group, active, status)

	progressOnly, settled := controller.GroupStatusPacing(&group.Status, status, desired)
	wait, err := controller.WriteStatus(ctx, c.Base, controller.StatusWrite[*daskv1.DaskWorkerGroup]{
		Kind: "DaskWorkerGroup", Key: key, Obj: group, Same: equality.Semantic.DeepEqual(&group.Status, status),
		Update: func(ctx context.Context) (*daskv1.DaskWorkerGroup, error) {
			updated := group.DeepCopy()
			updated.Status = *status
			return c.Dask.KubernetesV1().DaskWorkerGroups(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
		},
		Writes:  c.groupWrites,
		PaceKey: "DaskWorkerGroup/" + key, Factor: 1, ProgressOnly: progressOnly, Settled: settled,
	})
	if err != nil {
		return 0, errors.Join(manageErr, err)
	}
	return controller.Soonest(requeue, wait), manageErr
}

// groupSync is the state of one worker group's sync, as the Job
// controller's syncJobCtx: what it read, and the status it computes, handed
// to the steps that manage the group's workers.
type groupSync struct {
	// placement is what the flavors Kueue assigned put on new workers.
	placement kueue.Flavor
	key       string
	group     *daskv1.DaskWorkerGroup
	cluster   *daskv1.DaskCluster
	status    *daskv1.DaskWorkerGroupStatus
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
			if !controller.PodTerminal(p) {
				deleting++
			}
		case controller.PodTerminal(p):
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
	c.retirements.Take(key) // a retire that ended tells of Pods about to go
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
	c.Recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonSuspended, "Cluster suspended: deleted %d worker Pods: %s", len(pods), controller.NameList(names))
	return nil
}

// manageWorkers brings the number of active worker Pods to spec.worker.replicas.
func (c *Controller) manageWorkers(ctx context.Context, s *groupSync) (time.Duration, error) {
	key, group, cluster, status, active, terminal, deleting := s.key, s.group, s.cluster, s.status, s.active, s.terminal, s.deleting
	// Workers the scheduler retired are gone from Dask: remove their Pods
	// whatever the count now is; replacements follow.
	if res, ok := c.retirements.Take(key); ok {
		return c.finishRetirement(ctx, s, res)
	}

	var errs []error
	if len(terminal) > 0 {
		errs = append(errs, c.deleteWorkers(ctx, key, group, terminal, "ended"))
	}
	// Labels and annotations added to the group or its cluster reach
	// running workers. The template's metadata is the same for every Pod.
	template := resources.WorkerPodWithHash(group, cluster, group.Name, c.Opts.ClusterDomain, c.hashes.Worker(key, group))
	for _, p := range active {
		if patch := resources.MetadataPatch(p, template); patch != nil {
			if _, err := c.Kube.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	desired := int(resources.Replicas(&group.Spec.Worker))
	hash := c.hashes.Worker(key, group)
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

func (c *Controller) createWorkers(ctx context.Context, s *groupSync, count int) (time.Duration, error) {
	key, group, cluster, status := s.key, s.group, s.cluster, s.status
	if wait := c.batches.Wait(key, c.Now()); wait > 0 {
		return wait, nil
	}
	n := min(count, c.Opts.MaxPodOpsPerSync)
	names := make([]string, n)
	for i := range names {
		names[i] = resources.NewWorkerName(group.Name)
	}
	c.expect.ExpectCreations(key, names...)
	hash := c.hashes.Worker(key, group)
	successes, attempted, err := slowStartBatch(n, 1, func(i int) error {
		pod := resources.WorkerPodWithHash(group, cluster, names[i], c.Opts.ClusterDomain, hash)
		s.placement.Apply(&pod.Spec)
		if _, err := c.Kube.CoreV1().Pods(group.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			if createMayHaveHappened(err) {
				c.uncertain.add(key, names[i], c.Now()) // expected until a read says (uncertain.go)
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
		c.Recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonScaledUp, "Created %d worker Pods", successes)
		c.legacyNoted.Note(c.Recorder, group, "DaskWorkerGroup", key, group.UID, &group.Spec.Worker.Spec, group.Annotations, cluster.Annotations)
	}
	if err != nil && controller.NamespaceTerminating(err) {
		return 0, nil
	}
	if err != nil {
		msg := fmt.Sprintf("creating worker Pods failed after %d of %d: %v", successes, count, err)
		c.Recorder.Event(group, corev1.EventTypeWarning, daskv1.ReasonFailedCreate, msg)
		controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionReplicaFailure, metav1.ConditionTrue, daskv1.ReasonFailedCreate, msg)
		return 0, errors.New(msg)
	}
	apimeta.RemoveStatusCondition(&status.Conditions, daskv1.ConditionReplicaFailure)
	if c.Opts.WorkerBatchDelay > 0 && n < count {
		c.batches.Hold(key, c.Now().Add(c.Opts.WorkerBatchDelay))
		return c.Opts.WorkerBatchDelay, nil
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
		err := c.Kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
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
		c.Recorder.Event(group, corev1.EventTypeWarning, daskv1.ReasonFailedDelete, err.Error())
		return err
	}
	return nil
}
