// Package kueue lets Dask objects wait in Kueue's queues: the operator
// creates and owns a Kueue Workload for each DaskJob or DaskCluster
// labelled kueue.x-k8s.io/queue-name, starts it only once Kueue admitted
// the Workload, with the flavors Kueue assigned, stops it when Kueue evicts
// it, and tells Kueue when it finished, as Kueue's own job integrations do.
// Kueue is reached through the dynamic client with the few Workload fields
// read here: no Kueue or controller-runtime code is linked.
package kueue

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/dask-operator/dask-operator/pkg/resources"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Labels users put on a DaskJob or DaskCluster, as on a Kubernetes Job.
const (
	// LabelQueueName names the LocalQueue the object waits in.
	LabelQueueName = resources.LabelKueueQueueName
	// LabelPriorityClass names a WorkloadPriorityClass.
	LabelPriorityClass = resources.LabelKueuePriorityClass
	// LabelPrebuiltWorkload names a Workload made before the object: by
	// MultiKueue, for the copy of a job it dispatches to a worker cluster.
	LabelPrebuiltWorkload = "kueue.x-k8s.io/prebuilt-workload-name"
	// AnnotationElastic on a DaskCluster (and its Workloads) asks for
	// elastic workload slices: a scale-up of an admitted cluster is a new
	// Workload slice that Kueue admits in place of the old one, a
	// scale-down lowers the admitted count. Kueue's feature gate
	// ElasticJobsViaWorkloadSlices (alpha in v0.17) must be on.
	AnnotationElastic = "kueue.x-k8s.io/elastic-job"
	// AnnotationReplacementFor, on a new Workload slice, names
	// ("namespace/name") the slice it replaces.
	AnnotationReplacementFor = "kueue.x-k8s.io/workload-slice-replacement-for"
	// LabelOwnerKind marks the Workloads the operator made, with the kind
	// of the Dask object they are for: what the operator watches.
	LabelOwnerKind = "kubernetes.dask.org/workload-for"
)

// Kueue's Workload condition types and reasons read or written here.
const (
	ConditionQuotaReserved = "QuotaReserved"
	ConditionAdmitted      = "Admitted"
	ConditionEvicted       = "Evicted"
	ConditionRequeued      = "Requeued"
	ConditionFinished      = "Finished"

	ReasonPreempted           = "Preempted"
	ReasonEvictedNodeFailures = "NodeFailures"
	ReasonSucceeded           = "Succeeded"
	ReasonFailed              = "Failed"
)

// Pod set names: a job's runner, a cluster's scheduler and its default
// worker group.
const (
	PodSetRunner    = "runner"
	PodSetScheduler = "scheduler"
	PodSetWorkers   = "workers"
)

// GroupVersion is the Kueue API version used.
var GroupVersion = schema.GroupVersion{Group: "kueue.x-k8s.io", Version: "v1beta2"}

// Resources of Kueue's API.
var (
	WorkloadResource              = GroupVersion.WithResource("workloads")
	ResourceFlavorResource        = GroupVersion.WithResource("resourceflavors")
	WorkloadPriorityClassResource = GroupVersion.WithResource("workloadpriorityclasses")
)

// Workload holds the fields of a Kueue Workload the operator sets or reads.
type Workload struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              WorkloadSpec   `json:"spec"`
	Status            WorkloadStatus `json:"status,omitempty"`
}

// WorkloadSpec is what a Workload asks for.
type WorkloadSpec struct {
	PodSets          []PodSet          `json:"podSets"`
	QueueName        string            `json:"queueName,omitempty"`
	PriorityClassRef *PriorityClassRef `json:"priorityClassRef,omitempty"`
	Priority         *int32            `json:"priority,omitempty"`
}

// PodSet is a group of identical Pods.
type PodSet struct {
	Name     string                 `json:"name"`
	Template corev1.PodTemplateSpec `json:"template"`
	Count    int32                  `json:"count"`
}

