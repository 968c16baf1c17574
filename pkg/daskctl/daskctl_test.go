package daskctl

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	daskfake "github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned/fake"
)

func TestClusterSpecDefaultsAreTheClients(t *testing.T) {
	c := ClusterSpec(ClusterOptions{Name: "x"})
	assert.Equal(t, int32(3), *c.Spec.Worker.Replicas, "make_cluster_spec's n_workers default")
	w := c.Spec.Worker.Spec.Containers[0]
	assert.Equal(t, DefaultImage, w.Image)
	assert.Equal(t, []string{"dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--dashboard", "--dashboard-address", "8788"}, w.Args)
	s := c.Spec.Scheduler
	assert.Equal(t, corev1.ServiceTypeClusterIP, s.Service.Type)
	assert.Equal(t, map[string]string{"dask.org/cluster-name": "x", "dask.org/component": "scheduler"}, s.Service.Selector)
	assert.Equal(t, int32(1), s.Spec.Containers[0].ReadinessProbe.PeriodSeconds)

	c = ClusterSpec(ClusterOptions{Name: "x", WorkerCommand: "dask worker --nthreads 2", Jupyter: true})
	assert.Equal(t, []string{"dask", "worker", "--nthreads", "2", "--name"}, c.Spec.Worker.Spec.Containers[0].Args[:5])
	assert.Contains(t, c.Spec.Scheduler.Spec.Containers[0].Args, "--jupyter")
}

func TestParseEnv(t *testing.T) {
	env, err := ParseEnv([]string{"A=1", "B=x=y"})
	require.NoError(t, err)
	assert.Equal(t, []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "x=y"}}, env)
	_, err = ParseEnv([]string{"novalue"})
	assert.ErrorContains(t, err, "want NAME=VALUE")
}

func TestJobSpecMountsTheFiles(t *testing.T) {
	j := JobSpec(JobOptions{Name: "j", Command: []string{"python", "a.py"}, ConfigMap: "j-files"})
	pod := j.Spec.Job.Spec
	assert.Equal(t, corev1.RestartPolicyNever, pod.RestartPolicy)
	require.Len(t, pod.Volumes, 1)
	assert.Equal(t, "j-files", pod.Volumes[0].ConfigMap.Name)
	assert.Equal(t, FileMount, pod.Containers[0].WorkingDir)
	assert.Nil(t, j.Spec.Cluster.Spec.Scheduler.Service.Selector, "the operator selects the job cluster's scheduler")
}

func TestExplainSaysWhatToDo(t *testing.T) {
	gr := schema.GroupResource{Group: "kubernetes.dask.org", Resource: "daskclusters"}
	assert.EqualError(t, Explain(apierrors.NewNotFound(gr, "x"), "DaskCluster", "ns", "x"), `daskcluster "x" not found in namespace "ns"`)
	missingKind := &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 404, Reason: metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource"}}
	assert.ErrorContains(t, Explain(missingKind, "DaskCluster", "ns", ""), "is not installed on this cluster")
	assert.ErrorContains(t, Explain(apierrors.NewForbidden(gr, "", errors.New("no")), "DaskCluster", "ns", ""), "forbidden")
	assert.Nil(t, Explain(nil, "DaskCluster", "ns", "x"))
}

