// Package multikueue tests MultiKueue dispatching a DaskJob from a manager
// cluster to a worker cluster: two local control planes, each with the real
// Kueue and the operator.
package multikueue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/daskapi"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
	"github.com/dask-operator/dask-operator/pkg/kueue"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

func apply(t *testing.T, cfg dynamic.Interface, resource, ns, doc string) {
	t.Helper()
	obj := &unstructured.Unstructured{}
	require.NoError(t, yaml.Unmarshal([]byte(doc), &obj.Object))
	_, err := cfg.Resource(kueue.GroupVersion.WithResource(resource)).Namespace(ns).Create(context.Background(), obj, metav1.CreateOptions{})
	require.NoError(t, err, doc)
}

func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var msg string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, msg = cond(); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("not within %s: %s", timeout, msg)
}

// startSide runs a control plane with Kueue and the operator.
func startSide(t *testing.T, name string, opts testenv.Options, kopts testenv.KueueOptions) *testenv.Env {
	t.Helper()
	env, err := testenv.Start(opts)
	require.NoError(t, err, name)
	t.Cleanup(env.Stop)
	k, err := env.StartKueue(kopts)
	require.NoError(t, err, name)
	resolver, err := daskapi.NewTemplateResolver("http://127.0.0.1:1")
	require.NoError(t, err)
	op, err := env.RunOperator(controller.Options{Resolver: resolver}, filepath.Join(os.TempDir(), "dask-operator-multikueue-"+name+".log"))
	require.NoError(t, err, name)
	t.Cleanup(func() { op.Stop(t.Failed(), k.Log) })
	return env
}

