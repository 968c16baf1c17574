package controller

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
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

// setWorkersReady sets WorkersReady, of a group or a cluster, from how many
// workers are ready of how many asked for.
func setWorkersReady(conds *[]metav1.Condition, generation int64, ready, desired int32) {
	if ready >= desired {
		setCondition(conds, generation, daskv1.ConditionWorkersReady, metav1.ConditionTrue, "AllReady", fmt.Sprintf("%d/%d workers ready", ready, desired))
		return
	}
	setCondition(conds, generation, daskv1.ConditionWorkersReady, metav1.ConditionFalse, "NotAllReady", fmt.Sprintf("%d/%d workers ready", ready, desired))
}

// countReady counts the Ready Pods.
func countReady(pods []*corev1.Pod) int32 {
	var n int32
	for _, p := range pods {
		if podReady(p) {
			n++
		}
	}
	return n
}
