package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types. Reasons are CamelCase; messages are for people.
const (
	// DaskCluster
	CondSchedulerReady   = "SchedulerReady"
	CondWorkersReady     = "WorkersReady"
	CondResourcesCreated = "ResourcesCreated"
	CondIdleShutdown     = "IdleShutdown"
	// CondServiceSelectsScheduler is False when spec.scheduler.service's
	// selector misses the scheduler Pod.
	CondServiceSelectsScheduler = "ServiceSelectsScheduler"

	// DaskWorkerGroup
	CondClusterFound       = "ClusterFound"
	CondReplicaFailure     = "ReplicaFailure"
	CondSchedulerReachable = "SchedulerReachable"
	// CondGracefulScaleDown is False when the cluster's scheduler is set up
	// to serve no HTTP API, so that workers cannot be retired gracefully.
	CondGracefulScaleDown = "GracefulScaleDown"
	// CondProgressing tells a rollout of a new worker template: True while
	// it goes (reason RollingUpdate) and once complete (RolloutComplete),
	// False when new workers are not Ready in time (ProgressDeadlineExceeded).
	CondProgressing = "Progressing"
	// CondUpdated is True when every worker runs the current template and
	// there are spec.worker.replicas of them.
	CondUpdated = "Updated"

	// DaskJob
	CondComplete = "Complete"
	CondFailed   = "Failed"
	// CondSuspended (DaskJob, DaskCluster and DaskWorkerGroup) is True while
	// spec.suspend stops it (for a group: its cluster's).
	CondSuspended = "Suspended"

	// DaskCluster: the scheduler Pod runs another spec than spec.scheduler.spec.
	CondSchedulerOutdated = "SchedulerOutdated"
	// DaskCluster: the default group's Updated, once it runs spec.worker.spec.
	CondWorkersUpdated = "WorkersUpdated"

	// DaskAutoscaler
	CondScalingActive = "ScalingActive"
	CondAbleToScale   = "AbleToScale"
)

// setCondition sets a condition; LastTransitionTime changes only when the
// status does, so an unchanged condition causes no status write.
func setCondition(conds *[]metav1.Condition, generation int64, typ string, status metav1.ConditionStatus, reason, message string) {
	apimeta.SetStatusCondition(conds, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

func boolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

func podReady(p *corev1.Pod) bool {
	if p == nil || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// readySince is when a ready Pod last became ready.
func readySince(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}