// PriorityClassRef names the priority class a Workload's priority is from.
type PriorityClassRef struct {
	Group string `json:"group,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Name  string `json:"name,omitempty"`
}

// WorkloadStatus is what Kueue decided.
type WorkloadStatus struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	Admission  *Admission         `json:"admission,omitempty"`
}

// Admission is the ClusterQueue that admitted a Workload and what it
// assigned to each pod set.
type Admission struct {
	ClusterQueue      string             `json:"clusterQueue"`
	PodSetAssignments []PodSetAssignment `json:"podSetAssignments"`
}

// PodSetAssignment is the flavor of each resource of a pod set, and how
// many of its Pods were admitted.
type PodSetAssignment struct {
	Name    string                         `json:"name"`
	Flavors map[corev1.ResourceName]string `json:"flavors,omitempty"`
	Count   *int32                         `json:"count,omitempty"`
}

// FromUnstructured reads a Workload.
func FromUnstructured(u *unstructured.Unstructured) (*Workload, error) {
	w := &Workload{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, w); err != nil {
		return nil, fmt.Errorf("workload %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return w, nil
}

// ToUnstructured writes a Workload for the dynamic client.
func ToUnstructured(w *Workload) (*unstructured.Unstructured, error) {
	w.APIVersion, w.Kind = GroupVersion.String(), "Workload"
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(w)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: obj}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	sets, _, _ := unstructured.NestedSlice(u.Object, "spec", "podSets")
	for _, s := range sets {
		unstructured.RemoveNestedField(s.(map[string]any), "template", "metadata", "creationTimestamp")
	}
	if err := unstructured.SetNestedSlice(u.Object, sets, "spec", "podSets"); err != nil {
		return nil, err
	}
	return u, nil
}

// Name is the name of the Workload of a Dask object: its kind and name and
// a hash of its UID, so that an object created again under the same name
// gets a Workload of its own, as Kueue names those of its integrations.
func Name(kind, name string, uid string) string {
	sum := sha256.Sum256([]byte(uid))
	prefix := strings.ToLower(kind) + "-" + name
	if len(prefix) > 240 {
		prefix = prefix[:240]
	}
	return prefix + "-" + hex.EncodeToString(sum[:])[:5]
}

// IsAdmitted tells a Workload Kueue admitted.
func (w *Workload) IsAdmitted() bool {
	return apimeta.IsStatusConditionTrue(w.Status.Conditions, ConditionAdmitted) && w.Status.Admission != nil
}

// Evicted returns the Evicted condition when it is True.
func (w *Workload) Evicted() *metav1.Condition {
	c := apimeta.FindStatusCondition(w.Status.Conditions, ConditionEvicted)
	if c != nil && c.Status == metav1.ConditionTrue {
		return c
	}
	return nil
}

// IsFinished tells a Workload marked finished.
func (w *Workload) IsFinished() bool {
	return apimeta.IsStatusConditionTrue(w.Status.Conditions, ConditionFinished)
}

// HasQuotaReservation tells a Workload that holds quota.
func (w *Workload) HasQuotaReservation() bool {
	return apimeta.IsStatusConditionTrue(w.Status.Conditions, ConditionQuotaReserved)
}

// Count is the count of a pod set of the Workload's spec (0 without it).
func (w *Workload) Count(podSet string) int32 {
	for _, ps := range w.Spec.PodSets {
		if ps.Name == podSet {
			return ps.Count
		}
	}
	return 0
}

// ReplacementFor names the slice a Workload slice replaces ("" for none).
func (w *Workload) ReplacementFor() string { return w.Annotations[AnnotationReplacementFor] }

// PendingMessage is why Kueue has not admitted the Workload, in its words.
func (w *Workload) PendingMessage() string {
	if c := apimeta.FindStatusCondition(w.Status.Conditions, ConditionQuotaReserved); c != nil && c.Status == metav1.ConditionFalse && c.Message != "" {
		return c.Message
	}
	if c := apimeta.FindStatusCondition(w.Status.Conditions, ConditionAdmitted); c != nil && c.Status == metav1.ConditionFalse && c.Message != "" {
		return c.Message
	}
	return "waiting for Kueue to consider it"
}

// Assignment returns what Kueue assigned to a pod set.
func (w *Workload) Assignment(podSet string) (PodSetAssignment, bool) {
	if w.Status.Admission == nil {
		return PodSetAssignment{}, false
	}
	for _, a := range w.Status.Admission.PodSetAssignments {
		if a.Name == podSet {
			return a, true
		}
	}
	return PodSetAssignment{}, false
}

// AdmittedCount is how many Pods of a pod set were admitted: the
// assignment's count, or the pod set's when the assignment has none.
func (w *Workload) AdmittedCount(podSet string) (int32, bool) {
	a, ok := w.Assignment(podSet)
	if !ok {
		return 0, false
	}
	if a.Count != nil {
		return *a.Count, true
	}
	for _, ps := range w.Spec.PodSets {
		if ps.Name == podSet {
			return ps.Count, true
		}
	}
	return 0, true
}

// SetCondition sets a condition on an unstructured Workload's status, so
// that the fields of the status not read here are written back unchanged.
func SetCondition(u *unstructured.Unstructured, c metav1.Condition) error {
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var conds []metav1.Condition
	for _, r := range raw {
		var cond metav1.Condition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(r.(map[string]any), &cond); err != nil {
			return err
		}
		conds = append(conds, cond)
	}
	c.ObservedGeneration = u.GetGeneration()
	apimeta.SetStatusCondition(&conds, c)
	out := make([]any, 0, len(conds))
	for i := range conds {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&conds[i])
		if err != nil {
			return err
		}
		out = append(out, m)
	}
	return unstructured.SetNestedSlice(u.Object, out, "status", "conditions")
}

// ClearAdmission gives an evicted Workload's quota back once its Pods are
// gone, as Kueue's job integrations do: Requeued (True after a preemption
// or node failures, so that it queues again), QuotaReserved False, no
// admission, Admitted False.
func ClearAdmission(u *unstructured.Unstructured, evicted *metav1.Condition) error {
	requeued := metav1.ConditionFalse
	if evicted.Reason == ReasonPreempted || evicted.Reason == ReasonEvictedNodeFailures {
		requeued = metav1.ConditionTrue
	}
	for _, c := range []metav1.Condition{
		{Type: ConditionRequeued, Status: requeued, Reason: evicted.Reason, Message: evicted.Message},
		{Type: ConditionQuotaReserved, Status: metav1.ConditionFalse, Reason: "Pending", Message: evicted.Message},
		{Type: ConditionAdmitted, Status: metav1.ConditionFalse, Reason: "NoReservation", Message: "The workload has no reservation"},
	} {
		if err := SetCondition(u, c); err != nil {
			return err
		}
	}
	unstructured.RemoveNestedField(u.Object, "status", "admission")
	return nil
}
