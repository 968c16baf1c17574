package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskctl"
)

// listing is one kind's objects as listed: the list and its items with
// their kinds set (for -o json|yaml), their names (for completion) and
// their table.
type listing struct {
	kind  string
	list  kruntime.Object
	items []kruntime.Object
	names []string
	table func(wide bool, now time.Time) (daskctl.Table, error)
}

// listKind lists the objects of a kind, named as `get` takes it.
func listKind(ctx context.Context, c *daskctl.Client, kind, ns string, opts metav1.ListOptions) (*listing, error) {
	v1 := c.Dask.KubernetesV1()
	switch kind {
	case "clusters", "cluster", "daskclusters", "dsk":
		l, err := v1.DaskClusters(ns).List(ctx, opts)
		if err != nil {
			return nil, daskctl.Explain(err, "DaskCluster", ns, "")
		}
		return fill(l, l.Items, "DaskCluster", func(wide bool, now time.Time) (daskctl.Table, error) {
			return c.ClustersTable(ctx, l.Items, wide, now)
		}), nil
	case "groups", "group", "workergroups", "daskworkergroups":
		l, err := v1.DaskWorkerGroups(ns).List(ctx, opts)
		if err != nil {
			return nil, daskctl.Explain(err, "DaskWorkerGroup", ns, "")
		}
		return fill(l, l.Items, "DaskWorkerGroup", func(wide bool, now time.Time) (daskctl.Table, error) {
			return daskctl.GroupsTable(l.Items, wide, now), nil
		}), nil
	case "jobs", "job", "daskjobs":
		l, err := v1.DaskJobs(ns).List(ctx, opts)
		if err != nil {
			return nil, daskctl.Explain(err, "DaskJob", ns, "")
		}
		return fill(l, l.Items, "DaskJob", func(wide bool, now time.Time) (daskctl.Table, error) {
			return daskctl.JobsTable(l.Items, wide, now), nil
		}), nil
	case "autoscalers", "autoscaler", "daskautoscalers":
		l, err := v1.DaskAutoscalers(ns).List(ctx, opts)
		if err != nil {
			return nil, daskctl.Explain(err, "DaskAutoscaler", ns, "")
		}
		return fill(l, l.Items, "DaskAutoscaler", func(wide bool, now time.Time) (daskctl.Table, error) {
			return daskctl.AutoscalersTable(l.Items, wide, now), nil
		}), nil
	}
	return nil, fmt.Errorf("unknown kind %q: want clusters, groups, jobs or autoscalers", kind)
}

// fill makes a listing of a typed list and its items.
func fill[T any, PT interface {
	*T
	kruntime.Object
	metav1.Object
}](list kruntime.Object, items []T, kind string, table func(bool, time.Time) (daskctl.Table, error)) *listing {
	out := &listing{kind: kind, list: list, table: table}
	list.GetObjectKind().SetGroupVersionKind(daskv1.SchemeGroupVersion.WithKind(kind + "List"))
	for i := range items {
		p := PT(&items[i])
		p.GetObjectKind().SetGroupVersionKind(daskv1.SchemeGroupVersion.WithKind(kind))
		out.items = append(out.items, p)
		out.names = append(out.names, p.GetName())
	}
	return out
}
