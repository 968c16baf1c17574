package kueue

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

// Installed tells whether the API server serves Kueue's Workloads.
func Installed(d discovery.DiscoveryInterface) (bool, error) {
	list, err := d.ServerResourcesForGroupVersion(GroupVersion.String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", GroupVersion, err)
	}
	for _, r := range list.APIResources {
		if r.Name == WorkloadResource.Resource {
			return true, nil
		}
	}
	return false, nil
}

const indexOwnerUID = "ownerUID"

// Cache watches the Workloads the operator made (labelled LabelOwnerKind)
// in the watched namespaces, and Kueue's ResourceFlavors.
type Cache struct {
	dyn       dynamic.Interface
	factories []dynamicinformer.DynamicSharedInformerFactory
	// Workloads are the Workload informers, by namespace ("" for all).
	Workloads map[string]cache.SharedIndexInformer
	Flavors   cache.SharedIndexInformer
}

// NewCache builds the informers; Start starts them.
func NewCache(dyn dynamic.Interface, namespaces []string, resync time.Duration) (*Cache, error) {
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	c := &Cache{dyn: dyn, Workloads: map[string]cache.SharedIndexInformer{}}
	for _, ns := range namespaces {
		f := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, resync, ns, func(o *metav1.ListOptions) {
			o.LabelSelector = LabelOwnerKind
		})
		inf := f.ForResource(WorkloadResource).Informer()
		if err := inf.AddIndexers(cache.Indexers{indexOwnerUID: ownerUIDIndex}); err != nil {
			return nil, err
		}
		c.Workloads[ns] = inf
		c.factories = append(c.factories, f)
	}
	flavors := dynamicinformer.NewDynamicSharedInformerFactory(dyn, resync)
	c.Flavors = flavors.ForResource(ResourceFlavorResource).Informer()
	c.factories = append(c.factories, flavors)
	return c, nil
}

func ownerUIDIndex(obj any) ([]string, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, r := range m.GetOwnerReferences() {
		out = append(out, string(r.UID))
	}
	return out, nil
}

// Start starts the informers.
func (c *Cache) Start(stop <-chan struct{}) {
	for _, f := range c.factories {
		f.Start(stop)
	}
}

// Synced are the informers' HasSynced.
func (c *Cache) Synced() []cache.InformerSynced {
	out := []cache.InformerSynced{c.Flavors.HasSynced}
	for _, inf := range c.Workloads {
		out = append(out, inf.HasSynced)
	}
	return out
}

func (c *Cache) in(ns string) cache.SharedIndexInformer {
	if inf, ok := c.Workloads[ns]; ok {
		return inf
	}
	return c.Workloads[metav1.NamespaceAll]
}

// AddHandler registers a handler of Workload events.
func (c *Cache) AddHandler(h cache.ResourceEventHandler) error {
	for _, inf := range c.Workloads {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	return nil
}

// WorkloadOf returns the Workload a Dask object owns, as read and as its
// unstructured form (for status writes), or nils when it has none. Of
// several, the newest that is not finished.
func (c *Cache) WorkloadOf(ns string, owner types.UID) (*Workload, *unstructured.Unstructured, error) {
	all, raw, err := c.WorkloadsOf(ns, owner)
	if err != nil || len(all) == 0 {
		return nil, nil, err
	}
	return all[len(all)-1], raw[len(raw)-1], nil
}

// WorkloadsOf returns the Workloads a Dask object owns that are neither
// being deleted nor finished, oldest first: one, or two while an elastic
// scale-up's slice replaces the admitted one.
func (c *Cache) WorkloadsOf(ns string, owner types.UID) ([]*Workload, []*unstructured.Unstructured, error) {
	inf := c.in(ns)
	if inf == nil {
		return nil, nil, nil
	}
	objs, err := inf.GetIndexer().ByIndex(indexOwnerUID, string(owner))
	if err != nil {
		return nil, nil, err
	}
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok && u.GetDeletionTimestamp() == nil {
			found = append(found, u)
		}
	}
	sort.Slice(found, func(i, j int) bool {
		a, b := found[i].GetCreationTimestamp(), found[j].GetCreationTimestamp()
		if a.Equal(&b) {
			return found[i].GetName() < found[j].GetName()
		}
		return a.Before(&b)
	})
	var ws []*Workload
	var raw []*unstructured.Unstructured
	for _, u := range found {
		u = u.DeepCopy()
		w, err := FromUnstructured(u)
		if err != nil {
			return nil, nil, err
		}
		if w.IsFinished() {
			continue
		}
		ws, raw = append(ws, w), append(raw, u)
	}
	return ws, raw, nil
}

