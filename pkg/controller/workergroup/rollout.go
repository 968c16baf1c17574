package workergroup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Rollouts: replacing a group's workers when their template changes,
// RollingUpdate (surge first, retire the outdated through the scheduler,
// never below what is asked for less maxUnavailable) or OnDelete.

// rolloutStatus sets updatedReplicas, the template hash and the Updated
// condition: False while workers run an outdated template or a rollout has
// not made replicas of them yet, True otherwise (what `kubectl wait
// --for=condition=Updated` waits on after a change). Scaling and creation
// leave it True: it flips only for a rollout, so that it costs no status
// writes of its own. It ends a rollout's Progressing condition when the
// rollout completes.
func (c *Controller) rolloutStatus(key string, group *daskv1.DaskWorkerGroup, active []*corev1.Pod, status *daskv1.DaskWorkerGroupStatus) {
	hash := c.hashes.Worker(key, group)
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
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionUpdated, metav1.ConditionFalse, daskv1.ReasonOnDelete,
			fmt.Sprintf("%d workers run an outdated template; spec.worker.strategy.type is OnDelete: each is replaced only when its Pod is deleted", outdated))
	case outdated > 0 || rolling && updated < desired:
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionUpdated, metav1.ConditionFalse, daskv1.ReasonRollingUpdate,
			fmt.Sprintf("%d of %d workers run template %s; %d outdated are being replaced", updated, desired, hash, outdated))
	default:
		controller.SetCondition(&status.Conditions, gen, daskv1.ConditionUpdated, metav1.ConditionTrue, "AllUpdated",
			fmt.Sprintf("every worker runs template %s", hash))
		if rolling {
			klog.InfoS("Rollout complete", "daskworkergroup", klog.KObj(group), "templateHash", hash)
			c.Recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonRolloutComplete, "Every worker runs template %s", hash)
			controller.SetCondition(&status.Conditions, gen, daskv1.ConditionProgressing, metav1.ConditionTrue, daskv1.ReasonRolloutComplete,
				fmt.Sprintf("no worker runs an outdated template (current: %s)", hash))
		}
	}
}

func (c *Controller) conditionWouldChange(conds []metav1.Condition, typ string, status metav1.ConditionStatus) bool {
	old := apimeta.FindStatusCondition(conds, typ)
	return old == nil || old.Status != status
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
	hash := c.hashes.Worker(key, group)
	var readyTotal, unreadyOld int
	var unreadyNew []*corev1.Pod
	for _, p := range active {
		switch {
		case controller.PodReady(p):
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
	retiring := c.retirements.Running(key)
	if remove > 0 && !retiring {
		errs = append(errs, c.scaleDown(ctx, s, rankForScaleDown(outdated), remove))
		retiring = true
	}

	msg := fmt.Sprintf("rolling out worker template %s: %d of %d workers updated, %d outdated (maxSurge %d, maxUnavailable %d)",
		hash, current, desired, len(outdated), rollout.MaxSurge, rollout.MaxUnavailable)
	if old := apimeta.FindStatusCondition(group.Status.Conditions, daskv1.ConditionProgressing); old == nil || old.Reason != daskv1.ReasonRollingUpdate && old.Reason != daskv1.ReasonProgressDeadlineExceeded {
		klog.InfoS("Rolling out a new worker template", "daskworkergroup", klog.KObj(group), "templateHash", hash,
			"outdated", len(outdated), "maxSurge", rollout.MaxSurge, "maxUnavailable", rollout.MaxUnavailable)
		c.Recorder.Eventf(group, corev1.EventTypeNormal, daskv1.ReasonRollingUpdate, "Rolling out worker template %s: %d outdated workers are retired through the scheduler and replaced, at most %d above replicas and %d not Ready",
			hash, len(outdated), rollout.MaxSurge, rollout.MaxUnavailable)
	}
	// Stalled: nothing can move until new workers are Ready, or can be
	// created at all (quota, admission), or Pods still terminating free the
	// surge; and that has lasted longer than the progress deadline.
	now := c.Now()
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
	case createErr != nil && !controller.NamespaceTerminating(createErr):
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
			controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionProgressing, metav1.ConditionTrue, daskv1.ReasonRollingUpdate, msg+"; "+waiting)
			return controller.Soonest(requeue, rollout.ProgressDeadline-waited), errors.Join(errs...)
		}
		stallMsg := fmt.Sprintf("%s; paused: %s", msg, stall)
		if c.conditionWouldChange(group.Status.Conditions, daskv1.ConditionProgressing, metav1.ConditionFalse) {
			c.Recorder.Event(group, corev1.EventTypeWarning, daskv1.ReasonProgressDeadlineExceeded, stallMsg)
		}
		controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionProgressing, metav1.ConditionFalse, daskv1.ReasonProgressDeadlineExceeded, stallMsg)
		return requeue, errors.Join(errs...)
	}
	if old := apimeta.FindStatusCondition(group.Status.Conditions, daskv1.ConditionProgressing); old != nil && old.Reason == daskv1.ReasonProgressDeadlineExceeded {
		c.Recorder.Event(group, corev1.EventTypeNormal, daskv1.ReasonRolloutResumed, "New workers are Ready: the rollout goes on")
	}
	controller.SetCondition(&status.Conditions, group.Generation, daskv1.ConditionProgressing, metav1.ConditionTrue, daskv1.ReasonRollingUpdate, msg)
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
