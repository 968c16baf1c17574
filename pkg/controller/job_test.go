package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/expectations"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

func daskJob(name string, policy corev1.RestartPolicy) *daskv1.DaskJob {
	return &daskv1.DaskJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Generation: 1},
		Spec: daskv1.DaskJobSpec{
			Job:     daskv1.JobRunnerSpec{Spec: corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{{Name: "job"}}}},
			Cluster: daskv1.JobClusterSpec{Spec: cluster("x").Spec},
		},
	}
}

// runnerIn returns the job's runner Pod in a phase, with restarts.
func runnerIn(j *daskv1.DaskJob, phase corev1.PodPhase, restarts int32) *corev1.Pod {
	p := resources.RunnerPod(j, resources.JobCluster(j), "cluster.local")
	p.UID = "runner-uid"
	p.Status.Phase = phase
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "job", RestartCount: restarts}}
	if phase == corev1.PodFailed {
		p.Status.ContainerStatuses[0].State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}
	}
	return p
}

// jobCluster is the job's DaskCluster as the job controller created it.
func jobCluster(j *daskv1.DaskJob) *daskv1.DaskCluster {
	c := resources.JobCluster(j)
	c.UID = "cluster-uid"
	return c
}

// lastStatusWrite returns the object of the last status update of a
// resource (daskjobs, daskclusters, ...) the controller sent.
func lastStatusWrite[T runtime.Object](t *testing.T, f *fixture, resource string) T {
	t.Helper()
	var out T
	found := false
	for _, a := range f.dask.Actions() {
		if a.GetSubresource() == "status" && a.GetResource().Resource == resource {
			out, found = a.(k8stesting.UpdateAction).GetObject().(T), true
		}
	}
	require.True(t, found, "no %s status written", resource)
	return out
}

func lastJobStatus(t *testing.T, f *fixture) daskv1.DaskJobStatus {
	t.Helper()
	return lastStatusWrite[*daskv1.DaskJob](t, f, "daskjobs").Status
}

func deletedNames(f *fixture, resource string) []string {
	var out []string
	for _, a := range f.actions("delete", resource) {
		out = append(out, a.(k8stesting.DeleteAction).GetName())
	}
	return out
}

