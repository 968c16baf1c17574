package workergroup

import (
	"sort"

	"github.com/dask-operator/dask-operator/pkg/controller"

	corev1 "k8s.io/api/core/v1"
)

// rankForScaleDown orders Pods from the first to remove to the last, like the
// ReplicaSet controller: unscheduled before scheduled, Pending before Unknown
// before Running, not ready before ready, more restarts before fewer, newer
// before older.
func rankForScaleDown(pods []*corev1.Pod) []*corev1.Pod {
	out := append([]*corev1.Pod(nil), pods...)
	sort.SliceStable(out, func(i, j int) bool { return removeBefore(out[i], out[j]) })
	return out
}

var phaseRank = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

func removeBefore(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if phaseRank[a.Status.Phase] != phaseRank[b.Status.Phase] {
		return phaseRank[a.Status.Phase] < phaseRank[b.Status.Phase]
	}
	if controller.PodReady(a) != controller.PodReady(b) {
		return !controller.PodReady(a)
	}
	if ra, rb := controller.Restarts(a), controller.Restarts(b); ra != rb {
		return ra > rb
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return a.Name < b.Name
}

// newestFirst orders Pods by creation time, newest first.
func newestFirst(pods []*corev1.Pod) []*corev1.Pod {
	out := append([]*corev1.Pod(nil), pods...)
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreationTimestamp.Equal(&out[j].CreationTimestamp) {
			return out[j].CreationTimestamp.Before(&out[i].CreationTimestamp)
		}
		return out[i].Name > out[j].Name
	})
	return out
}
