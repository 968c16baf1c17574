package controller

import (
	"fmt"
	"sync"
	"time"

	"github.com/dask-operator/dask-operator/pkg/kueue"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
	daskinformers "github.com/dask-operator/dask-operator/pkg/generated/informers/externalversions"
	dasklisters "github.com/dask-operator/dask-operator/pkg/generated/listers/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

const (
	indexOwnerUID     = "ownerUID"
	indexClusterRef   = "clusterRef"
	indexClusterLabel = "clusterLabel"
)

// scope is the set of informers for one namespace, or for all namespaces
// (namespace "").
type scope struct {
	dask daskinformers.SharedInformerFactory
	kube kubeinformers.SharedInformerFactory

	Clusters    cache.SharedIndexInformer
	Groups      cache.SharedIndexInformer
	Jobs        cache.SharedIndexInformer
	Autoscalers cache.SharedIndexInformer
	Pods        cache.SharedIndexInformer
	Services    cache.SharedIndexInformer
	// Deployments and ReplicaSets labelled with a cluster's name: the
	// Python operator's, which a takeover removes (cluster/takeover.go).
	Deployments cache.SharedIndexInformer
	ReplicaSets cache.SharedIndexInformer

	clusterLister    dasklisters.DaskClusterLister
	groupLister      dasklisters.DaskWorkerGroupLister
	jobLister        dasklisters.DaskJobLister
	autoscalerLister dasklisters.DaskAutoscalerLister
	serviceLister    corelisters.ServiceLister
}

// Caches holds the informers of the watched namespaces. Pods and Services
// are watched only when they carry dask.org/cluster-name, so memory follows
// the number of Dask Pods, not the size of the cluster.
type Caches struct {
	Scopes map[string]*scope
	// Kueue watches the operator's Kueue Workloads and Kueue's flavors; nil
	// when Kueue is not installed (or Options.Dynamic is not set).
	Kueue *kueue.Cache
}

func NewCaches(kube kubernetes.Interface, dask versioned.Interface, namespaces []string, resync time.Duration) (*Caches, error) {
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	c := &Caches{Scopes: map[string]*scope{}}
	for _, ns := range namespaces {
		s := &scope{
			dask: daskinformers.NewSharedInformerFactoryWithOptions(dask, resync, daskinformers.WithNamespace(ns)),
			kube: kubeinformers.NewSharedInformerFactoryWithOptions(kube, resync, kubeinformers.WithNamespace(ns),
				kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = resources.ManagedSelector })),
		}
		v1 := s.dask.Kubernetes().V1()
		s.Clusters, s.clusterLister = v1.DaskClusters().Informer(), v1.DaskClusters().Lister()
		s.Groups, s.groupLister = v1.DaskWorkerGroups().Informer(), v1.DaskWorkerGroups().Lister()
		s.Jobs, s.jobLister = v1.DaskJobs().Informer(), v1.DaskJobs().Lister()
		s.Autoscalers, s.autoscalerLister = v1.DaskAutoscalers().Informer(), v1.DaskAutoscalers().Lister()
		s.Pods = s.kube.Core().V1().Pods().Informer()
		s.Services, s.serviceLister = s.kube.Core().V1().Services().Informer(), s.kube.Core().V1().Services().Lister()
		s.Deployments, s.ReplicaSets = s.kube.Apps().V1().Deployments().Informer(), s.kube.Apps().V1().ReplicaSets().Informer()

		if err := s.Pods.AddIndexers(cache.Indexers{indexOwnerUID: ownerUIDIndex, indexClusterLabel: clusterLabelIndex}); err != nil {
			return nil, err
		}
		for _, inf := range []cache.SharedIndexInformer{s.Deployments, s.ReplicaSets} {
			if err := inf.AddIndexers(cache.Indexers{indexClusterLabel: clusterLabelIndex}); err != nil {
				return nil, err
			}
			// Only their metadata is read.
			if err := inf.SetTransform(metadataOnly); err != nil {
				return nil, err
			}
		}
		if err := s.Groups.AddIndexers(cache.Indexers{indexClusterRef: groupClusterIndex}); err != nil {
			return nil, err
		}
		if err := s.Autoscalers.AddIndexers(cache.Indexers{indexClusterRef: autoscalerClusterIndex}); err != nil {
			return nil, err
		}
		// Only the fields the operator reads are kept for Pods: managed
		// fields are never used and are a large part of a Pod's size.
		if err := s.Pods.SetTransform(TrimPod); err != nil {
			return nil, err
		}
		// Managed fields are never read, and for Dask objects written with
		// server-side apply they list every field of every embedded PodSpec.
		if err := s.Services.SetTransform(stripManagedFields); err != nil {
			return nil, err
		}
		for _, inf := range []cache.SharedIndexInformer{s.Clusters, s.Groups, s.Jobs, s.Autoscalers} {
			if err := inf.SetTransform(compactDaskObject); err != nil {
				return nil, err
			}
		}
		c.Scopes[ns] = s
	}
	return c, nil
}

