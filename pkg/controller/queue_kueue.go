package controller

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/kueue"
)

// Admission is what Kueue decided for a DaskCluster labelled
// kueue.x-k8s.io/queue-name: the cluster's controller creates its
// Workload and holds its scheduler back, its groups' controller holds
// their workers back and keeps them within what Kueue admitted.
type Admission struct {
	// Queued: the cluster waits in a Kueue queue (labelled, and not a
	// DaskJob's, which is in its job's Workload).
	Queued bool
	// Held: nothing of the cluster may run; Reason and Message say why.
	Held            bool
	Reason, Message string
	// Workload is the cluster's Workload, nil before it is created: the
	// admitted slice while a scale-up's slice waits (elastic clusters).
	Workload *kueue.Workload
	// Slices are the cluster's Workloads that are not finished, oldest
	// first, with their unstructured forms (for writes).
	Slices    []*kueue.Workload
	SlicesRaw []*unstructured.Unstructured
}

// QueuedCluster tells a cluster that waits in a Kueue queue itself.
func QueuedCluster(c *daskv1.DaskCluster) bool {
	if c.Labels[kueue.LabelQueueName] == "" {
		return false
	}
	ref := metav1.GetControllerOf(c)
	return ref == nil || ref.Kind != "DaskJob"
}

// ClusterAdmission reads what Kueue decided for a cluster.
func (b *Base) ClusterAdmission(c *daskv1.DaskCluster) (Admission, error) {
	if !QueuedCluster(c) {
		return Admission{}, nil
	}
	queue := c.Labels[kueue.LabelQueueName]
	kc := b.Caches.Kueue
	if kc == nil {
		return NotInstalled(queue), nil
	}
	slices, raw, err := kc.WorkloadsOf(c.Namespace, c.UID)
	if err != nil {
		return Admission{}, err
	}
	// The admitted slice decides while a newer one (a scale-up) waits.
	var wl *kueue.Workload
	for i := len(slices) - 1; i >= 0 && wl == nil; i-- {
		if slices[i].IsAdmitted() || slices[i].Evicted() != nil {
			wl = slices[i]
		}
	}
	if wl == nil && len(slices) > 0 {
		wl = slices[len(slices)-1]
	}
	adm := Decide(queue, wl, "cluster")
	adm.Slices, adm.SlicesRaw = slices, raw
	return adm, nil
}

// NotInstalled is the Admission of an object labelled for a queue when the
// API server serves no Kueue Workloads.
func NotInstalled(queue string) Admission {
	return Admission{Queued: true, Held: true, Reason: daskv1.ReasonKueueNotInstalled, Message: fmt.Sprintf(
		"labelled %s=%s, but the API server serves no Kueue Workloads (%s): install Kueue and restart the operator, or remove the label",
		kueue.LabelQueueName, queue, kueue.GroupVersion)}
}

// Decide tells, from a queued object's Workload (nil before it has one),
// whether the object may run: only once Kueue admitted the Workload, and
// not after Kueue evicted it. noun names the object in the messages.
func Decide(queue string, wl *kueue.Workload, noun string) Admission {
	switch {
	case wl == nil:
		return Admission{Queued: true, Held: true, Reason: daskv1.ReasonQueued, Message: "waiting for its Workload in queue " + queue}
	case wl.Evicted() != nil:
		ev := wl.Evicted()
		reason := daskv1.ReasonEvicted
		if ev.Reason == kueue.ReasonPreempted {
			reason = kueue.ReasonPreempted
		}
		return Admission{Queued: true, Held: true, Reason: reason, Workload: wl,
			Message: fmt.Sprintf("Workload %s was evicted by Kueue (%s: %s); the %s waits to be admitted again", wl.Name, ev.Reason, ev.Message, noun)}
	case !wl.IsAdmitted():
		return Admission{Queued: true, Held: true, Reason: daskv1.ReasonQueued, Workload: wl,
			Message: fmt.Sprintf("Workload %s waits in queue %s: %s", wl.Name, wl.Spec.QueueName, wl.PendingMessage())}
	}
	return Admission{Queued: true, Reason: daskv1.ReasonAdmitted, Workload: wl,
		Message: fmt.Sprintf("Workload %s admitted by ClusterQueue %s", wl.Name, wl.Status.Admission.ClusterQueue)}
}

// GiveQuotaBack gives the quota of an object's evicted Workloads back, as
// Kueue's own integrations do once the evicted object's Pods are gone (the
// caller knows they are): Requeued, QuotaReserved False, no admission.
func (b *Base) GiveQuotaBack(ctx context.Context, owner metav1.Object, kind string) error {
	wls, raw, err := b.Caches.Kueue.WorkloadsOf(owner.GetNamespace(), owner.GetUID())
	if err != nil {
		return err
	}
	for i, wl := range wls {
		if !wl.HasQuotaReservation() || wl.Evicted() == nil {
			continue
		}
		if err := kueue.ClearAdmission(raw[i], wl.Evicted()); err != nil {
			return err
		}
		if err := b.Caches.Kueue.UpdateStatus(ctx, raw[i]); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("give the quota of Workload %s back: %w", wl.Name, err)
		}
		klog.InfoS("Gave an evicted Workload's quota back", strings.ToLower(kind), klog.KObj(owner), "workload", wl.Name)
	}
	return nil
}

// NewWorkload is the Workload of a queued Dask object: owned (controlled)
// by it, labelled for the operator's cache, in the object's queue.
func NewWorkload(owner metav1.Object, kind string, sets []kueue.PodSet) *kueue.Workload {
	return &kueue.Workload{
		ObjectMeta: metav1.ObjectMeta{
			Name:            kueue.Name(kind, owner.GetName(), string(owner.GetUID())),
			Namespace:       owner.GetNamespace(),
			Labels:          map[string]string{kueue.LabelOwnerKind: kind},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(owner, daskv1.SchemeGroupVersion.WithKind(kind))},
		},
		Spec: kueue.WorkloadSpec{PodSets: sets, QueueName: owner.GetLabels()[kueue.LabelQueueName]},
	}
}

// PodSetOf is the pod set of a cluster's Workload a group's workers are
// counted in: the default group's are "workers"; other groups are not in
// the Workload (none of their workers is admitted).
func PodSetOf(group string, defaultGroup string) (string, bool) {
	if group == defaultGroup {
		return kueue.PodSetWorkers, true
	}
	return "", false
}

// SetWorkloadPriority gives a Workload the priority of the WorkloadPriorityClass
// the object's label names or else of its Pods' PriorityClass, as Kueue
// does for its own integrations.
func (c *Base) SetWorkloadPriority(ctx context.Context, spec *kueue.WorkloadSpec, workloadClass, podClass string) error {
	switch {
	case workloadClass != "":
		v, err := c.Caches.Kueue.WorkloadPriority(ctx, workloadClass)
		if err != nil {
			return err
		}
		spec.Priority = &v
		spec.PriorityClassRef = &kueue.PriorityClassRef{Group: "kueue.x-k8s.io", Kind: "WorkloadPriorityClass", Name: workloadClass}
	case podClass != "":
		pc, err := c.Kube.SchedulingV1().PriorityClasses().Get(ctx, podClass, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("PriorityClass %s: %w", podClass, err)
		}
		v := pc.Value
		spec.Priority = &v
		spec.PriorityClassRef = &kueue.PriorityClassRef{Group: "scheduling.k8s.io", Kind: "PriorityClass", Name: podClass}
	}
	return nil
}