func TestJobStatusMachine(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	started := metav1.NewTime(now.Add(-time.Minute))
	cases := []struct {
		name  string
		job   func() *daskv1.DaskJob
		state func(j *daskv1.DaskJob) []runtime.Object
		check func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, requeue time.Duration)
	}{
		{"a new job creates its cluster and runner",
			func() *daskv1.DaskJob { return daskJob("j", "") },
			func(j *daskv1.DaskJob) []runtime.Object { return nil },
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Len(t, f.actions("create", "daskclusters"), 1)
				creates := f.actions("create", "pods")
				require.Len(t, creates, 1)
				runner := creates[0].(k8stesting.CreateAction).GetObject().(*corev1.Pod)
				assert.Equal(t, "j-runner", runner.Name)
				assert.Equal(t, corev1.RestartPolicyOnFailure, runner.Spec.RestartPolicy)
				assert.Equal(t, daskv1.JobClusterCreated, s.JobStatus)
				assert.Equal(t, "j", s.ClusterName)
				assert.Equal(t, "j-runner", s.JobRunnerPodName)
				assert.Equal(t, int32(1), s.Attempts)
			}},
		{"a running runner makes the job Running with a start time",
			func() *daskv1.DaskJob { j := daskJob("j", ""); j.Status.Attempts = 1; return j },
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodRunning, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobRunning, s.JobStatus)
				require.NotNil(t, s.StartTime)
				assert.Equal(t, now, s.StartTime.Time)
				assert.Empty(t, f.actions("create", "pods"))
			}},
		{"a runner that succeeded ends the job and deletes the cluster",
			func() *daskv1.DaskJob {
				j := daskJob("j", "")
				j.Status.Attempts = 1
				j.Status.StartTime = &started
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodSucceeded, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobSuccessful, s.JobStatus)
				require.NotNil(t, s.EndTime)
				assert.Equal(t, []string{"j"}, deletedNames(f, "daskclusters"))
				assert.Empty(t, deletedNames(f, "pods"), "the runner stays for its logs")
				assert.Equal(t, metav1.ConditionTrue, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionComplete).Status)
			}},
		{"a failed runner with restartPolicy Never fails the job at once",
			func() *daskv1.DaskJob { j := daskJob("j", corev1.RestartPolicyNever); j.Status.Attempts = 1; return j },
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodFailed, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.NotNil(t, s.EndTime)
				assert.Equal(t, []string{"j"}, deletedNames(f, "daskclusters"))
				cond := apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed)
				assert.Equal(t, daskv1.ReasonJobFailed, cond.Reason)
				assert.Contains(t, cond.Message, "exited with code 3")
			}},
		{"a failed runner within backoffLimit is replaced",
			func() *daskv1.DaskJob {
				j := daskJob("j", corev1.RestartPolicyNever)
				j.Spec.BackoffLimit = int32p(2)
				j.Status.Attempts = 1
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodFailed, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobClusterCreated, s.JobStatus)
				assert.Equal(t, int32(1), s.Failed)
				assert.Equal(t, []string{"j-runner"}, deletedNames(f, "pods"))
				assert.Empty(t, deletedNames(f, "daskclusters"))
			}},
		{"a failed runner past backoffLimit fails the job",
			func() *daskv1.DaskJob {
				j := daskJob("j", corev1.RestartPolicyNever)
				j.Spec.BackoffLimit = int32p(2)
				j.Status.Attempts, j.Status.Failed = 3, 2
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodFailed, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.Equal(t, daskv1.ReasonBackoffLimitExceeded, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed).Reason)
			}},
		{"a crash-looping runner with OnFailure fails the job past backoffLimit",
			func() *daskv1.DaskJob {
				j := daskJob("j", "")
				j.Spec.BackoffLimit = int32p(3)
				j.Status.Attempts, j.Status.StartTime = 1, &started
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodRunning, 4)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.Equal(t, int32(4), s.Failed)
				assert.Equal(t, daskv1.ReasonBackoffLimitExceeded, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed).Reason)
				assert.ElementsMatch(t, []string{"j-runner"}, deletedNames(f, "pods"), "the crash-looping runner is stopped")
				assert.Equal(t, []string{"j"}, deletedNames(f, "daskclusters"))
			}},
		{"restarts within backoffLimit keep the job running",
			func() *daskv1.DaskJob {
				j := daskJob("j", "")
				j.Spec.BackoffLimit = int32p(3)
				j.Status.Attempts, j.Status.StartTime = 1, &started
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodRunning, 3)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobRunning, s.JobStatus)
			}},
		{"a job past its deadline fails and stops",
			func() *daskv1.DaskJob {
				j := daskJob("j", "")
				j.Spec.ActiveDeadlineSeconds = ptr(int64(30))
				j.CreationTimestamp = started
				j.Status.Attempts, j.Status.StartTime, j.Status.JobStatus = 1, &started, daskv1.JobRunning
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodRunning, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.Equal(t, daskv1.ReasonDeadlineExceeded, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed).Reason)
				assert.Equal(t, []string{"j-runner"}, deletedNames(f, "pods"))
				assert.Equal(t, []string{"j"}, deletedNames(f, "daskclusters"))
			}},
		{"a job within its deadline syncs again when it passes",
			func() *daskv1.DaskJob {
				j := daskJob("j", "")
				j.Spec.ActiveDeadlineSeconds = ptr(int64(90))
				j.CreationTimestamp = started
				j.Status.Attempts, j.Status.StartTime, j.Status.JobStatus = 1, &started, daskv1.JobRunning
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodRunning, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, requeue time.Duration) {
				assert.InDelta(t, 30*time.Second, requeue, float64(time.Second))
			}},
		{"issue 15 item 6: the deadline counts from the job's creation, even when the runner never starts",
			func() *daskv1.DaskJob {
				j := daskJob("j", "")
				j.Spec.ActiveDeadlineSeconds = ptr(int64(30))
				j.CreationTimestamp = started
				j.Status.Attempts, j.Status.JobStatus = 1, daskv1.JobClusterCreated
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodPending, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.Equal(t, daskv1.ReasonDeadlineExceeded, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed).Reason)
				assert.Equal(t, []string{"j"}, deletedNames(f, "daskclusters"), "the cluster of a stuck job goes")
			}},
		{"issue 15 item 6: a pending runner within the deadline syncs again when it passes",
			func() *daskv1.DaskJob {
				j := daskJob("j", "")
				j.Spec.ActiveDeadlineSeconds = ptr(int64(90))
				j.CreationTimestamp = started
				j.Status.Attempts, j.Status.JobStatus = 1, daskv1.JobClusterCreated
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodPending, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, requeue time.Duration) {
				assert.InDelta(t, 30*time.Second, requeue, float64(time.Second))
			}},
		{"issue 15 item 6: after a resume the deadline counts from the resume",
			func() *daskv1.DaskJob {
				j := daskJob("j", "")
				j.Spec.ActiveDeadlineSeconds = ptr(int64(90))
				j.CreationTimestamp = metav1.NewTime(now.Add(-time.Hour))
				j.Status.Conditions = []metav1.Condition{{Type: daskv1.ConditionSuspended, Status: metav1.ConditionFalse, Reason: daskv1.ReasonResumed,
					LastTransitionTime: started}}
				j.Status.Attempts, j.Status.JobStatus = 1, daskv1.JobClusterCreated
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodPending, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, requeue time.Duration) {
				assert.NotEqual(t, daskv1.JobFailed, s.JobStatus)
				assert.InDelta(t, 30*time.Second, requeue, float64(time.Second))
			}},
		{"a suspended job deletes its runner and cluster",
			func() *daskv1.DaskJob {
				j := daskJob("j", "")
				j.Spec.Suspend = ptr(true)
				j.Status.Attempts, j.Status.StartTime, j.Status.JobStatus = 1, &started, daskv1.JobRunning
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{jobCluster(j), runnerIn(j, corev1.PodRunning, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobSuspended, s.JobStatus)
				assert.Nil(t, s.StartTime, "the deadline counts again from the resume")
				assert.Equal(t, []string{"j-runner"}, deletedNames(f, "pods"))
				assert.Equal(t, []string{"j"}, deletedNames(f, "daskclusters"))
				assert.Empty(t, f.actions("create", "pods"))
			}},
		{"a runner deleted from under a running job is a failure",
			func() *daskv1.DaskJob {
				j := daskJob("j", corev1.RestartPolicyNever)
				j.Status.Attempts, j.Status.StartTime, j.Status.JobStatus = 1, &started, daskv1.JobRunning
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object { return []runtime.Object{jobCluster(j)} },
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.Equal(t, daskv1.ReasonBackoffLimitExceeded, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed).Reason)
				assert.Empty(t, f.actions("create", "pods"))
			}},
		{"a lost runner within backoffLimit is recreated",
			func() *daskv1.DaskJob {
				j := daskJob("j", "")
				j.Status.Attempts, j.Status.StartTime, j.Status.JobStatus = 1, &started, daskv1.JobRunning
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object { return []runtime.Object{jobCluster(j)} },
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, int32(1), s.Failed)
				assert.Equal(t, int32(2), s.Attempts)
				assert.Len(t, f.actions("create", "pods"), 1)
			}},
		{"a leftover runner of another job is not adopted",
			func() *daskv1.DaskJob { return daskJob("j", "") },
			func(j *daskv1.DaskJob) []runtime.Object {
				other := daskJob("j", "")
				other.UID = "a-deleted-job"
				return []runtime.Object{jobCluster(j), runnerIn(other, corev1.PodRunning, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.NotEqual(t, daskv1.JobRunning, s.JobStatus)
				assert.Empty(t, f.actions("create", "pods"))
				assert.Empty(t, deletedNames(f, "pods"))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := tc.job()
			objs := append([]runtime.Object{j}, tc.state(j)...)
			f := newFixture(t, objs...)
			f.ctrl.now = func() time.Time { return now }
			requeue, _ := f.ctrl.syncJob(context.Background(), "ns/j")
			tc.check(t, f, lastJobStatus(t, f), requeue)
		})
	}
}

func TestFinishedJobTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	j := daskJob("j", "")
	j.Spec.TTLSecondsAfterFinished = ptr(int32(60))
	j.Status.JobStatus = daskv1.JobSuccessful
	j.Status.EndTime = &metav1.Time{Time: now.Add(-30 * time.Second)}

	f := newFixture(t, j)
	f.ctrl.now = func() time.Time { return now }
	requeue, err := f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	assert.InDelta(t, 30*time.Second, requeue, float64(time.Second))
	assert.Empty(t, deletedNames(f, "daskjobs"))

	f.ctrl.now = func() time.Time { return now.Add(31 * time.Second) }
	_, err = f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	assert.Equal(t, []string{"j"}, deletedNames(f, "daskjobs"))
}

func ptr[T any](v T) *T { return &v }

func TestLatestWritesWinOverAStaleCache(t *testing.T) {
	l := newLatestWrites[*daskv1.DaskJob]()
	cached := daskJob("j", "")
	cached.ResourceVersion = "10"
	written := cached.DeepCopy()
	written.ResourceVersion = "11"
	written.Status.JobStatus = daskv1.JobFailed
	l.remember("ns/j", written)

	assert.Equal(t, daskv1.JobFailed, l.newest("ns/j", cached).Status.JobStatus, "the cache has not seen the write yet")
	caughtUp := written.DeepCopy()
	caughtUp.ResourceVersion = "12"
	assert.Same(t, caughtUp, l.newest("ns/j", caughtUp), "once the cache is newer it wins")
	assert.Same(t, cached, l.newest("ns/j", cached), "and the remembered write is forgotten")

	l.remember("ns/j", written)
	recreated := daskJob("j", "")
	recreated.UID, recreated.ResourceVersion = "another", "5"
	assert.Same(t, recreated, l.newest("ns/j", recreated), "a new object of the same name is not confused with the old")
}