func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// compactDaskObject is stripManagedFields for the Dask resources, whose
// objects are decoded from JSON: it keeps a deep copy, whose slices are
// exactly as long as they need be (decoding grows them by doubling), and
// the strings of status conditions that every object repeats (types,
// statuses, reasons) are held once: about 15 % less memory per DaskCluster
// (BenchmarkCachedClusterBytes).
func compactDaskObject(obj any) (any, error) {
	o, ok := obj.(runtime.Object)
	if !ok {
		return obj, nil // a tombstone
	}
	if _, err := stripManagedFields(o); err != nil {
		return nil, err
	}
	out := o.DeepCopyObject()
	var conds []metav1.Condition
	switch x := out.(type) {
	case *daskv1.DaskCluster:
		conds = x.Status.Conditions
	case *daskv1.DaskWorkerGroup:
		conds = x.Status.Conditions
	case *daskv1.DaskJob:
		conds = x.Status.Conditions
	case *daskv1.DaskAutoscaler:
		conds = x.Status.Conditions
	}
	for i := range conds {
		c := &conds[i]
		c.Type, c.Reason = sharedStrings.intern(c.Type), sharedStrings.intern(c.Reason)
		c.Status = metav1.ConditionStatus(sharedStrings.intern(string(c.Status)))
	}
	return out, nil
}

// TrimPod keeps of a Pod only what the controllers read: its metadata, the
// node it is bound to, and its phase, Ready condition, IP and container
// states. Container specs, volumes, managed fields and the other conditions
// are most of a Pod's size, and the cache holds every Dask Pod. Strings
// that every Pod repeats (label and annotation keys, the owner's kind) are
// shared rather than held once per Pod.
func TrimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone, or already trimmed
	}
	out := &cachedPod{
		ObjectMeta:    p.ObjectMeta,
		nodeName:      p.Spec.NodeName,
		restartPolicy: p.Spec.RestartPolicy,
		phase:         p.Status.Phase,
		message:       p.Status.Message,
		reason:        p.Status.Reason,
		podIP:         p.Status.PodIP,
	}
	out.ManagedFields = nil
	out.Namespace = sharedStrings.intern(out.Namespace)
	out.Labels = sharedStrings.internMap(out.Labels)
	out.Annotations = sharedStrings.internMap(out.Annotations)
	for i := range out.OwnerReferences {
		ref := &out.OwnerReferences[i]
		ref.APIVersion, ref.Kind = sharedStrings.intern(ref.APIVersion), sharedStrings.intern(ref.Kind)
	}
	for i := range p.Status.Conditions {
		if c := p.Status.Conditions[i]; c.Type == corev1.PodReady {
			c.Type = corev1.PodReady // the constant, not a copy per Pod
			out.ready = []corev1.PodCondition{c}
			break
		}
	}
	if n := len(p.Status.ContainerStatuses); n > 0 {
		out.containers = make([]cachedContainer, n)
		for i, cs := range p.Status.ContainerStatuses {
			out.containers[i] = cachedContainer{name: sharedStrings.intern(cs.Name), ready: cs.Ready, restartCount: cs.RestartCount, state: cs.State}
		}
	}
	return out, nil
}