func TestScaleDeletesTheAutoscalerFirst(t *testing.T) {
	cl := ClusterSpec(ClusterOptions{Name: "c", Namespace: "ns"})
	g := &daskv1.DaskWorkerGroup{ObjectMeta: metav1.ObjectMeta{Name: "c-default", Namespace: "ns"}, Spec: daskv1.DaskWorkerGroupSpec{Cluster: "c"}}
	as := &daskv1.DaskAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}, Spec: daskv1.DaskAutoscalerSpec{Cluster: "c", Maximum: 3}}
	dask := daskfake.NewSimpleClientset(cl, g, as)
	c := &Client{Kube: kubefake.NewSimpleClientset(), Dask: dask}
	require.NoError(t, c.Scale(context.Background(), "ns", "c", "", 5))
	var verbs []string
	for _, a := range dask.Actions() {
		if a.GetVerb() != "get" {
			verbs = append(verbs, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	assert.Equal(t, []string{"delete daskautoscalers", "patch daskworkergroups"}, verbs)
	got, err := dask.KubernetesV1().DaskWorkerGroups("ns").Get(context.Background(), "c-default", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(5), *got.Spec.Worker.Replicas)
	assert.ErrorContains(t, c.Scale(context.Background(), "ns", "missing", "", 1), `daskcluster "missing" not found`)
}

func TestClustersTable(t *testing.T) {
	cl := ClusterSpec(ClusterOptions{Name: "c", Namespace: "ns"})
	cl.CreationTimestamp = metav1.NewTime(time.Unix(1000, 0))
	cl.Status = daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterRunning, SchedulerAddress: "tcp://c-scheduler.ns.svc.cluster.local:8786",
		DashboardURL: "http://c-scheduler.ns.svc.cluster.local:8787",
		Conditions:   []metav1.Condition{{Type: "WorkersReady", Status: metav1.ConditionFalse, Reason: "NotAllReady"}}}
	three, one := int32(3), int32(1)
	g1 := daskv1.DaskWorkerGroup{ObjectMeta: metav1.ObjectMeta{Name: "c-default", Namespace: "ns"},
		Spec: daskv1.DaskWorkerGroupSpec{Cluster: "c", Worker: daskv1.WorkerSpec{Replicas: &three}}, Status: daskv1.DaskWorkerGroupStatus{ReadyReplicas: 2}}
	g2 := daskv1.DaskWorkerGroup{ObjectMeta: metav1.ObjectMeta{Name: "c-big", Namespace: "ns"},
		Spec: daskv1.DaskWorkerGroupSpec{Cluster: "c", Worker: daskv1.WorkerSpec{Replicas: &one}}, Status: daskv1.DaskWorkerGroupStatus{ReadyReplicas: 1}}
	c := &Client{Kube: kubefake.NewSimpleClientset(), Dask: daskfake.NewSimpleClientset(&g1, &g2)}
	table, err := c.ClustersTable(context.Background(), []daskv1.DaskCluster{*cl}, true, time.Unix(1000+3600, 0))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, table.Print(&buf, false))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	assert.Regexp(t, `^NAME\s+PHASE\s+WORKERS\s+SCHEDULER\s+DASHBOARD\s+AGE\s+IMAGES\s+CONDITIONS$`, lines[0])
	assert.Regexp(t, `^c\s+Running\s+(big:1/1,default:2/3|default:2/3,big:1/1)\s+tcp://c-scheduler\.ns\.svc\.cluster\.local:8786\s+http://\S+\s+60m\s+ghcr.io/dask/dask:latest\s+WorkersReady=NotAllReady$`, lines[1])
}

// Issue 29, item 12: N is decimal digits only: "08" is 8 (not an octal
// misread as 0), and "1,000" or "10k" are errors (not 1 or 10).
func TestParseWorkersIsStrict(t *testing.T) {
	for _, bad := range []string{"1,000", "10k", "-1", "+3", " 3", "3 ", "", "0x10", "99999999999"} {
		_, err := ParseWorkers(bad)
		assert.Error(t, err, "%q", bad)
	}
	for s, want := range map[string]int32{"0": 0, "8": 8, "08": 8, "010": 10, "1000": 1000} {
		n, err := ParseWorkers(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, n)
	}
}

// Issue 29, item 12: --group takes the group's full name or the part after
// <cluster>-; a group that does not exist, or is another cluster's, is an
// error before anything changes (the autoscaler stays).
func TestScaleChecksTheGroupBeforeDeletingTheAutoscaler(t *testing.T) {
	cl := ClusterSpec(ClusterOptions{Name: "demo", Namespace: "ns"})
	big := &daskv1.DaskWorkerGroup{ObjectMeta: metav1.ObjectMeta{Name: "demo-highmem", Namespace: "ns"}, Spec: daskv1.DaskWorkerGroupSpec{Cluster: "demo"}}
	other := &daskv1.DaskWorkerGroup{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}, Spec: daskv1.DaskWorkerGroupSpec{Cluster: "else"}}
	as := &daskv1.DaskAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "ns"}, Spec: daskv1.DaskAutoscalerSpec{Cluster: "demo", Maximum: 3}}
	dask := daskfake.NewSimpleClientset(cl, big, other, as)
	c := &Client{Kube: kubefake.NewSimpleClientset(), Dask: dask}
	ctx := context.Background()

	assert.ErrorContains(t, c.Scale(ctx, "ns", "demo", "nope", 1), `has no worker group "nope"`)
	assert.ErrorContains(t, c.Scale(ctx, "ns", "demo", "x", 1), `belongs to cluster "else"`)
	_, err := dask.KubernetesV1().DaskAutoscalers("ns").Get(ctx, "demo", metav1.GetOptions{})
	require.NoError(t, err, "a failed scale leaves the autoscaler")

	for _, name := range []string{"highmem", "demo-highmem"} {
		require.NoError(t, c.Scale(ctx, "ns", "demo", name, 4), name)
		g, err := dask.KubernetesV1().DaskWorkerGroups("ns").Get(ctx, "demo-highmem", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, int32(4), *g.Spec.Worker.Replicas)
	}
}