// Issue 15, item 5: suspending and resuming a job is not a failure: with
// restartPolicy Never the resumed job starts a new runner instead of
// failing, and no retry is used up.
func TestSuspendAndResumeIsNotAFailure(t *testing.T) {
	for _, policy := range []corev1.RestartPolicy{corev1.RestartPolicyNever, corev1.RestartPolicyOnFailure} {
		t.Run(string(policy), func(t *testing.T) {
			j := daskJob("j", policy)
			j.Spec.Suspend = ptr(true)
			j.Status.Attempts, j.Status.JobStatus = 1, daskv1.JobRunning
			f := newFixture(t, j, jobCluster(j), runnerIn(j, corev1.PodRunning, 0))
			_, err := f.ctrl.syncJob(context.Background(), "ns/j")
			require.NoError(t, err)
			suspended := lastJobStatus(t, f)
			require.Equal(t, daskv1.JobSuspended, suspended.JobStatus)

			// Resumed: the runner and cluster are gone.
			resumed := daskJob("j", policy)
			resumed.Status = suspended
			f = newFixture(t, resumed)
			_, err = f.ctrl.syncJob(context.Background(), "ns/j")
			require.NoError(t, err)
			s := lastJobStatus(t, f)
			assert.NotEqual(t, daskv1.JobFailed, s.JobStatus)
			assert.Zero(t, s.Failed, "the pause used no retry")
			assert.Len(t, f.actions("create", "pods"), 1, "a new runner starts")
		})
	}
}