// cachedPod is what the Pod cache holds of a Pod (trimPod): a corev1.Pod is
// 1.2 KB before it holds anything, most of it an empty PodSpec, and the
// cache holds every Dask Pod. The controllers read Pods as corev1.Pods,
// which podFromCache makes anew on each read; its maps and slices are the
// cache's, shared and never to be changed.
type cachedPod struct {
	metav1.ObjectMeta
	nodeName               string
	restartPolicy          corev1.RestartPolicy
	phase                  corev1.PodPhase
	message, reason, podIP string
	ready                  []corev1.PodCondition // the Ready condition, if any
	containers             []cachedContainer
}

type cachedContainer struct {
	name         string
	ready        bool
	restartCount int32
	state        corev1.ContainerState
}

func (cp *cachedPod) pod() *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: cp.ObjectMeta,
		Spec:       corev1.PodSpec{NodeName: cp.nodeName, RestartPolicy: cp.restartPolicy},
		Status: corev1.PodStatus{Phase: cp.phase, Message: cp.message, Reason: cp.reason, PodIP: cp.podIP,
			Conditions: cp.ready},
	}
	if len(cp.containers) > 0 {
		p.Status.ContainerStatuses = make([]corev1.ContainerStatus, len(cp.containers))
		for i, c := range cp.containers {
			p.Status.ContainerStatuses[i] = corev1.ContainerStatus{Name: c.name, Ready: c.ready, RestartCount: c.restartCount, State: c.state}
		}
	}
	return p
}

// PodFromCache returns the Pod an object of the Pod cache (or a tombstone
// of one) holds. Tests put corev1.Pods in the cache as they are.
func PodFromCache(obj any) (*corev1.Pod, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	switch p := obj.(type) {
	case *cachedPod:
		return p.pod(), true
	case *corev1.Pod:
		return p, true
	}
	return nil, false
}

// sharedStrings holds the strings cached Pods and Dask objects share.
var sharedStrings = newInterner(8192)

// interner hands out one copy of each string it has seen, up to a number
// of distinct strings: past it, new strings are returned as they are, so
// that what it holds stays bounded whatever the objects carry (it never
// forgets; callers give it keys, kinds and namespaces, which are few).
type interner struct {
	mu    sync.Mutex
	max   int
	known map[string]string
}

func newInterner(max int) *interner { return &interner{max: max, known: map[string]string{}} }

func (in *interner) intern(s string) string {
	if s == "" {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.known[s]; ok {
		return v
	}
	if len(in.known) < in.max {
		in.known[s] = s
	}
	return s
}

// internMap returns m with interned keys, and interned values for the keys
// whose values come from a few (the component, the Istio switch): a new
// map, since the decoded one may be shared with other event handlers.
// Names and hashes are not shared: they differ from cluster to cluster.
func (in *interner) internMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k == resources.LabelComponent || k == resources.LabelIstioInject {
			v = in.intern(v)
		}
		out[in.intern(k)] = v
	}
	return out
}

// metadataOnly keeps a Deployment's or ReplicaSet's metadata, without
// managed fields: the takeover reads nothing else.
func metadataOnly(obj any) (any, error) {
	var meta metav1.ObjectMeta
	switch o := obj.(type) {
	case *appsv1.Deployment:
		meta = o.ObjectMeta
		meta.ManagedFields = nil
		return &appsv1.Deployment{TypeMeta: o.TypeMeta, ObjectMeta: meta}, nil
	case *appsv1.ReplicaSet:
		meta = o.ObjectMeta
		meta.ManagedFields = nil
		return &appsv1.ReplicaSet{TypeMeta: o.TypeMeta, ObjectMeta: meta}, nil
	}
	return obj, nil // a tombstone
}

// ownerUIDIndex indexes an object by its controller's UID; one that no
// controller owns is indexed as an orphan of the cluster its label names
// (orphanKey), so that a takeover finds the Pods it can adopt.
func ownerUIDIndex(obj any) ([]string, error) {
	m, err := MetaOf(obj)
	if err != nil {
		return nil, err
	}
	if ref := metav1.GetControllerOf(m); ref != nil {
		if name := m.GetLabels()[resources.LabelClusterName]; name != "" && ref.Kind == "ReplicaSet" && ref.APIVersion == appsv1.SchemeGroupVersion.String() {
			// A Pod of a cluster that a ReplicaSet controls is the
			// Python operator's: indexed also by the cluster, so that a
			// takeover still finds it when its ReplicaSet is already gone
			// and its owner reference not yet removed.
			return []string{string(ref.UID), replicaSetPodKey(m.GetNamespace(), name)}, nil
		}
		return []string{string(ref.UID)}, nil
	}
	if name := m.GetLabels()[resources.LabelClusterName]; name != "" {
		return []string{orphanKey(m.GetNamespace(), name)}, nil
	}
	return nil, nil
}