// Issue 31: a DaskJob submitted to the manager cluster, managed by
// MultiKueue, runs on the worker cluster, and its status comes back.
func TestMultiKueueDispatchesADaskJobToAWorkerCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("needs two control planes: not run with -short")
	}
	worker := startSide(t, "worker", testenv.Options{Nodes: true}, testenv.KueueOptions{})
	// The manager runs no Pods: it has no node.
	manager := startSide(t, "manager", testenv.Options{}, testenv.KueueOptions{
		ExternalFrameworks: []string{"DaskJob.v1.kubernetes.dask.org"},
		// The worker's kubeconfig reaches it on loopback without a CA.
		FeatureGates: "MultiKueueAllowInsecureKubeconfigs=true",
	})
	ctx := context.Background()
	wKube, mKube := kubernetes.NewForConfigOrDie(worker.Config), kubernetes.NewForConfigOrDie(manager.Config)
	wDyn, mDyn := dynamic.NewForConfigOrDie(worker.Config), dynamic.NewForConfigOrDie(manager.Config)
	wDask, mDask := versioned.NewForConfigOrDie(worker.Config), versioned.NewForConfigOrDie(manager.Config)

	const ns = "team-a"
	for _, k := range []kubernetes.Interface{wKube, mKube} {
		_, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	queue := func(d dynamic.Interface, checks string) {
		apply(t, d, "resourceflavors", "", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: default}}`)
		apply(t, d, "clusterqueues", "", fmt.Sprintf(`{apiVersion: kueue.x-k8s.io/v1beta2, kind: ClusterQueue, metadata: {name: cq},
  spec: {namespaceSelector: {}, %s resourceGroups: [{coveredResources: [cpu], flavors: [{name: default, resources: [{name: cpu, nominalQuota: 10}]}]}]}}`, checks))
		apply(t, d, "localqueues", ns, `{apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: q, namespace: team-a}, spec: {clusterQueue: cq}}`)
	}
	queue(wDyn, "")

	kubeconfig, err := os.ReadFile(worker.Kubeconfig)
	require.NoError(t, err)
	_, err = mKube.CoreV1().Secrets("kueue-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "worker1", Namespace: "kueue-system"},
		Data:       map[string][]byte{"kubeconfig": kubeconfig},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	apply(t, mDyn, "multikueueclusters", "", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: MultiKueueCluster, metadata: {name: worker1},
  spec: {clusterSource: {kubeConfig: {locationType: Secret, location: worker1}}}}`)
	apply(t, mDyn, "multikueueconfigs", "", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: MultiKueueConfig, metadata: {name: mk}, spec: {clusters: [worker1]}}`)
	apply(t, mDyn, "admissionchecks", "", `{apiVersion: kueue.x-k8s.io/v1beta2, kind: AdmissionCheck, metadata: {name: mk},
  spec: {controllerName: kueue.x-k8s.io/multikueue, parameters: {apiGroup: kueue.x-k8s.io, kind: MultiKueueConfig, name: mk}}}`)
	queue(mDyn, "admissionChecksStrategy: {admissionChecks: [{name: mk}]},")

	req := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}
	c := func(name string, args ...string) corev1.Container {
		return corev1.Container{Name: name, Image: "ghcr.io/dask/dask:latest", Args: args, Resources: req}
	}
	one := int32(1)
	managedBy := "kueue.x-k8s.io/multikueue"
	job := &daskv1.DaskJob{
		ObjectMeta: metav1.ObjectMeta{Name: "dispatched", Namespace: ns, Labels: map[string]string{kueue.LabelQueueName: "q"}},
		Spec: daskv1.DaskJobSpec{
			ManagedBy: &managedBy,
			Job:       daskv1.JobRunnerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c("job", "python", "-c", "print(1)")}}},
			Cluster: daskv1.JobClusterSpec{Spec: daskv1.DaskClusterSpec{
				Scheduler: daskv1.SchedulerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c("scheduler", "dask", "scheduler")}}},
				Worker:    daskv1.WorkerSpec{Replicas: &one, Spec: corev1.PodSpec{Containers: []corev1.Container{c("worker", "dask", "worker")}}},
			}},
		},
	}
	_, err = mDask.KubernetesV1().DaskJobs(ns).Create(ctx, job, metav1.CreateOptions{})
	require.NoError(t, err)

	// It runs on the worker cluster, and its status comes back.
	eventually(t, 2*time.Minute, func() (bool, string) {
		j, err := wDask.KubernetesV1().DaskJobs(ns).Get(ctx, "dispatched", metav1.GetOptions{})
		if err != nil {
			return false, "on the worker: " + err.Error()
		}
		return j.Status.JobStatus == daskv1.JobRunning, fmt.Sprintf("on the worker: %s %+v", j.Status.JobStatus, j.Status.Conditions)
	})
	_, err = mDask.KubernetesV1().DaskClusters(ns).Get(ctx, "dispatched", metav1.GetOptions{})
	require.Error(t, err, "nothing runs on the manager")
	eventually(t, time.Minute, func() (bool, string) {
		j, err := mDask.KubernetesV1().DaskJobs(ns).Get(ctx, "dispatched", metav1.GetOptions{})
		require.NoError(t, err)
		return j.Status.JobStatus == daskv1.JobRunning, fmt.Sprintf("on the manager: %q", j.Status.JobStatus)
	})

	// The runner ends on the worker: Successful there and on the manager.
	p, err := wKube.CoreV1().Pods(ns).Get(ctx, "dispatched-runner", metav1.GetOptions{})
	require.NoError(t, err)
	p.Status.Phase = corev1.PodSucceeded
	p.Status.Conditions = nil
	for i := range p.Status.ContainerStatuses {
		p.Status.ContainerStatuses[i].Ready = false
		p.Status.ContainerStatuses[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}
	}
	_, err = wKube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, time.Minute, func() (bool, string) {
		j, err := mDask.KubernetesV1().DaskJobs(ns).Get(ctx, "dispatched", metav1.GetOptions{})
		require.NoError(t, err)
		return j.Status.JobStatus == daskv1.JobSuccessful, fmt.Sprintf("on the manager: %q", j.Status.JobStatus)
	})
}