// Issue 29, item 13: the ConfigMap of a submitted job's files comes before
// the job, the job then owns it; a leftover of the same name is refused, and
// a failure leaves nothing behind.
func TestSubmitJobMakesTheConfigMapFirstAndLeavesNothingOnFailure(t *testing.T) {
	ctx := context.Background()
	files := map[string]string{"main.py": "print(1)"}
	opts := JobOptions{Name: "j", Namespace: "ns", Command: []string{"python", "main.py"}}

	kube, dask := kubefake.NewSimpleClientset(), daskfake.NewSimpleClientset()
	var order []string
	record := func(a k8stesting.Action) (bool, runtime.Object, error) {
		order = append(order, a.GetVerb()+" "+a.GetResource().Resource)
		return false, nil, nil
	}
	kube.PrependReactor("*", "configmaps", record)
	dask.PrependReactor("*", "daskjobs", record)
	c := &Client{Kube: kube, Dask: dask}
	job, err := c.SubmitJob(ctx, opts, files)
	require.NoError(t, err)
	assert.Equal(t, []string{"create configmaps", "create daskjobs", "update configmaps"}, order)
	cm, err := kube.CoreV1().ConfigMaps("ns").Get(ctx, "j-files", metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, cm.OwnerReferences, 1)
	assert.Equal(t, job.Name, cm.OwnerReferences[0].Name)

	// A leftover of the same name: refused, untouched, no job.
	leftover := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "j-files", Namespace: "ns"}, Data: map[string]string{"old": "x"}}
	kube, dask = kubefake.NewSimpleClientset(leftover), daskfake.NewSimpleClientset()
	c = &Client{Kube: kube, Dask: dask}
	_, err = c.SubmitJob(ctx, opts, files)
	assert.ErrorContains(t, err, "not this job's")
	jobs, _ := dask.KubernetesV1().DaskJobs("ns").List(ctx, metav1.ListOptions{})
	assert.Empty(t, jobs.Items)
	cm, err = kube.CoreV1().ConfigMaps("ns").Get(ctx, "j-files", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, leftover.Data, cm.Data)

	// The ConfigMap is refused (too large, RBAC): no job.
	kube, dask = kubefake.NewSimpleClientset(), daskfake.NewSimpleClientset()
	kube.PrependReactor("create", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewRequestEntityTooLargeError("limit is 1048576")
	})
	c = &Client{Kube: kube, Dask: dask}
	_, err = c.SubmitJob(ctx, opts, files)
	require.Error(t, err)
	jobs, _ = dask.KubernetesV1().DaskJobs("ns").List(ctx, metav1.ListOptions{})
	assert.Empty(t, jobs.Items)

	// The job is refused: its ConfigMap goes.
	kube, dask = kubefake.NewSimpleClientset(), daskfake.NewSimpleClientset()
	dask.PrependReactor("create", "daskjobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "kubernetes.dask.org", Resource: "daskjobs"}, "j", errors.New("no"))
	})
	c = &Client{Kube: kube, Dask: dask}
	_, err = c.SubmitJob(ctx, opts, files)
	require.Error(t, err)
	cms, _ := kube.CoreV1().ConfigMaps("ns").List(ctx, metav1.ListOptions{})
	assert.Empty(t, cms.Items, "nothing left behind")
}
