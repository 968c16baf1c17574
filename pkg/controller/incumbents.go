package controller

import (
	"context"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// incumbents finds, from the caches, what a takeover from the Python
// operator has left to do: the cluster's controller removes the Python
// operator's Deployments and adopts its Pods, and the worker groups wait for
// that (takeover.go).
type incumbents struct {
	kube   kubernetes.Interface
	caches *caches
	// foreignOwners holds the ReplicaSets (by UID) found controlled by a
	// user's own Deployment; forgetReplicaSet drops one that is deleted.
	foreignOwners sync.Map
}

func newIncumbents(kube kubernetes.Interface, caches *caches) *incumbents {
	return &incumbents{kube: kube, caches: caches}
}

// forgetReplicaSet drops what is known of a ReplicaSet that was deleted.
func (c *incumbents) forgetReplicaSet(uid types.UID) { c.foreignOwners.Delete(uid) }

// incumbentOf finds, from the caches, what is left to take over of a
// cluster. Only Deployments owned by the cluster or one of its groups count,
// so that a user's own Deployment that happens to carry the label is never
// touched.
func (c *incumbents) of(ctx context.Context, cluster *daskv1.DaskCluster) incumbent {
	ns := cluster.Namespace
	var in incumbent
	deployments := c.caches.deploymentsOf(ns, cluster.Name)
	replicaSets := c.caches.replicaSetsOf(ns, cluster.Name)
	orphans := c.caches.podsControlledBy(ns, orphanKey(ns, cluster.Name))
	rsPods := c.caches.podsControlledBy(ns, replicaSetPodKey(ns, cluster.Name))
	if len(deployments)+len(replicaSets)+len(orphans)+len(rsPods) == 0 {
		return in // the common case: nothing to look up
	}
	groups := map[types.UID]bool{}
	for _, g := range c.caches.groupsOf(ns, cluster.Name) {
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
			in.deployments = append(in.deployments, d)
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
		in.replicaSets = append(in.replicaSets, rs)
		in.controlled = append(in.controlled, c.caches.podsControlledBy(ns, string(rs.UID))...)
	}
	// A Pod whose ReplicaSet is gone from the cache before the garbage
	// collector's removal of its owner reference is: it is about to be
	// orphaned (or, should the collector have missed it, deleted), and holds
	// the takeover back until then.
	for _, p := range rsPods {
		if ref := metav1.GetControllerOf(p); ref != nil && !cached[ref.UID] && incumbentComponent(p.Labels) && podLive(p) {
			in.controlled = append(in.controlled, p)
		}
	}
	for _, p := range orphans {
		if incumbentComponent(p.Labels) && podLive(p) {
			in.orphans = append(in.orphans, p)
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
func (c *incumbents) foreignDeployment(ctx context.Context, ns string, rs types.UID, ref *metav1.OwnerReference) bool {
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
