package controller

import (
	"fmt"
	"time"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SetCondition sets a condition; LastTransitionTime changes only when the
// status does, so an unchanged condition causes no status write.
func SetCondition(conds *[]metav1.Condition, generation int64, typ string, status metav1.ConditionStatus, reason, message string) {
	apimeta.SetStatusCondition(conds, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

func BoolStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}

func PodReady(p *corev1.Pod) bool {
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

func PodTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// ReadySince is when a ready Pod last became ready.
func ReadySince(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// SetWorkersReady sets WorkersReady, of a group or a cluster, from how many
// workers are ready of how many asked for.
func SetWorkersReady(conds *[]metav1.Condition, generation int64, ready, desired int32) {
	if ready >= desired {
		SetCondition(conds, generation, daskv1.ConditionWorkersReady, metav1.ConditionTrue, "AllReady", fmt.Sprintf("%d/%d workers ready", ready, desired))
		return
	}
	SetCondition(conds, generation, daskv1.ConditionWorkersReady, metav1.ConditionFalse, "NotAllReady", fmt.Sprintf("%d/%d workers ready", ready, desired))
}

// CountReady counts the Ready Pods.
func CountReady(pods []*corev1.Pod) int32 {
	var n int32
	for _, p := range pods {
		if PodReady(p) {
			n++
		}
	}
	return n
}

func PodFailureMessage(p *corev1.Pod) string {
	for _, s := range p.Status.ContainerStatuses {
		if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("container %s exited with code %d (%s)", s.Name, t.ExitCode, t.Reason)
		}
	}
	if p.Status.Message != "" {
		return p.Status.Message
	}
	if p.Status.Reason != "" {
		return p.Status.Reason
	}
	return "phase Failed"
}

func Restarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}
