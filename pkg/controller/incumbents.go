package controller

import (
	"context"
	"sync"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"k8s.io/client-go/kubernetes"
)

// Incumbents finds, from the caches, what a takeover from the Python
// operator has left to do: the cluster's controller removes the Python
// operator's Deployments and adopts its Pods, and the worker groups wait for
// that (cluster/takeover.go).
type Incumbents struct {
	kube   kubernetes.Interface
	caches *Caches
	// foreignOwners holds the ReplicaSets (by UID) found controlled by a
	// user's own Deployment; forgetReplicaSet drops one that is deleted.
	foreignOwners sync.Map
}

func NewIncumbents(kube kubernetes.Interface, caches *Caches) *Incumbents {
	return &Incumbents{kube: kube, caches: caches}
}

// ForgetReplicaSet drops what is known of a ReplicaSet that was deleted.
func (c *Incumbents) ForgetReplicaSet(uid types.UID) { c.foreignOwners.Delete(uid) }

// incumbentOf finds, from the caches, what is left to take over of a
// cluster. Only Deployments owned by the cluster or one of its groups count,
// so that a user's own Deployment that happens to carry the label is never
// touched.
func (c *Incumbents) Of(ctx context.Context, cluster *daskv1.DaskCluster) incumbent {
	ns := cluster.Namespace
	var in incumbent
	deployments := c.caches.deploymentsOf(ns, cluster.Name)
	replicaSets := c.caches.replicaSetsOf(ns, cluster.Name)
	orphans := c.caches.PodsControlledBy(ns, orphanKey(ns, cluster.Name))
	rsPods := c.caches.PodsControlledBy(ns, replicaSetPodKey(ns, cluster.Name))
	if len(deployments)+len(replicaSets)+len(orphans)+len(rsPods) == 0 {
		return in // the common case: nothing to look up
	}
	groups := map[types.UID]bool{}
	for _, g := range c.caches.GroupsOf(ns, cluster.Name) {
		groups[g.UID] = true
	}
	ours := func(m metav1.Object) bool {
		for _, r := range m.GetOwnerReferences() {
			if r.APIVersion == daskv1.SchemeGroupVersion.String() &&
				(r.Kind == "DaskCluster" && r.UID == cluster.UID || r.Kind == "DaskWorkerGroup" && groups[r.UID]) {
				return true
			}
		}
		return false
	}
	byUID := map[types.UID]bool{}
	names := map[string]bool{}
	for _, d := range deployments {
		names[d.Name] = true
		if ours(d) && incumbentComponent(d.Labels) {
			in.Deployments = append(in.Deployments, d)
			byUID[d.UID] = true
		}
	}
	cached := map[types.UID]bool{}
	for _, rs := range replicaSets {
		cached[rs.UID] = true
		if !incumbentComponent(rs.Labels) {
			continue
		}
		// Controlled by one of those Deployments, or by one that is gone
		// (its orphaning is under way), or by none (orphaned).
		if ref := metav1.GetControllerOf(rs); ref != nil && (ref.Kind != "Deployment" || !byUID[ref.UID] && names[ref.Name] ||
			!byUID[ref.UID] && c.foreignDeployment(ctx, ns, rs.UID, ref)) {
			continue
		}
		in.ReplicaSets = append(in.ReplicaSets, rs)
		in.Controlled = append(in.Controlled, c.caches.PodsControlledBy(ns, string(rs.UID))...)
	}
	// A Pod whose ReplicaSet is gone from the cache before the garbage
	// collector's removal of its owner reference is: it is about to be
	// orphaned (or, should the collector have missed it, deleted), and holds
	// the takeover back until then.
	for _, p := range rsPods {
		if ref := metav1.GetControllerOf(p); ref != nil && !cached[ref.UID] && incumbentComponent(p.Labels) && podLive(p) {
			in.Controlled = append(in.Controlled, p)
		}
	}
	for _, p := range orphans {
		if incumbentComponent(p.Labels) && podLive(p) {
			in.Orphans = append(in.Orphans, p)
		}
	}
	return in
}

