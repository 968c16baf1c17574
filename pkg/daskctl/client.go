package daskctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
)

// Client runs Dask operations against one cluster's API server.
type Client struct {
	Config *rest.Config
	Kube   kubernetes.Interface
	Dask   versioned.Interface
}

// New builds a Client from a REST config.
func New(cfg *rest.Config) (*Client, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dask, err := versioned.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{Config: cfg, Kube: kube, Dask: dask}, nil
}

// Explain turns an API error into one line a user can act on: a missing
// object, a kind that is not installed, a refused permission, an API server
// that cannot be reached.
func Explain(err error, kind, namespace, name string) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	hasStatus := errors.As(err, &status)
	where := fmt.Sprintf("in namespace %q", namespace)
	if namespace == "" {
		where = "in any namespace"
	}
	switch {
	case apierrors.IsNotFound(err) && hasStatus && status.Status().Details != nil && status.Status().Details.Name != "":
		return fmt.Errorf("%s %q not found %s", strings.ToLower(kind), name, where)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("the %s kind (%s) is not installed on this cluster: install the operator with kubectl apply --server-side -f manifests/install.yaml",
			kind, daskv1.SchemeGroupVersion.String())
	case apierrors.IsForbidden(err):
		return fmt.Errorf("forbidden: %s", status.Status().Message)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("unauthorized: the API server does not accept your credentials (%s)", status.Status().Message)
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s %q already exists %s", strings.ToLower(kind), name, where)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("invalid %s %q: %s", strings.ToLower(kind), name, status.Status().Message)
	}
	var netErr *net.OpError
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) {
		return fmt.Errorf("cannot reach the Kubernetes API server: %v", err)
	}
	return err
}

// GetCluster reads a DaskCluster, with a clear error.
func (c *Client) GetCluster(ctx context.Context, ns, name string) (*daskv1.DaskCluster, error) {
	cl, err := c.Dask.KubernetesV1().DaskClusters(ns).Get(ctx, name, metav1.GetOptions{})
	return cl, Explain(err, "DaskCluster", ns, name)
}

// CreateCluster creates a DaskCluster.
func (c *Client) CreateCluster(ctx context.Context, cluster *daskv1.DaskCluster) (*daskv1.DaskCluster, error) {
	out, err := c.Dask.KubernetesV1().DaskClusters(cluster.Namespace).Create(ctx, cluster, metav1.CreateOptions{})
	return out, Explain(err, "DaskCluster", cluster.Namespace, cluster.Name)
}

// WaitClusterRunning waits until the cluster's phase is Running and its
// scheduler Pod is Ready; it says what it waits for when ctx ends.
func (c *Client) WaitClusterRunning(ctx context.Context, ns, name string) (*daskv1.DaskCluster, error) {
	var cl *daskv1.DaskCluster
	last := "not seen yet"
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var err error
		cl, err = c.GetCluster(ctx, ns, name)
		if err != nil {
			return false, err
		}
		if cl.Status.Phase != daskv1.DaskClusterRunning {
			last = fmt.Sprintf("phase %q", cl.Status.Phase)
			return false, nil
		}
		for _, cond := range cl.Status.Conditions {
			if cond.Type == daskv1.ConditionSchedulerReady {
				last = cond.Message
				return cond.Status == metav1.ConditionTrue, nil
			}
		}
		last = "the scheduler is not Ready yet"
		return false, nil
	})
	if err != nil && ctx.Err() != nil {
		return cl, fmt.Errorf("daskcluster %q is not running yet (%s)", name, last)
	}
	return cl, err
}

// Scale sets a worker group's replicas as the Python client does: the
// cluster's autoscaler, if any, is deleted first (it would undo the
// change). group empty means the default group.
func (c *Client) Scale(ctx context.Context, ns, cluster, group string, n int32) error {
	if _, err := c.GetCluster(ctx, ns, cluster); err != nil {
		return err
	}
	// Everything is checked before anything changes: a wrong group must
	// not cost the cluster its autoscaler.
	name, err := c.groupName(ctx, ns, cluster, group)
	if err != nil {
		return err
	}
	err = c.Dask.KubernetesV1().DaskAutoscalers(ns).Delete(ctx, cluster, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return Explain(err, "DaskAutoscaler", ns, cluster)
	}
	patch := fmt.Appendf(nil, `{"spec":{"worker":{"replicas":%d}}}`, n)
	_, err = c.Dask.KubernetesV1().DaskWorkerGroups(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	return Explain(err, "DaskWorkerGroup", ns, name)
}

// groupName finds a cluster's worker group by its name or by the part
// after "<cluster>-" (empty: the default group), and checks that it
// belongs to the cluster.
func (c *Client) groupName(ctx context.Context, ns, cluster, group string) (string, error) {
	candidates := []string{cluster + "-" + cmp.Or(group, "default")}
	if group != "" {
		candidates = append(candidates, group)
	}
	for _, name := range candidates {
		g, err := c.Dask.KubernetesV1().DaskWorkerGroups(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", Explain(err, "DaskWorkerGroup", ns, name)
		}
		if g.Spec.Cluster != cluster {
			return "", fmt.Errorf("daskworkergroup %q belongs to cluster %q, not %q", name, g.Spec.Cluster, cluster)
		}
		return name, nil
	}
	return "", fmt.Errorf("daskcluster %q has no worker group %q (looked for daskworkergroup %s)", cluster, cmp.Or(group, "default"), strings.Join(candidates, " and "))
}

// ParseWorkers reads a number of workers: decimal digits only (no sign,
// no octal, no trailing characters such as "1,000" or "10k").
func ParseWorkers(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q: want a number of workers, 0 or more, in decimal digits", s)
	}
	return int32(n), nil
}

