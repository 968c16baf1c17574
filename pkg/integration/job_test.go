package integration

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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

func getJob(t *testing.T, ns, name string) *daskv1.DaskJob {
	t.Helper()
	j, err := dask.KubernetesV1().DaskJobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return j
}

func waitJobStatus(t *testing.T, ns, name string, want daskv1.JobStatus, timeout time.Duration) *daskv1.DaskJob {
	t.Helper()
	var j *daskv1.DaskJob
	eventually(t, timeout, func() (bool, string) {
		j = getJob(t, ns, name)
		return j.Status.JobStatus == want, fmt.Sprintf("jobStatus %q, want %q (conditions %+v)", j.Status.JobStatus, want, j.Status.Conditions)
	})
	return j
}

// finishRunner ends the runner Pod the way a kubelet reports it.
func finishRunner(t *testing.T, ns, name string, exitCode int32) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 30*time.Second, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if p.Status.Phase != corev1.PodRunning {
			return false, "runner is " + string(p.Status.Phase)
		}
		phase := corev1.PodSucceeded
		if exitCode != 0 {
			phase = corev1.PodFailed
		}
		p.Status.Phase = phase
		p.Status.Conditions = nil
		for i := range p.Status.ContainerStatuses {
			p.Status.ContainerStatuses[i].Ready = false
			p.Status.ContainerStatuses[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: exitCode, Reason: map[bool]string{true: "Completed", false: "Error"}[exitCode == 0],
				StartedAt: metav1.Now(), FinishedAt: metav1.Now(),
			}}
		}
		_, err = kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err == nil, fmt.Sprint(err)
	})
}

func waitClusterGone(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, time.Minute, func() (bool, string) {
		_, err := dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("cluster %s: %v", name, err)
	})
}

func TestJobSucceeds(t *testing.T) { simpleJobSucceeds(t, testenv.Fixture(t, "job.yaml")) }

// A job goes to Successful, its cluster is deleted, and the
// runner Pod stays with the job's annotations minus the filtered prefixes.
func simpleJobSucceeds(t *testing.T, ex testenv.Example) {
	ns := newNamespace(t)
	create(t, ns, ex, nil)
	j := waitJobStatus(t, ns, "simple-job", daskv1.JobRunning, time.Minute)
	assert.NotNil(t, j.Status.StartTime)
	assert.Equal(t, "simple-job", j.Status.ClusterName)
	assert.Equal(t, "simple-job-runner", j.Status.JobRunnerPodName)

	cluster := getCluster(t, ns, "simple-job")
	assertControlledBy(t, cluster, "DaskJob", "simple-job", j.UID)
	assert.Equal(t, "annotation-value", cluster.Annotations["test-annotation"])
	assertNoFilteredAnnotations(t, "the job's cluster", cluster.Annotations)
	waitWorkers(t, ns, "simple-job", "simple-job-default", 2, time.Minute)

	runner, err := kube.CoreV1().Pods(ns).Get(context.Background(), "simple-job-runner", metav1.GetOptions{})
	require.NoError(t, err)
	assertControlledBy(t, runner, "DaskJob", "simple-job", j.UID)
	assert.Equal(t, "annotation-value", runner.Annotations["test-annotation"])
	assertNoFilteredAnnotations(t, "runner Pod", runner.Annotations)
	assert.Equal(t, "job-runner", runner.Labels["dask.org/component"])
	assert.Equal(t, "simple-job", runner.Labels["dask.org/cluster-name"])
	addr, n := envValue(runner.Spec.Containers[0], "DASK_SCHEDULER_ADDRESS")
	assert.Equal(t, 1, n)
	assert.Equal(t, fmt.Sprintf("tcp://simple-job-scheduler.%s.svc.cluster.local:8786", ns), addr)
	assert.Equal(t, corev1.RestartPolicyOnFailure, runner.Spec.RestartPolicy)

	finishRunner(t, ns, "simple-job-runner", 0)
	j = waitJobStatus(t, ns, "simple-job", daskv1.JobSuccessful, 30*time.Second)
	require.NotNil(t, j.Status.EndTime)
	assert.False(t, j.Status.EndTime.Before(j.Status.StartTime))
	waitClusterGone(t, ns, "simple-job")
	_, err = kube.CoreV1().Pods(ns).Get(context.Background(), "simple-job-runner", metav1.GetOptions{})
	assert.NoError(t, err, "the runner Pod stays for its logs")
	out := kubectl(t, "get", "djb", "-n", ns)
	assert.Contains(t, out, "Successful")
}

func TestFailedJobFails(t *testing.T) { failedJobFails(t, testenv.Fixture(t, "failing-job.yaml")) }

// A failing job (restartPolicy Never) goes to Failed.
func failedJobFails(t *testing.T, ex testenv.Example) {
	ns := newNamespace(t)
	create(t, ns, ex, nil)
	waitJobStatus(t, ns, "failed-job", daskv1.JobRunning, time.Minute)
	finishRunner(t, ns, "failed-job-runner", 1)
	j := waitJobStatus(t, ns, "failed-job", daskv1.JobFailed, 30*time.Second)
	assert.NotNil(t, j.Status.EndTime)
	assert.Equal(t, int32(1), j.Status.Attempts, "restartPolicy Never and no backoffLimit: no retry")
	waitClusterGone(t, ns, "failed-job")
}