// orphanKey is the ownerUID index key of the objects of a cluster that no
// controller owns; it cannot collide with a UID.
func orphanKey(ns, cluster string) string { return "orphan:" + ns + "/" + cluster }

// replicaSetPodKey is the ownerUID index key of a cluster's Pods that a
// ReplicaSet controls; it cannot collide with a UID.
func replicaSetPodKey(ns, cluster string) string { return "replicaset:" + ns + "/" + cluster }

func clusterLabelIndex(obj any) ([]string, error) {
	m, err := MetaOf(obj)
	if err != nil {
		return nil, err
	}
	if name := m.GetLabels()[resources.LabelClusterName]; name != "" {
		return []string{m.GetNamespace() + "/" + name}, nil
	}
	return nil, nil
}

func groupClusterIndex(obj any) ([]string, error) {
	g, ok := obj.(*daskv1.DaskWorkerGroup)
	if !ok {
		return nil, fmt.Errorf("not a DaskWorkerGroup: %T", obj)
	}
	return []string{g.Namespace + "/" + g.Spec.Cluster}, nil
}

func autoscalerClusterIndex(obj any) ([]string, error) {
	a, ok := obj.(*daskv1.DaskAutoscaler)
	if !ok {
		return nil, fmt.Errorf("not a DaskAutoscaler: %T", obj)
	}
	return []string{a.Namespace + "/" + a.Spec.Cluster}, nil
}

func MetaOf(obj any) (metav1.Object, error) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("object %T has no metadata", obj)
	}
	return m, nil
}

// In returns the scope that watches namespace ns.
func (c *Caches) In(ns string) *scope {
	if s, ok := c.Scopes[ns]; ok {
		return s
	}
	return c.Scopes[metav1.NamespaceAll]
}

func (c *Caches) Start(stop <-chan struct{}) {
	for _, s := range c.Scopes {
		s.dask.Start(stop)
		s.kube.Start(stop)
	}
	if c.Kueue != nil {
		c.Kueue.Start(stop)
	}
}

func (c *Caches) HasSynced() bool {
	for _, s := range c.Scopes {
		for _, inf := range []cache.SharedIndexInformer{s.Clusters, s.Groups, s.Jobs, s.Autoscalers, s.Pods, s.Services, s.Deployments, s.ReplicaSets} {
			if !inf.HasSynced() {
				return false
			}
		}
	}
	if c.Kueue != nil {
		for _, synced := range c.Kueue.Synced() {
			if !synced() {
				return false
			}
		}
	}
	return true
}

func (c *Caches) WaitForSync(stop <-chan struct{}) bool {
	var synced []cache.InformerSynced
	for _, s := range c.Scopes {
		synced = append(synced, s.Clusters.HasSynced, s.Groups.HasSynced, s.Jobs.HasSynced,
			s.Autoscalers.HasSynced, s.Pods.HasSynced, s.Services.HasSynced, s.Deployments.HasSynced, s.ReplicaSets.HasSynced)
	}
	if c.Kueue != nil {
		synced = append(synced, c.Kueue.Synced()...)
	}
	return cache.WaitForCacheSync(stop, synced...)
}

func (c *Caches) Cluster(ns, name string) (*daskv1.DaskCluster, error) {
	s := c.In(ns)
	if s == nil {
		return nil, errNotWatched(ns)
	}
	return s.clusterLister.DaskClusters(ns).Get(name)
}

func (c *Caches) Group(ns, name string) (*daskv1.DaskWorkerGroup, error) {
	s := c.In(ns)
	if s == nil {
		return nil, errNotWatched(ns)
	}
	return s.groupLister.DaskWorkerGroups(ns).Get(name)
}

func (c *Caches) Job(ns, name string) (*daskv1.DaskJob, error) {
	s := c.In(ns)
	if s == nil {
		return nil, errNotWatched(ns)
	}
	return s.jobLister.DaskJobs(ns).Get(name)
}