// foreignDeployment tells whether the Deployment controlling a ReplicaSet
// lives and is not in the cache: a user's own, whose Pod template carries a
// cluster's labels (so its ReplicaSet is in the label-filtered cache) while
// it does not. The cache cannot tell that from a Deployment already deleted
// (the orphaning under way): a live read does, once per ReplicaSet (a
// Deployment's UID never changes). A read that fails counts as not
// foreign: the takeover waits rather than guess.
func (c *Incumbents) foreignDeployment(ctx context.Context, ns string, rs types.UID, ref *metav1.OwnerReference) bool {
	if _, ok := c.foreignOwners.Load(rs); ok {
		return true
	}
	d, err := c.kube.AppsV1().Deployments(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil || d.UID != ref.UID {
		return false
	}
	c.foreignOwners.Store(rs, true)
	return true
}

// incumbent is what the Python operator left of one cluster.
type incumbent struct {
	Deployments []*appsv1.Deployment // owned by the cluster or by one of its groups
	ReplicaSets []*appsv1.ReplicaSet // of those Deployments, or left by them
	Controlled  []*corev1.Pod        // Pods those ReplicaSets still control
	Orphans     []*corev1.Pod        // the cluster's running Pods that no controller owns
}

func (in incumbent) Empty() bool {
	return len(in.Deployments)+len(in.ReplicaSets)+len(in.Controlled)+len(in.Orphans) == 0
}

// Pending tells whether anything of the takeover concerns the scheduler
// (group "") or one group's workers.
func (in incumbent) Pending(group string) bool {
	concerns := func(labels map[string]string) bool {
		if group == "" {
			return labels[resources.LabelComponent] == resources.ComponentScheduler
		}
		return labels[resources.LabelComponent] == resources.ComponentWorker && labels[resources.LabelWorkerGroupName] == group
	}
	for _, d := range in.Deployments {
		if concerns(d.Labels) {
			return true
		}
	}
	for _, rs := range in.ReplicaSets {
		if concerns(rs.Labels) {
			return true
		}
	}
	for _, p := range append(append([]*corev1.Pod{}, in.Controlled...), in.Orphans...) {
		if concerns(p.Labels) {
			return true
		}
	}
	return false
}

// podLive tells a Pod neither ended nor being deleted.
func podLive(p *corev1.Pod) bool { return p.DeletionTimestamp == nil && !PodTerminal(p) }

// incumbentComponent tells a scheduler's or worker's labels.
func incumbentComponent(labels map[string]string) bool {
	c := labels[resources.LabelComponent]
	return c == resources.ComponentScheduler || c == resources.ComponentWorker
}

// schedulerTakenOver returns the scheduler Pod of a takeover in progress
// (still controlled by a ReplicaSet, or orphaned), for the cluster's status.
func (in incumbent) Scheduler() *corev1.Pod {
	for _, p := range append(append([]*corev1.Pod{}, in.Controlled...), in.Orphans...) {
		if p.Labels[resources.LabelComponent] == resources.ComponentScheduler && p.DeletionTimestamp == nil {
			return p
		}
	}
	return nil
}

// TakeoverOf tells, for a Pod or Service no Dask object controls (or that a
// ReplicaSet or Deployment controls), or for a Deployment or ReplicaSet,
// the cluster and group ("" for none) whose takeover from the Python
// operator it may concern: their controllers wait for its events.
func TakeoverOf(obj any) (ns, cluster, group string, ok bool) {
	m, err := MetaOf(obj)
	if err != nil {
		return "", "", "", false
	}
	if ref := metav1.GetControllerOf(m); ref != nil {
		if ref.APIVersion == daskv1.SchemeGroupVersion.String() || ref.Kind != "ReplicaSet" && ref.Kind != "Deployment" {
			return "", "", "", false
		}
	}
	labels := m.GetLabels()
	cluster = labels[resources.LabelClusterName]
	if cluster == "" {
		return "", "", "", false
	}
	return m.GetNamespace(), cluster, labels[resources.LabelWorkerGroupName], true
}