// Issue 15, item 7: while the runner Pod the job created is not in the
// cache, the job is looked at again when the expectation expires, not only
// at the next resync.
func TestJobWithUnmetExpectationsRequeues(t *testing.T) {
	j := daskJob("j", "")
	f := newFixture(t, j, jobCluster(j))
	_, err := f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	require.Len(t, f.actions("create", "pods"), 1)
	requeue, err := f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	assert.Greater(t, requeue, time.Duration(0))
	assert.LessOrEqual(t, requeue, expectations.DefaultTTL+time.Second)
}

// The pattern of issue 15, item 4, in jobs: a refused patch of the runner's
// or the cluster's metadata does not stop the job from seeing its runner
// succeed.
func TestJobProgressesWhenMetadataPatchesFail(t *testing.T) {
	j := daskJob("j", "")
	j.Status.Attempts, j.Status.JobStatus = 1, daskv1.JobRunning
	cluster, runner := jobCluster(j), runnerIn(j, corev1.PodSucceeded, 0)
	j.Labels = map[string]string{"team": "new"} // added since: to be passed on
	f := newFixture(t, j, cluster, runner)
	for _, res := range []string{"pods", "daskclusters"} {
		f.kube.PrependReactor("patch", res, func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("forbidden")
		})
		f.dask.PrependReactor("patch", res, func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("forbidden")
		})
	}
	_, err := f.ctrl.syncJob(context.Background(), "ns/j")
	assert.Error(t, err, "the failed patch is reported and retried")
	assert.Equal(t, daskv1.JobSuccessful, lastJobStatus(t, f).JobStatus)
}

// Issue 30: the job's creates behave as the others do. A runner the API
// server refuses as invalid fails the job with one Warning, not two; in a
// namespace being deleted, neither the cluster's nor the runner's refused
// create is reported or retried.
func TestJobCreatesAreReportedOnce(t *testing.T) {
	j := daskJob("j", corev1.RestartPolicyNever)
	f := newFixture(t, j, jobCluster(j))
	f.kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "j-runner", nil)
	})
	_, _ = f.ctrl.syncJob(context.Background(), "ns/j")
	assert.Equal(t, 1, countEvents(f, daskv1.ReasonFailedCreate), "one Warning for a refused runner")

	terminating := &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}}, Message: "namespace ns is being terminated"}}
	for _, res := range []string{"daskclusters", "pods"} {
		j := daskJob("j", corev1.RestartPolicyNever)
		objs := []runtime.Object{j}
		if res == "pods" {
			objs = append(objs, jobCluster(j))
		}
		f := newFixture(t, objs...)
		refuse := func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, terminating }
		f.kube.PrependReactor("create", res, refuse)
		f.dask.PrependReactor("create", res, refuse)
		_, err := f.ctrl.syncJob(context.Background(), "ns/j")
		assert.NoError(t, err, "%s: nothing to retry", res)
		assert.Zero(t, countEvents(f, daskv1.ReasonFailedCreate), "%s: nothing to report", res)
	}
}

// Issue 30: a job's children are created the one way every kind does
// (createChild): a create refused again and again is told once, by one
// Warning and the job's ResourcesCreated condition.
func TestJobCreateFailureIsReportedOnce(t *testing.T) {
	j := daskJob("j", corev1.RestartPolicyNever)
	f := newFixture(t, j)
	f.dask.PrependReactor("create", "daskclusters", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "kubernetes.dask.org", Resource: "daskclusters"}, "j", errors.New("exceeded quota"))
	})
	for range 3 {
		_, err := f.ctrl.syncJob(context.Background(), "ns/j")
		require.Error(t, err, "retried")
		written := lastStatusWrite[*daskv1.DaskJob](t, f, "daskjobs")
		require.NoError(t, f.ctrl.caches.in("").jobs.GetIndexer().Update(written))
	}
	assert.Equal(t, 1, countEvents(f, daskv1.ReasonFailedCreate))
	cond := apimeta.FindStatusCondition(lastStatusWrite[*daskv1.DaskJob](t, f, "daskjobs").Status.Conditions, daskv1.ConditionResourcesCreated)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Contains(t, cond.Message, "exceeded quota")
}
