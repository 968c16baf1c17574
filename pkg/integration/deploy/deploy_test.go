package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	name := prefix + "-" + rand.String(5)
	_, err := kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return name
}

// applyOperatorAccount installs the operator's namespace, ServiceAccount
// and leader-election Role from manifests/deploy, and, with cluster, its
// ClusterRole and binding.
func applyOperatorAccount(t *testing.T, cluster bool) {
	t.Helper()
	files := []string{"00-namespace.yaml", "10-serviceaccount.yaml", "30-leader-election-role.yaml"}
	if cluster {
		files = append(files, "20-clusterrole.yaml", "21-clusterrolebinding.yaml")
	}
	for _, f := range files {
		kubectl(t, "apply", "--server-side", "-f", filepath.Join("manifests", "deploy", f))
	}
}

func workers(t *testing.T, ns, cluster string) (all, ready int) {
	pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: "dask.org/component=worker,dask.org/cluster-name=" + cluster,
	})
	require.NoError(t, err)
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		all++
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return all, ready
}

func waitWorkers(t *testing.T, ns, cluster string, n int) {
	t.Helper()
	eventually(t, time.Minute, func() (bool, string) {
		all, ready := workers(t, ns, cluster)
		return all == n && ready == n, fmt.Sprintf("%d workers (%d ready), want %d", all, ready, n)
	})
}

func fixture(t *testing.T, file string) string { return testenv.FixturePath(t, file) }

// exercise drives every kind through its life in namespace ns, so that
// every API call the operator makes is made under the RBAC being tested.
func exercise(t *testing.T, op *operatorProcess, ns string) {
	t.Helper()
	ctx := context.Background()
	kubectl(t, "create", "-n", ns, "-f", fixture(t, "cluster.yaml"))
	waitWorkers(t, ns, "simple", 2)
	eventually(t, 30*time.Second, func() (bool, string) {
		c, err := dask.KubernetesV1().DaskClusters(ns).Get(ctx, "simple", metav1.GetOptions{})
		require.NoError(t, err)
		return c.Status.Phase == daskv1.DaskClusterRunning, string(c.Status.Phase)
	})
	// Labels and annotations added later reach the running scheduler and
	// workers (a patch of each Pod: issue 15, item 4).
	kubectl(t, "label", "-n", ns, "dsk", "simple", "team=data")
	kubectl(t, "annotate", "-n", ns, "dsk", "simple", "cost-center=42")
	eventually(t, time.Minute, func() (bool, string) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "dask.org/cluster-name=simple"})
		require.NoError(t, err)
		for _, p := range pods.Items {
			if p.Labels["team"] != "data" || p.Annotations["cost-center"] != "42" {
				return false, "Pod " + p.Name + " lacks the new label or annotation"
			}
		}
		return len(pods.Items) >= 3, fmt.Sprintf("%d Pods", len(pods.Items))
	})
	kubectl(t, "scale", "-n", ns, "dsk", "simple", "--replicas=3")
	waitWorkers(t, ns, "simple", 3)
	kubectl(t, "scale", "-n", ns, "dsk", "simple", "--replicas=1")
	waitWorkers(t, ns, "simple", 1)

	kubectl(t, "create", "-n", ns, "-f", fixture(t, "workergroup.yaml"))
	waitWorkers(t, ns, "simple", 2)

	kubectl(t, "create", "-n", ns, "-f", fixture(t, "autoscaler.yaml"))
	kubectl(t, "patch", "-n", ns, "daskautoscaler", "simple", "--type=merge", "-p", `{"spec":{"minimum":2}}`)
	waitWorkers(t, ns, "simple", 3)

	kubectl(t, "create", "-n", ns, "-f", fixture(t, "job.yaml"))
	eventually(t, time.Minute, func() (bool, string) {
		j, err := dask.KubernetesV1().DaskJobs(ns).Get(ctx, "simple-job", metav1.GetOptions{})
		require.NoError(t, err)
		return j.Status.JobStatus == daskv1.JobRunning, string(j.Status.JobStatus)
	})
	p, err := kube.CoreV1().Pods(ns).Get(ctx, "simple-job-runner", metav1.GetOptions{})
	require.NoError(t, err)
	p.Status.Phase = corev1.PodSucceeded
	_, err = kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, time.Minute, func() (bool, string) {
		j, err := dask.KubernetesV1().DaskJobs(ns).Get(ctx, "simple-job", metav1.GetOptions{})
		require.NoError(t, err)
		_, cerr := dask.KubernetesV1().DaskClusters(ns).Get(ctx, "simple-job", metav1.GetOptions{})
		return j.Status.JobStatus == daskv1.JobSuccessful && apierrors.IsNotFound(cerr), string(j.Status.JobStatus)
	})

	kubectl(t, "delete", "-n", ns, "dsk", "simple")
	eventually(t, time.Minute, func() (bool, string) {
		all, _ := workers(t, ns, "simple")
		return all == 0, fmt.Sprintf("%d workers left", all)
	})
	time.Sleep(time.Second)
	forbidden := op.logLines("forbidden")
	assert.Empty(t, forbidden, "the operator needed a permission the manifests do not grant")
	code, body, err := get("http://" + op.metricsAddr + "/metrics")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	assert.NotRegexp(t, `rest_client_requests_total\{code="403"`, body, "the API server refused a request of the operator")
	assert.False(t, op.exited(), "the operator is still running")
}