// Adapt creates or updates the cluster's DaskAutoscaler (named after the
// cluster, as the Python client names it).
func (c *Client) Adapt(ctx context.Context, ns, cluster string, minimum, maximum int32) error {
	cl, err := c.GetCluster(ctx, ns, cluster)
	if err != nil {
		return err
	}
	as := &daskv1.DaskAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: daskv1.SchemeGroupVersion.String(), Kind: "DaskAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Name: cluster, Namespace: ns, OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cl, daskv1.SchemeGroupVersion.WithKind("DaskCluster"))}},
		Spec:       daskv1.DaskAutoscalerSpec{Cluster: cluster, Minimum: minimum, Maximum: maximum},
	}
	_, err = c.Dask.KubernetesV1().DaskAutoscalers(ns).Create(ctx, as, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		patch := fmt.Appendf(nil, `{"spec":{"minimum":%d,"maximum":%d}}`, minimum, maximum)
		_, err = c.Dask.KubernetesV1().DaskAutoscalers(ns).Patch(ctx, cluster, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	return Explain(err, "DaskAutoscaler", ns, cluster)
}

// DeleteCluster deletes a DaskCluster; with wait, until it is gone.
func (c *Client) DeleteCluster(ctx context.Context, ns, name string, waitGone bool) error {
	err := c.Dask.KubernetesV1().DaskClusters(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil {
		return Explain(err, "DaskCluster", ns, name)
	}
	if !waitGone {
		return nil
	}
	return c.waitGone(ctx, "daskcluster", name, func(ctx context.Context) error {
		_, err := c.Dask.KubernetesV1().DaskClusters(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	})
}

// DeleteJob deletes a DaskJob (its cluster and runner go with it).
func (c *Client) DeleteJob(ctx context.Context, ns, name string, waitGone bool) error {
	err := c.Dask.KubernetesV1().DaskJobs(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil {
		return Explain(err, "DaskJob", ns, name)
	}
	if !waitGone {
		return nil
	}
	return c.waitGone(ctx, "daskjob", name, func(ctx context.Context) error {
		_, err := c.Dask.KubernetesV1().DaskJobs(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	})
}

func (c *Client) waitGone(ctx context.Context, kind, name string, get func(context.Context) error) error {
	err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		err := get(ctx)
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("%s %q is not gone yet", kind, name)
	}
	return nil
}

// SubmitJob creates a DaskJob and, when files are given, the ConfigMap
// its runner mounts them from. The ConfigMap comes first: a job whose
// ConfigMap cannot be made (over 1 MiB, RBAC, a leftover of the same name
// that is not this job's) would keep a runner that never starts and a
// cluster that runs forever. Once the job exists it owns the ConfigMap (and
// deletes it with it); on any failure nothing made here is left behind.
func (c *Client) SubmitJob(ctx context.Context, o JobOptions, files map[string]string) (*daskv1.DaskJob, error) {
	var cm *corev1.ConfigMap
	if len(files) > 0 {
		o.ConfigMap = o.Name + "-files"
		var err error
		cm, err = c.Kube.CoreV1().ConfigMaps(o.Namespace).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: o.ConfigMap, Namespace: o.Namespace},
			Data:       files,
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("configmap %q already exists in namespace %q and is not this job's (a leftover?): delete it, or submit the job under another name", o.ConfigMap, o.Namespace)
		}
		if err != nil {
			return nil, Explain(err, "ConfigMap", o.Namespace, o.ConfigMap)
		}
	}
	// What this call made goes again when a later step fails.
	undo := func(job *daskv1.DaskJob) {
		ctx := context.WithoutCancel(ctx)
		if job != nil {
			uid := job.UID
			_ = c.Dask.KubernetesV1().DaskJobs(o.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		}
		if cm != nil {
			uid := cm.UID
			_ = c.Kube.CoreV1().ConfigMaps(o.Namespace).Delete(ctx, cm.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		}
	}
	job, err := c.Dask.KubernetesV1().DaskJobs(o.Namespace).Create(ctx, JobSpec(o), metav1.CreateOptions{})
	if err != nil {
		undo(nil)
		return nil, Explain(err, "DaskJob", o.Namespace, o.Name)
	}
	if cm != nil {
		owned := cm.DeepCopy()
		owned.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(job, daskv1.SchemeGroupVersion.WithKind("DaskJob"))}
		if _, err := c.Kube.CoreV1().ConfigMaps(o.Namespace).Update(ctx, owned, metav1.UpdateOptions{}); err != nil {
			undo(job)
			return nil, Explain(err, "ConfigMap", o.Namespace, cm.Name)
		}
	}
	return job, nil
}

// WaitJob waits until a DaskJob is Successful or Failed and returns it.
func (c *Client) WaitJob(ctx context.Context, ns, name string) (*daskv1.DaskJob, error) {
	var job *daskv1.DaskJob
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var err error
		job, err = c.Dask.KubernetesV1().DaskJobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, Explain(err, "DaskJob", ns, name)
		}
		return job.Status.JobStatus == daskv1.JobSuccessful || job.Status.JobStatus == daskv1.JobFailed, nil
	})
	if err != nil && ctx.Err() != nil {
		status := "unknown"
		if job != nil {
			status = string(job.Status.JobStatus)
		}
		return job, fmt.Errorf("daskjob %q has not finished (status %s)", name, status)
	}
	return job, err
}
