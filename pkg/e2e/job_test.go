package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// createJob runs script with `python -c` in the runner, as Dask's examples
// do; Client() finds the job's scheduler in DASK_SCHEDULER_ADDRESS.
func createJob(t *testing.T, ns, name, script string, backoffLimit int32, policy corev1.RestartPolicy) {
	t.Helper()
	createJobOn(t, env.Latest(), ns, name, script, backoffLimit, policy)
}

func createJobOn(t *testing.T, d testenv.DaskImage, ns, name, script string, backoffLimit int32, policy corev1.RestartPolicy) {
	t.Helper()
	_, err := dask.KubernetesV1().DaskJobs(ns).Create(context.Background(), &daskv1.DaskJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: daskv1.DaskJobSpec{
			BackoffLimit: &backoffLimit,
			Job: daskv1.JobRunnerSpec{Spec: corev1.PodSpec{
				RestartPolicy: policy,
				Containers: []corev1.Container{{
					Name: "job", Image: d.Image(),
					Args: []string{"python", "-c", script},
				}},
			}},
			Cluster: daskv1.JobClusterSpec{Spec: clusterSpecOn(d.Image(), 2)},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func waitJob(t *testing.T, ns, name string, want daskv1.JobStatus) *daskv1.DaskJob {
	t.Helper()
	var job *daskv1.DaskJob
	eventually(t, 3*time.Minute, func() (bool, string) {
		var err error
		job, err = dask.KubernetesV1().DaskJobs(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return job.Status.JobStatus == want, fmt.Sprintf("job status %q, want %q", job.Status.JobStatus, want)
	})
	return job
}

// The runner computes through its own cluster's scheduler, found by its
// Service name, and the job ends Successful; its cluster goes. On each Dask
// release the node has (issue 28); the runner checks that it runs that one.
func TestDaskJobComputesOnItsCluster(t *testing.T) {
	eachDask(t, testDaskJobComputes)
}

func testDaskJobComputes(t *testing.T, d testenv.DaskImage) {
	ns := newNamespace(t)
	createJobOn(t, d, ns, "sum", `
import distributed
from dask.distributed import Client
assert distributed.__version__.startswith("`+d.Version+`"), distributed.__version__
client = Client()
result = client.submit(sum, range(1000)).result()
assert result == 499500, result
versions = client.get_versions(check=True)
assert versions["scheduler"]["packages"]["distributed"].startswith("`+d.Version+`"), versions["scheduler"]
print("computed", result, "on", len(client.scheduler_info()["workers"]), "workers")
`, 6, corev1.RestartPolicyOnFailure)

	job := waitJob(t, ns, "sum", daskv1.JobSuccessful)
	assert.NotNil(t, job.Status.EndTime)
	runner, err := kube.CoreV1().Pods(ns).Get(context.Background(), resources.RunnerPodName("sum"), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.PodSucceeded, runner.Status.Phase)
	require.Len(t, runner.Status.ContainerStatuses, 1)
	require.NotNil(t, runner.Status.ContainerStatuses[0].State.Terminated)
	assert.Equal(t, int32(0), runner.Status.ContainerStatuses[0].State.Terminated.ExitCode)

	eventually(t, time.Minute, func() (bool, string) {
		_, err := dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), resources.JobClusterName("sum"), metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("the job's cluster is still there: %v", err)
	})
}

// A runner whose computation raises ends the job Failed, with its exit code
// on the runner Pod.
func TestFailingDaskJobFails(t *testing.T) {
	ns := newNamespace(t)
	createJob(t, ns, "divide", `
from dask.distributed import Client
client = Client()
client.submit(lambda: 1 / 0).result()
`, 0, corev1.RestartPolicyNever)

	waitJob(t, ns, "divide", daskv1.JobFailed)
	runner, err := kube.CoreV1().Pods(ns).Get(context.Background(), resources.RunnerPodName("divide"), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.PodFailed, runner.Status.Phase)
	require.Len(t, runner.Status.ContainerStatuses, 1)
	term := runner.Status.ContainerStatuses[0].State.Terminated
	require.NotNil(t, term)
	assert.Equal(t, int32(1), term.ExitCode, "python exits 1 on the ZeroDivisionError raised on a worker")
}