func (c *Caches) Autoscaler(ns, name string) (*daskv1.DaskAutoscaler, error) {
	s := c.In(ns)
	if s == nil {
		return nil, errNotWatched(ns)
	}
	return s.autoscalerLister.DaskAutoscalers(ns).Get(name)
}

func (c *Caches) Pod(ns, name string) (*corev1.Pod, error) {
	s := c.In(ns)
	if s == nil {
		return nil, errNotWatched(ns)
	}
	obj, exists, err := s.Pods.GetIndexer().GetByKey(ns + "/" + name)
	if err != nil {
		return nil, err
	}
	p, ok := PodFromCache(obj)
	if !exists || !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	return p, nil
}

func (c *Caches) Service(ns, name string) (*corev1.Service, error) {
	s := c.In(ns)
	if s == nil {
		return nil, errNotWatched(ns)
	}
	return s.serviceLister.Services(ns).Get(name)
}

// PodsControlledBy returns the Pods whose controller has this UID.
func (c *Caches) PodsControlledBy(ns string, uid string) []*corev1.Pod {
	s := c.In(ns)
	if s == nil {
		return nil
	}
	objs, _ := s.Pods.GetIndexer().ByIndex(indexOwnerUID, uid)
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := PodFromCache(o); ok {
			out = append(out, p)
		}
	}
	return out
}

// ClusterPods returns the Pods labelled with a cluster's name: its
// scheduler and workers (and a job's runner).
func (c *Caches) ClusterPods(ns, cluster string) []*corev1.Pod {
	s := c.In(ns)
	if s == nil {
		return nil
	}
	objs, _ := s.Pods.GetIndexer().ByIndex(indexClusterLabel, ns+"/"+cluster)
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := PodFromCache(o); ok {
			out = append(out, p)
		}
	}
	return out
}

// deploymentsOf and replicaSetsOf return the Deployments and ReplicaSets
// labelled with the cluster's name.
func (c *Caches) deploymentsOf(ns, cluster string) []*appsv1.Deployment {
	return byClusterLabel[*appsv1.Deployment](c, ns, cluster, func(s *scope) cache.SharedIndexInformer { return s.Deployments })
}

func (c *Caches) replicaSetsOf(ns, cluster string) []*appsv1.ReplicaSet {
	return byClusterLabel[*appsv1.ReplicaSet](c, ns, cluster, func(s *scope) cache.SharedIndexInformer { return s.ReplicaSets })
}

func byClusterLabel[T any](c *Caches, ns, cluster string, informer func(*scope) cache.SharedIndexInformer) []T {
	s := c.In(ns)
	if s == nil {
		return nil
	}
	objs, _ := informer(s).GetIndexer().ByIndex(indexClusterLabel, ns+"/"+cluster)
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// GroupsOf returns the DaskWorkerGroups whose spec.cluster names the cluster.
func (c *Caches) GroupsOf(ns, cluster string) []*daskv1.DaskWorkerGroup {
	s := c.In(ns)
	if s == nil {
		return nil
	}
	objs, _ := s.Groups.GetIndexer().ByIndex(indexClusterRef, ns+"/"+cluster)
	out := make([]*daskv1.DaskWorkerGroup, 0, len(objs))
	for _, o := range objs {
		if g, ok := o.(*daskv1.DaskWorkerGroup); ok {
			out = append(out, g)
		}
	}
	return out
}

// AutoscalersOf returns the DaskAutoscalers whose spec.cluster names the cluster.
func (c *Caches) AutoscalersOf(ns, cluster string) []*daskv1.DaskAutoscaler {
	s := c.In(ns)
	if s == nil {
		return nil
	}
	objs, _ := s.Autoscalers.GetIndexer().ByIndex(indexClusterRef, ns+"/"+cluster)
	out := make([]*daskv1.DaskAutoscaler, 0, len(objs))
	for _, o := range objs {
		if a, ok := o.(*daskv1.DaskAutoscaler); ok {
			out = append(out, a)
		}
	}
	return out
}

func errNotWatched(ns string) error {
	return fmt.Errorf("namespace %q is not watched by this operator", ns)
}