// With backoffLimit, a failing runner (Never) is retried, then the job fails.
func TestJobBackoffLimit(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "failing-job.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(1), "spec", "backoffLimit"))
	})
	waitJobStatus(t, ns, "failed-job", daskv1.JobRunning, time.Minute)
	finishRunner(t, ns, "failed-job-runner", 1)
	eventually(t, 30*time.Second, func() (bool, string) {
		j := getJob(t, ns, "failed-job")
		return j.Status.Attempts == 2 && j.Status.Failed == 1, fmt.Sprintf("attempts %d, failed %d", j.Status.Attempts, j.Status.Failed)
	})
	finishRunner(t, ns, "failed-job-runner", 1)
	j := waitJobStatus(t, ns, "failed-job", daskv1.JobFailed, 30*time.Second)
	assert.Equal(t, "BackoffLimitExceeded", condition(j.Status.Conditions, "Failed").Reason)
	waitClusterGone(t, ns, "failed-job")

	// With OnFailure, container restarts count.
	ns2 := newNamespace(t)
	applyFixture(t, ns2, "job.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(2), "spec", "backoffLimit"))
	})
	waitJobStatus(t, ns2, "simple-job", daskv1.JobRunning, time.Minute)
	ctx := context.Background()
	p, err := kube.CoreV1().Pods(ns2).Get(ctx, "simple-job-runner", metav1.GetOptions{})
	require.NoError(t, err)
	p.Status.ContainerStatuses[0].RestartCount = 3
	_, err = kube.CoreV1().Pods(ns2).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	j = waitJobStatus(t, ns2, "simple-job", daskv1.JobFailed, 30*time.Second)
	assert.Equal(t, "BackoffLimitExceeded", condition(j.Status.Conditions, "Failed").Reason)
	waitClusterGone(t, ns2, "simple-job")
}

func TestJobDeadline(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "job.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(3), "spec", "activeDeadlineSeconds"))
	})
	waitJobStatus(t, ns, "simple-job", daskv1.JobRunning, time.Minute)
	j := waitJobStatus(t, ns, "simple-job", daskv1.JobFailed, 30*time.Second)
	assert.Equal(t, "DeadlineExceeded", condition(j.Status.Conditions, "Failed").Reason)
	waitClusterGone(t, ns, "simple-job")
	eventually(t, 30*time.Second, func() (bool, string) {
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), "simple-job-runner", metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil), "the runner is stopped"
	})
}

// Suspend and resume, twice; with restartPolicy Never (no retry at all) a
// pause is not a failure (issue 15, item 5).
func TestJobSuspendAndResume(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "job.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, true, "spec", "suspend"))
		require.NoError(t, unstructured.SetNestedField(u.Object, "Never", "spec", "job", "spec", "restartPolicy"))
	})
	j := waitJobStatus(t, ns, "simple-job", daskv1.JobSuspended, 30*time.Second)
	assert.Equal(t, metav1.ConditionTrue, condition(j.Status.Conditions, "Suspended").Status)
	time.Sleep(time.Second)
	_, err := dask.KubernetesV1().DaskClusters(ns).Get(context.Background(), "simple-job", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "a suspended job creates nothing")

	patch := []byte(`{"spec":{"suspend":false}}`)
	_, err = dask.KubernetesV1().DaskJobs(ns).Patch(context.Background(), "simple-job", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	waitJobStatus(t, ns, "simple-job", daskv1.JobRunning, time.Minute)

	patch = []byte(`{"spec":{"suspend":true}}`)
	_, err = dask.KubernetesV1().DaskJobs(ns).Patch(context.Background(), "simple-job", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	waitJobStatus(t, ns, "simple-job", daskv1.JobSuspended, 30*time.Second)
	waitClusterGone(t, ns, "simple-job")

	patch = []byte(`{"spec":{"suspend":false}}`)
	_, err = dask.KubernetesV1().DaskJobs(ns).Patch(context.Background(), "simple-job", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	j = waitJobStatus(t, ns, "simple-job", daskv1.JobRunning, time.Minute)
	assert.Zero(t, j.Status.Failed, "a pause is not a failure")
	finishRunner(t, ns, "simple-job-runner", 0)
	waitJobStatus(t, ns, "simple-job", daskv1.JobSuccessful, 30*time.Second)
}

// A runner that is never scheduled does not keep the job and its cluster
// forever: the deadline counts from the job's start (issue 15, item 6).
func TestJobDeadlineCountsWithoutARunningRunner(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "job.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(5), "spec", "activeDeadlineSeconds"))
		require.NoError(t, unstructured.SetNestedStringMap(u.Object, map[string]string{"no-such-label": "anywhere"},
			"spec", "job", "spec", "nodeSelector"))
	})
	j := waitJobStatus(t, ns, "simple-job", daskv1.JobFailed, time.Minute)
	assert.Equal(t, "DeadlineExceeded", condition(j.Status.Conditions, "Failed").Reason)
	assert.Nil(t, j.Status.StartTime, "the runner never ran")
	waitClusterGone(t, ns, "simple-job")
}