// SetCount changes the count of a pod set of a Workload (an elastic one's
// scale-down, or a slice not admitted yet).
func (c *Cache) SetCount(ctx context.Context, u *unstructured.Unstructured, podSet string, n int32) error {
	sets, _, _ := unstructured.NestedSlice(u.Object, "spec", "podSets")
	for _, s := range sets {
		if m := s.(map[string]any); m["name"] == podSet {
			m["count"] = int64(n)
		}
	}
	if err := unstructured.SetNestedSlice(u.Object, sets, "spec", "podSets"); err != nil {
		return err
	}
	_, err := c.dyn.Resource(WorkloadResource).Namespace(u.GetNamespace()).Update(ctx, u, metav1.UpdateOptions{})
	return err
}

// Create creates a Workload.
func (c *Cache) Create(ctx context.Context, w *Workload) (*Workload, error) {
	u, err := ToUnstructured(w)
	if err != nil {
		return nil, err
	}
	out, err := c.dyn.Resource(WorkloadResource).Namespace(w.Namespace).Create(ctx, u, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return FromUnstructured(out)
}

// UpdateStatus writes a Workload's status.
func (c *Cache) UpdateStatus(ctx context.Context, u *unstructured.Unstructured) error {
	_, err := c.dyn.Resource(WorkloadResource).Namespace(u.GetNamespace()).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	return err
}

// WorkloadPriority reads a WorkloadPriorityClass's value.
func (c *Cache) WorkloadPriority(ctx context.Context, name string) (int32, error) {
	u, err := c.dyn.Resource(WorkloadPriorityClassResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("WorkloadPriorityClass %s: %w", name, err)
	}
	v, found, err := unstructured.NestedInt64(u.Object, "value")
	if err != nil || !found {
		return 0, fmt.Errorf("WorkloadPriorityClass %s has no value", name)
	}
	return int32(v), nil
}

// Flavor is what a ResourceFlavor puts on the Pods it is assigned to.
type Flavor struct {
	NodeLabels  map[string]string   `json:"nodeLabels,omitempty"`
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
}

// Flavor reads a ResourceFlavor from the cache.
func (c *Cache) Flavor(name string) (Flavor, error) {
	obj, ok, err := c.Flavors.GetIndexer().GetByKey(name)
	if err != nil {
		return Flavor{}, err
	}
	if !ok {
		return Flavor{}, fmt.Errorf("ResourceFlavor %s not found", name)
	}
	var f struct {
		Spec Flavor `json:"spec"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.(*unstructured.Unstructured).Object, &f); err != nil {
		return Flavor{}, err
	}
	return f.Spec, nil
}

// Placement is what the flavors assigned to a pod set put on its Pods.
func (c *Cache) Placement(a PodSetAssignment) (Flavor, error) {
	var out Flavor
	names := map[string]bool{}
	for _, f := range a.Flavors {
		names[f] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		f, err := c.Flavor(n)
		if err != nil {
			return Flavor{}, err
		}
		for k, v := range f.NodeLabels {
			if out.NodeLabels == nil {
				out.NodeLabels = map[string]string{}
			}
			out.NodeLabels[k] = v
		}
		out.Tolerations = append(out.Tolerations, f.Tolerations...)
	}
	return out, nil
}

// Apply puts a placement on a Pod spec: its node labels join the node
// selector, its tolerations the tolerations.
func (f Flavor) Apply(spec *corev1.PodSpec) {
	if len(f.NodeLabels) > 0 && spec.NodeSelector == nil {
		spec.NodeSelector = map[string]string{}
	}
	for k, v := range f.NodeLabels {
		spec.NodeSelector[k] = v
	}
	spec.Tolerations = append(spec.Tolerations, f.Tolerations...)
}

// Adopt makes a Workload another controller created for a Dask object its
// own: MultiKueue creates the Workload of a job it dispatches to a worker
// cluster (named by the job's LabelPrebuiltWorkload) before the job. It
// gets LabelOwnerKind, so that the cache watches it, and the object as its
// controller, so that it goes with it.
func (c *Cache) Adopt(ctx context.Context, ns, name string, ref metav1.OwnerReference, kind string) (*Workload, error) {
	u, err := c.dyn.Resource(WorkloadResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	owned := false
	for _, r := range u.GetOwnerReferences() {
		owned = owned || r.UID == ref.UID
	}
	if owned && u.GetLabels()[LabelOwnerKind] == kind {
		return FromUnstructured(u)
	}
	refs := u.GetOwnerReferences()
	if !owned {
		refs = append(refs, ref)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":          map[string]string{LabelOwnerKind: kind},
		"ownerReferences": refs,
		"resourceVersion": u.GetResourceVersion(),
	}})
	if err != nil {
		return nil, err
	}
	out, err := c.dyn.Resource(WorkloadResource).Namespace(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("adopt Workload %s: %w", name, err)
	}
	return FromUnstructured(out)
}
