package daskctl

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// Table is rows for `get`, printed as kubectl prints tables.
type Table struct {
	Headers []string
	Rows    [][]string
}

// Print writes the table, columns separated as kubectl separates them.
func (t Table) Print(w io.Writer, withNamespace bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	headers := t.Headers
	if withNamespace {
		headers = append([]string{"NAMESPACE"}, headers...)
	}
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, r := range t.Rows {
		if !withNamespace {
			r = r[1:]
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// notTrue lists the conditions that are not True, as Type=Reason.
func notTrue(conds []metav1.Condition) string {
	var out []string
	for _, c := range conds {
		if c.Status != metav1.ConditionTrue && c.Type != daskv1.ConditionProgressing {
			out = append(out, c.Type+"="+c.Reason)
		}
	}
	if len(out) == 0 {
		return "<none>"
	}
	return strings.Join(out, ",")
}

// ClustersTable lists clusters: phase, each group's ready/desired workers,
// the scheduler's address and dashboard, age; wide adds images and the
// conditions that are not True. Every row starts with the namespace.
func (c *Client) ClustersTable(ctx context.Context, clusters []daskv1.DaskCluster, wide bool, now time.Time) (Table, error) {
	t := Table{Headers: []string{"NAME", "PHASE", "WORKERS", "SCHEDULER", "DASHBOARD", "AGE"}}
	if wide {
		t.Headers = append(t.Headers, "IMAGES", "CONDITIONS")
	}
	groups := map[string][]daskv1.DaskWorkerGroup{}
	namespaces := map[string]bool{}
	for _, cl := range clusters {
		namespaces[cl.Namespace] = true
	}
	for _, ns := range sortedKeys(namespaces) {
		list, err := c.Dask.KubernetesV1().DaskWorkerGroups(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return t, Explain(err, "DaskWorkerGroup", ns, "")
		}
		for _, g := range list.Items {
			groups[ns+"/"+g.Spec.Cluster] = append(groups[ns+"/"+g.Spec.Cluster], g)
		}
	}
	for _, cl := range clusters {
		var workers []string
		for _, g := range groups[cl.Namespace+"/"+cl.Name] {
			name := strings.TrimPrefix(g.Name, cl.Name+"-")
			desired := int32(1)
			if g.Spec.Worker.Replicas != nil {
				desired = *g.Spec.Worker.Replicas
			}
			workers = append(workers, fmt.Sprintf("%s:%d/%d", name, g.Status.ReadyReplicas, desired))
		}
		row := []string{cl.Namespace, cl.Name, orNone(string(cl.Status.Phase)), orNone(strings.Join(workers, ",")),
			orNone(cmp.Or(cl.Status.ExternalSchedulerAddress, cl.Status.SchedulerAddress)),
			orNone(cmp.Or(cl.Status.ExternalDashboardURL, cl.Status.DashboardURL)), age(cl.CreationTimestamp, now)}
		if wide {
			images := map[string]bool{}
			for _, ct := range cl.Spec.Scheduler.Spec.Containers {
				images[ct.Image] = true
			}
			for _, ct := range cl.Spec.Worker.Spec.Containers {
				images[ct.Image] = true
			}
			row = append(row, strings.Join(sortedKeys(images), ","), notTrue(cl.Status.Conditions))
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// GroupsTable lists worker groups.
func GroupsTable(groups []daskv1.DaskWorkerGroup, wide bool, now time.Time) Table {
	t := Table{Headers: []string{"NAME", "CLUSTER", "READY", "UP-TO-DATE", "AGE"}}
	if wide {
		t.Headers = append(t.Headers, "IMAGES", "CONDITIONS")
	}
	for _, g := range groups {
		desired := int32(1)
		if g.Spec.Worker.Replicas != nil {
			desired = *g.Spec.Worker.Replicas
		}
		row := []string{g.Namespace, g.Name, g.Spec.Cluster, fmt.Sprintf("%d/%d", g.Status.ReadyReplicas, desired),
			fmt.Sprint(g.Status.UpdatedReplicas), age(g.CreationTimestamp, now)}
		if wide {
			var images []string
			for _, ct := range g.Spec.Worker.Spec.Containers {
				images = append(images, ct.Image)
			}
			row = append(row, strings.Join(images, ","), notTrue(g.Status.Conditions))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// JobsTable lists DaskJobs.
func JobsTable(jobs []daskv1.DaskJob, wide bool, now time.Time) Table {
	t := Table{Headers: []string{"NAME", "STATUS", "CLUSTER", "RUNNER", "ATTEMPTS", "AGE"}}
	if wide {
		t.Headers = append(t.Headers, "IMAGES", "CONDITIONS")
	}
	for _, j := range jobs {
		row := []string{j.Namespace, j.Name, orNone(string(j.Status.JobStatus)), orNone(j.Status.ClusterName), orNone(j.Status.JobRunnerPodName),
			fmt.Sprint(j.Status.Attempts), age(j.CreationTimestamp, now)}
		if wide {
			var images []string
			for _, ct := range j.Spec.Job.Spec.Containers {
				images = append(images, ct.Image)
			}
			row = append(row, strings.Join(images, ","), notTrue(j.Status.Conditions))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// AutoscalersTable lists DaskAutoscalers.
func AutoscalersTable(as []daskv1.DaskAutoscaler, wide bool, now time.Time) Table {
	t := Table{Headers: []string{"NAME", "CLUSTER", "MINIMUM", "MAXIMUM", "DESIRED", "AGE"}}
	if wide {
		t.Headers = append(t.Headers, "CONDITIONS")
	}
	for _, a := range as {
		desired := "<none>"
		if a.Status.DesiredWorkers != nil {
			desired = fmt.Sprint(*a.Status.DesiredWorkers)
		}
		row := []string{a.Namespace, a.Name, a.Spec.Cluster, fmt.Sprint(a.Spec.Minimum), fmt.Sprint(a.Spec.Maximum), desired, age(a.CreationTimestamp, now)}
		if wide {
			row = append(row, notTrue(a.Status.Conditions))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}