// The operator, running as its ServiceAccount with only the shipped
// ClusterRole, handles every kind end to end; it serves probes and metrics.
func TestOperatorWithTheShippedClusterRole(t *testing.T) {
	applyOperatorAccount(t, true)
	op := startOperator(t, serviceAccountKubeconfig(t))
	ns := newNamespace(t, "rbac-cluster")
	exercise(t, op, ns)

	code, body, err := get("http://" + op.healthAddr + "/readyz")
	require.NoError(t, err)
	assert.Equal(t, 200, code, body)
	code, _, err = get("http://" + op.healthAddr + "/healthz")
	require.NoError(t, err)
	assert.Equal(t, 200, code)

	code, body, err = get("http://" + op.metricsAddr + "/metrics")
	require.NoError(t, err)
	require.Equal(t, 200, code)
	for _, want := range []string{
		`workqueue_adds_total\{name="daskcluster"\} [1-9]`,
		`workqueue_depth\{name="daskworkergroup"\} \d`,
		`workqueue_work_duration_seconds_count\{name="daskjob"\} [1-9]`,
		`rest_client_requests_total\{code="201",host="[^"]+",method="POST"\} [1-9]`,
		`dask_operator_jobs\{status="Successful"\} 1`,
		`dask_operator_worker_groups \d`,
		`dask_operator_workers_desired \d`,
		`dask_operator_sync_duration_seconds_count\{controller="daskcluster",result="ok"\} [1-9]`,
		`dask_operator_api_requests_total\{resource="pods",verb="create"\} [1-9]`,
		`dask_operator_api_requests_total\{resource="daskclusters/status",verb="update"\} [1-9]`,
		`dask_operator_api_requests_total\{resource="daskclusters",verb="watch"\} [1-9]`,
		`dask_operator_scheduler_calls_total\{result="error",route="get_workers"\} [1-9]`,
	} {
		if !regexp.MustCompile(want).MatchString(body) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
	assert.True(t, regexp.MustCompile(`dask_operator_worker_pods_created_total [1-9]`).MatchString(body))
	assert.True(t, regexp.MustCompile(`dask_operator_worker_pods_deleted_total\{reason="fallback"\} [1-9]`).MatchString(body))
}

// With --namespace and only the namespaced Role in that namespace, the
// operator works there.
func TestOperatorWithTheNamespacedRole(t *testing.T) {
	applyOperatorAccount(t, false)
	// Make sure no ClusterRoleBinding from another test grants more.
	_ = kube.RbacV1().ClusterRoleBindings().Delete(context.Background(), "dask-operator", metav1.DeleteOptions{})
	ns := newNamespace(t, "rbac-ns")
	role, err := os.ReadFile(filepath.Join(root, "manifests", "namespaced", "role.yaml"))
	require.NoError(t, err)
	rolePath := filepath.Join(t.TempDir(), "role.yaml")
	require.NoError(t, os.WriteFile(rolePath, []byte(strings.ReplaceAll(string(role), "namespace: dask\n", "namespace: "+ns+"\n")), 0o644))
	kubectl(t, "apply", "--server-side", "-f", rolePath)

	op := startOperator(t, serviceAccountKubeconfig(t), "--namespace="+ns)
	exercise(t, op, ns)
}

// Two replicas: one leads; when it is killed, the other takes over within
// the lease duration and the cluster still converges.
func TestLeaderElectionFailover(t *testing.T) {
	applyOperatorAccount(t, true)
	ns := newNamespace(t, "leader")
	kubeconfig := serviceAccountKubeconfig(t)
	a := startOperator(t, kubeconfig)
	b := startOperator(t, kubeconfig)
	ops := map[string]*operatorProcess{}

	// A lease left by an earlier operator expires first (15 s).
	eventually(t, 40*time.Second, func() (bool, string) {
		for _, op := range []*operatorProcess{a, b} {
			if len(op.logLines("Became the leader")) > 0 {
				return true, ""
			}
		}
		return false, "no replica leads"
	})
	for _, op := range []*operatorProcess{a, b} {
		if len(op.logLines("Became the leader")) > 0 {
			ops["leader"] = op
		} else {
			ops["follower"] = op
		}
	}
	lease, err := kube.CoordinationV1().Leases("dask-operator").Get(context.Background(), "dask-operator", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, lease.Spec.HolderIdentity)
	leader := *lease.Spec.HolderIdentity
	require.NotNil(t, ops["leader"], "one replica says it leads")
	require.NotNil(t, ops["follower"])
	assert.Empty(t, ops["follower"].logLines("Starting workers"), "the follower runs no controller")

	kubectl(t, "create", "-n", ns, "-f", fixture(t, "cluster.yaml"))
	waitWorkers(t, ns, "simple", 2)

	killed := time.Now()
	ops["leader"].stop(syscall.SIGKILL) // no clean hand-over: the lease must expire
	eventually(t, 40*time.Second, func() (bool, string) {
		return len(ops["follower"].logLines("Became the leader")) > 0, "the follower has not taken over"
	})
	took := time.Since(killed)
	t.Logf("take-over after %s", took)
	assert.Less(t, took, 30*time.Second, "within the lease duration (15s) and a few retry periods")
	lease, err = kube.CoordinationV1().Leases("dask-operator").Get(context.Background(), "dask-operator", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEqual(t, leader, *lease.Spec.HolderIdentity)

	kubectl(t, "scale", "-n", ns, "dsk", "simple", "--replicas=4")
	waitWorkers(t, ns, "simple", 4)

	// A clean stop releases the lease at once.
	ops["follower"].stop(syscall.SIGTERM)
	eventually(t, 10*time.Second, func() (bool, string) {
		l, err := kube.CoordinationV1().Leases("dask-operator").Get(context.Background(), "dask-operator", metav1.GetOptions{})
		require.NoError(t, err)
		return l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "", "lease still held"
	})
}

// The single-file install applies server-side to a real API server and
// every object, the Deployment included, passes validation.
func TestInstallYAMLApplies(t *testing.T) {
	out := kubectl(t, "apply", "--server-side", "--force-conflicts", "-f", "manifests/install.yaml")
	for _, want := range []string{
		"customresourcedefinition.apiextensions.k8s.io/daskclusters.kubernetes.dask.org serverside-applied",
		"clusterrole.rbac.authorization.k8s.io/dask-operator serverside-applied",
		"deployment.apps/dask-operator serverside-applied",
	} {
		assert.Contains(t, out, want)
	}
	d, err := kube.AppsV1().Deployments("dask-operator").Get(context.Background(), "dask-operator", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(2), *d.Spec.Replicas)
	sc := d.Spec.Template.Spec.Containers[0].SecurityContext
	require.NotNil(t, sc)
	assert.True(t, *sc.ReadOnlyRootFilesystem)
	assert.False(t, *sc.AllowPrivilegeEscalation)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	assert.Contains(t, d.Spec.Template.Spec.Containers[0].Args, "--leader-elect=true")
	// The restricted Pod Security level admits the operator's Pod.
	out = kubectl(t, "label", "--dry-run=server", "--overwrite", "ns", "dask-operator", "pod-security.kubernetes.io/enforce=restricted")
	assert.NotContains(t, out, "violate")
	require.NoError(t, kube.AppsV1().Deployments("dask-operator").Delete(context.Background(), "dask-operator", metav1.DeleteOptions{}))
}