func TestJobTTLAfterFinished(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "job.yaml", func(u *unstructured.Unstructured) {
		require.NoError(t, unstructured.SetNestedField(u.Object, int64(2), "spec", "ttlSecondsAfterFinished"))
	})
	waitJobStatus(t, ns, "simple-job", daskv1.JobRunning, time.Minute)
	finishRunner(t, ns, "simple-job-runner", 0)
	waitJobStatus(t, ns, "simple-job", daskv1.JobSuccessful, 30*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) {
		_, err := dask.KubernetesV1().DaskJobs(ns).Get(context.Background(), "simple-job", metav1.GetOptions{})
		return apierrors.IsNotFound(err), "the job is deleted after its TTL"
	})
	eventually(t, time.Minute, func() (bool, string) {
		_, err := kube.CoreV1().Pods(ns).Get(context.Background(), "simple-job-runner", metav1.GetOptions{})
		return apierrors.IsNotFound(err), "the runner goes with the job"
	})
}

// A runner Pod deleted from under a running job is retried within backoffLimit.
func TestJobRunnerDeletedIsRetried(t *testing.T) {
	ns := newNamespace(t)
	applyFixture(t, ns, "job.yaml", nil)
	waitJobStatus(t, ns, "simple-job", daskv1.JobRunning, time.Minute)
	old, err := kube.CoreV1().Pods(ns).Get(context.Background(), "simple-job-runner", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, kube.CoreV1().Pods(ns).Delete(context.Background(), "simple-job-runner", metav1.DeleteOptions{}))
	eventually(t, time.Minute, func() (bool, string) {
		j := getJob(t, ns, "simple-job")
		p, err := kube.CoreV1().Pods(ns).Get(context.Background(), "simple-job-runner", metav1.GetOptions{})
		// kwok deletes Pods by name: its deletion of the old runner may
		// also hit the first replacement, which then counts as lost too.
		return err == nil && p.UID != old.UID && j.Status.Failed >= 1 && j.Status.Attempts == j.Status.Failed+1 &&
				j.Status.JobStatus == daskv1.JobRunning,
			fmt.Sprintf("attempts %d, failed %d, err %v", j.Status.Attempts, j.Status.Failed, err)
	})
	waitEvent(t, ns, "simple-job", corev1.EventTypeWarning, "RunnerPodLost")
}

// Labels and annotations added to a running job reach its runner Pod and its
// cluster (and from there the scheduler); removed, they leave them.
func TestJobMetadataReachesItsRunnerAndCluster(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	applyFixture(t, ns, "job.yaml", nil)
	waitJobStatus(t, ns, "simple-job", daskv1.JobRunning, time.Minute)

	metas := func() map[string]metav1.ObjectMeta {
		out := map[string]metav1.ObjectMeta{}
		if p, err := kube.CoreV1().Pods(ns).Get(ctx, "simple-job-runner", metav1.GetOptions{}); err == nil {
			out["runner Pod"] = p.ObjectMeta
		}
		if c, err := dask.KubernetesV1().DaskClusters(ns).Get(ctx, "simple-job", metav1.GetOptions{}); err == nil {
			out["cluster"] = c.ObjectMeta
		}
		if p, err := kube.CoreV1().Pods(ns).Get(ctx, "simple-job-scheduler", metav1.GetOptions{}); err == nil {
			out["scheduler Pod"] = p.ObjectMeta
		}
		return out
	}
	patch := func(body string) {
		_, err := dask.KubernetesV1().DaskJobs(ns).Patch(ctx, "simple-job", types.MergePatchType, []byte(body), metav1.PatchOptions{})
		require.NoError(t, err)
	}
	patch(`{"metadata":{"labels":{"team":"ml"},"annotations":{"cost-center":"42"}}}`)
	eventually(t, 30*time.Second, func() (bool, string) {
		m := metas()
		for what, meta := range m {
			if meta.Labels["team"] != "ml" || meta.Annotations["cost-center"] != "42" {
				return false, what + " lacks the new metadata"
			}
		}
		return len(m) == 3, fmt.Sprintf("%d objects", len(m))
	})
	patch(`{"metadata":{"labels":{"team":null},"annotations":{"cost-center":null}}}`)
	eventually(t, 30*time.Second, func() (bool, string) {
		m := metas()
		for what, meta := range m {
			if _, ok := meta.Labels["team"]; ok {
				return false, what + " still has the label"
			}
			if _, ok := meta.Annotations["cost-center"]; ok {
				return false, what + " still has the annotation"
			}
		}
		return len(m) == 3, fmt.Sprintf("%d objects", len(m))
	})
}
