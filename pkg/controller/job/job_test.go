package job

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/expectations"
)

func lastJobStatus(t *testing.T, f *fixture) daskv1.DaskJobStatus {
	t.Helper()
	return controllertest.LastStatusWrite[*daskv1.DaskJob](t, f.Fixture, "daskjobs").Status
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
			func() *daskv1.DaskJob { return testobjects.DaskJob("j", "") },
			func(j *daskv1.DaskJob) []runtime.Object { return nil },
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Len(t, f.Actions("create", "daskclusters"), 1)
				creates := f.Actions("create", "pods")
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
			func() *daskv1.DaskJob { j := testobjects.DaskJob("j", ""); j.Status.Attempts = 1; return j },
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodRunning, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobRunning, s.JobStatus)
				require.NotNil(t, s.StartTime)
				assert.Equal(t, now, s.StartTime.Time)
				assert.Empty(t, f.Actions("create", "pods"))
			}},
		{"a runner that succeeded ends the job and deletes the cluster",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", "")
				j.Status.Attempts = 1
				j.Status.StartTime = &started
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodSucceeded, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobSuccessful, s.JobStatus)
				require.NotNil(t, s.EndTime)
				assert.Equal(t, []string{"j"}, controllertest.DeletedNames(f.Fixture, "daskclusters"))
				assert.Empty(t, controllertest.DeletedNames(f.Fixture, "pods"), "the runner stays for its logs")
				assert.Equal(t, metav1.ConditionTrue, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionComplete).Status)
			}},
		{"a failed runner with restartPolicy Never fails the job at once",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", corev1.RestartPolicyNever)
				j.Status.Attempts = 1
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodFailed, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.NotNil(t, s.EndTime)
				assert.Equal(t, []string{"j"}, controllertest.DeletedNames(f.Fixture, "daskclusters"))
				cond := apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed)
				assert.Equal(t, daskv1.ReasonJobFailed, cond.Reason)
				assert.Contains(t, cond.Message, "exited with code 3")
			}},
		{"a failed runner within backoffLimit is replaced",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", corev1.RestartPolicyNever)
				j.Spec.BackoffLimit = testobjects.Int32p(2)
				j.Status.Attempts = 1
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodFailed, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobClusterCreated, s.JobStatus)
				assert.Equal(t, int32(1), s.Failed)
				assert.Equal(t, []string{"j-runner"}, controllertest.DeletedNames(f.Fixture, "pods"))
				assert.Empty(t, controllertest.DeletedNames(f.Fixture, "daskclusters"))
			}},
		{"a failed runner past backoffLimit fails the job",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", corev1.RestartPolicyNever)
				j.Spec.BackoffLimit = testobjects.Int32p(2)
				j.Status.Attempts, j.Status.Failed = 3, 2
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodFailed, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.Equal(t, daskv1.ReasonBackoffLimitExceeded, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed).Reason)
			}},
		{"a crash-looping runner with OnFailure fails the job past backoffLimit",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", "")
				j.Spec.BackoffLimit = testobjects.Int32p(3)
				j.Status.Attempts, j.Status.StartTime = 1, &started
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodRunning, 4)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.Equal(t, int32(4), s.Failed)
				assert.Equal(t, daskv1.ReasonBackoffLimitExceeded, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed).Reason)
				assert.ElementsMatch(t, []string{"j-runner"}, controllertest.DeletedNames(f.Fixture, "pods"), "the crash-looping runner is stopped")
				assert.Equal(t, []string{"j"}, controllertest.DeletedNames(f.Fixture, "daskclusters"))
			}},
		{"restarts within backoffLimit keep the job running",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", "")
				j.Spec.BackoffLimit = testobjects.Int32p(3)
				j.Status.Attempts, j.Status.StartTime = 1, &started
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodRunning, 3)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobRunning, s.JobStatus)
			}},
		{"a job past its deadline fails and stops",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", "")
				j.Spec.ActiveDeadlineSeconds = testobjects.Ptr(int64(30))
				j.CreationTimestamp = started
				j.Status.Attempts, j.Status.StartTime, j.Status.JobStatus = 1, &started, daskv1.JobRunning
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodRunning, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.Equal(t, daskv1.ReasonDeadlineExceeded, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed).Reason)
				assert.Equal(t, []string{"j-runner"}, controllertest.DeletedNames(f.Fixture, "pods"))
				assert.Equal(t, []string{"j"}, controllertest.DeletedNames(f.Fixture, "daskclusters"))
			}},
		{"a job within its deadline syncs again when it passes",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", "")
				j.Spec.ActiveDeadlineSeconds = testobjects.Ptr(int64(90))
				j.CreationTimestamp = started
				j.Status.Attempts, j.Status.StartTime, j.Status.JobStatus = 1, &started, daskv1.JobRunning
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodRunning, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, requeue time.Duration) {
				assert.InDelta(t, 30*time.Second, requeue, float64(time.Second))
			}},
		{"issue 15 item 6: the deadline counts from the job's creation, even when the runner never starts",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", "")
				j.Spec.ActiveDeadlineSeconds = testobjects.Ptr(int64(30))
				j.CreationTimestamp = started
				j.Status.Attempts, j.Status.JobStatus = 1, daskv1.JobClusterCreated
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodPending, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.Equal(t, daskv1.ReasonDeadlineExceeded, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed).Reason)
				assert.Equal(t, []string{"j"}, controllertest.DeletedNames(f.Fixture, "daskclusters"), "the cluster of a stuck job goes")
			}},
		{"issue 15 item 6: a pending runner within the deadline syncs again when it passes",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", "")
				j.Spec.ActiveDeadlineSeconds = testobjects.Ptr(int64(90))
				j.CreationTimestamp = started
				j.Status.Attempts, j.Status.JobStatus = 1, daskv1.JobClusterCreated
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodPending, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, requeue time.Duration) {
				assert.InDelta(t, 30*time.Second, requeue, float64(time.Second))
			}},
		{"issue 15 item 6: after a resume the deadline counts from the resume",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", "")
				j.Spec.ActiveDeadlineSeconds = testobjects.Ptr(int64(90))
				j.CreationTimestamp = metav1.NewTime(now.Add(-time.Hour))
				j.Status.Conditions = []metav1.Condition{{Type: daskv1.ConditionSuspended, Status: metav1.ConditionFalse, Reason: daskv1.ReasonResumed,
					LastTransitionTime: started}}
				j.Status.Attempts, j.Status.JobStatus = 1, daskv1.JobClusterCreated
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodPending, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, requeue time.Duration) {
				assert.NotEqual(t, daskv1.JobFailed, s.JobStatus)
				assert.InDelta(t, 30*time.Second, requeue, float64(time.Second))
			}},
		{"a suspended job deletes its runner and cluster",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", "")
				j.Spec.Suspend = testobjects.Ptr(true)
				j.Status.Attempts, j.Status.StartTime, j.Status.JobStatus = 1, &started, daskv1.JobRunning
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object {
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodRunning, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobSuspended, s.JobStatus)
				assert.Nil(t, s.StartTime, "the deadline counts again from the resume")
				assert.Equal(t, []string{"j-runner"}, controllertest.DeletedNames(f.Fixture, "pods"))
				assert.Equal(t, []string{"j"}, controllertest.DeletedNames(f.Fixture, "daskclusters"))
				assert.Empty(t, f.Actions("create", "pods"))
			}},
		{"a runner deleted from under a running job is a failure",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", corev1.RestartPolicyNever)
				j.Status.Attempts, j.Status.StartTime, j.Status.JobStatus = 1, &started, daskv1.JobRunning
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object { return []runtime.Object{testobjects.JobCluster(j)} },
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, daskv1.JobFailed, s.JobStatus)
				assert.Equal(t, daskv1.ReasonBackoffLimitExceeded, apimeta.FindStatusCondition(s.Conditions, daskv1.ConditionFailed).Reason)
				assert.Empty(t, f.Actions("create", "pods"))
			}},
		{"a lost runner within backoffLimit is recreated",
			func() *daskv1.DaskJob {
				j := testobjects.DaskJob("j", "")
				j.Status.Attempts, j.Status.StartTime, j.Status.JobStatus = 1, &started, daskv1.JobRunning
				return j
			},
			func(j *daskv1.DaskJob) []runtime.Object { return []runtime.Object{testobjects.JobCluster(j)} },
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.Equal(t, int32(1), s.Failed)
				assert.Equal(t, int32(2), s.Attempts)
				assert.Len(t, f.Actions("create", "pods"), 1)
			}},
		{"a leftover runner of another job is not adopted",
			func() *daskv1.DaskJob { return testobjects.DaskJob("j", "") },
			func(j *daskv1.DaskJob) []runtime.Object {
				other := testobjects.DaskJob("j", "")
				other.UID = "a-deleted-job"
				return []runtime.Object{testobjects.JobCluster(j), testobjects.RunnerIn(other, corev1.PodRunning, 0)}
			},
			func(t *testing.T, f *fixture, s daskv1.DaskJobStatus, _ time.Duration) {
				assert.NotEqual(t, daskv1.JobRunning, s.JobStatus)
				assert.Empty(t, f.Actions("create", "pods"))
				assert.Empty(t, controllertest.DeletedNames(f.Fixture, "pods"))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := tc.job()
			objs := append([]runtime.Object{j}, tc.state(j)...)
			f := newFixture(t, objs...)
			f.ctrl.Now = func() time.Time { return now }
			requeue, _ := f.ctrl.syncJob(context.Background(), "ns/j")
			tc.check(t, f, lastJobStatus(t, f), requeue)
		})
	}
}

func TestFinishedJobTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	j := testobjects.DaskJob("j", "")
	j.Spec.TTLSecondsAfterFinished = testobjects.Ptr(int32(60))
	j.Status.JobStatus = daskv1.JobSuccessful
	j.Status.EndTime = &metav1.Time{Time: now.Add(-30 * time.Second)}

	f := newFixture(t, j)
	f.ctrl.Now = func() time.Time { return now }
	requeue, err := f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	assert.InDelta(t, 30*time.Second, requeue, float64(time.Second))
	assert.Empty(t, controllertest.DeletedNames(f.Fixture, "daskjobs"))

	f.ctrl.Now = func() time.Time { return now.Add(31 * time.Second) }
	_, err = f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	assert.Equal(t, []string{"j"}, controllertest.DeletedNames(f.Fixture, "daskjobs"))
}

// Issue 15, item 5: suspending and resuming a job is not a failure: with
// restartPolicy Never the resumed job starts a new runner instead of
// failing, and no retry is used up.
func TestSuspendAndResumeIsNotAFailure(t *testing.T) {
	for _, policy := range []corev1.RestartPolicy{corev1.RestartPolicyNever, corev1.RestartPolicyOnFailure} {
		t.Run(string(policy), func(t *testing.T) {
			j := testobjects.DaskJob("j", policy)
			j.Spec.Suspend = testobjects.Ptr(true)
			j.Status.Attempts, j.Status.JobStatus = 1, daskv1.JobRunning
			f := newFixture(t, j, testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodRunning, 0))
			_, err := f.ctrl.syncJob(context.Background(), "ns/j")
			require.NoError(t, err)
			suspended := lastJobStatus(t, f)
			require.Equal(t, daskv1.JobSuspended, suspended.JobStatus)

			// Resumed: the runner and cluster are gone.
			resumed := testobjects.DaskJob("j", policy)
			resumed.Status = suspended
			f = newFixture(t, resumed)
			_, err = f.ctrl.syncJob(context.Background(), "ns/j")
			require.NoError(t, err)
			s := lastJobStatus(t, f)
			assert.NotEqual(t, daskv1.JobFailed, s.JobStatus)
			assert.Zero(t, s.Failed, "the pause used no retry")
			assert.Len(t, f.Actions("create", "pods"), 1, "a new runner starts")
		})
	}
}

// Issue 15, item 7: while the runner Pod the job created is not in the
// cache, the job is looked at again when the expectation expires, not only
// at the next resync.
func TestJobWithUnmetExpectationsRequeues(t *testing.T) {
	j := testobjects.DaskJob("j", "")
	f := newFixture(t, j, testobjects.JobCluster(j))
	_, err := f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	require.Len(t, f.Actions("create", "pods"), 1)
	requeue, err := f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	assert.Greater(t, requeue, time.Duration(0))
	assert.LessOrEqual(t, requeue, expectations.DefaultTTL+time.Second)
}

// The pattern of issue 15, item 4, in jobs: a refused patch of the runner's
// or the cluster's metadata does not stop the job from seeing its runner
// succeed.
func TestJobProgressesWhenMetadataPatchesFail(t *testing.T) {
	j := testobjects.DaskJob("j", "")
	j.Status.Attempts, j.Status.JobStatus = 1, daskv1.JobRunning
	cluster, runner := testobjects.JobCluster(j), testobjects.RunnerIn(j, corev1.PodSucceeded, 0)
	j.Labels = map[string]string{"team": "new"} // added since: to be passed on
	f := newFixture(t, j, cluster, runner)
	for _, res := range []string{"pods", "daskclusters"} {
		f.Kube.PrependReactor("patch", res, func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("forbidden")
		})
		f.Dask.PrependReactor("patch", res, func(k8stesting.Action) (bool, runtime.Object, error) {
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
	j := testobjects.DaskJob("j", corev1.RestartPolicyNever)
	f := newFixture(t, j, testobjects.JobCluster(j))
	f.Kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "j-runner", nil)
	})
	_, _ = f.ctrl.syncJob(context.Background(), "ns/j")
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonFailedCreate), "one Warning for a refused runner")

	terminating := &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 403, Reason: metav1.StatusReasonForbidden,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}}, Message: "namespace ns is being terminated"}}
	for _, res := range []string{"daskclusters", "pods"} {
		j := testobjects.DaskJob("j", corev1.RestartPolicyNever)
		objs := []runtime.Object{j}
		if res == "pods" {
			objs = append(objs, testobjects.JobCluster(j))
		}
		f := newFixture(t, objs...)
		refuse := func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, terminating }
		f.Kube.PrependReactor("create", res, refuse)
		f.Dask.PrependReactor("create", res, refuse)
		_, err := f.ctrl.syncJob(context.Background(), "ns/j")
		assert.NoError(t, err, "%s: nothing to retry", res)
		assert.Zero(t, controllertest.CountEvents(f.Fixture, daskv1.ReasonFailedCreate), "%s: nothing to report", res)
	}
}

// Issue 30: a job's children are created the one way every kind does
// (createChild): a create refused again and again is told once, by one
// Warning and the job's ResourcesCreated condition.
func TestJobCreateFailureIsReportedOnce(t *testing.T) {
	j := testobjects.DaskJob("j", corev1.RestartPolicyNever)
	f := newFixture(t, j)
	f.Dask.PrependReactor("create", "daskclusters", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "kubernetes.dask.org", Resource: "daskclusters"}, "j", errors.New("exceeded quota"))
	})
	for range 3 {
		_, err := f.ctrl.syncJob(context.Background(), "ns/j")
		require.Error(t, err, "retried")
		written := controllertest.LastStatusWrite[*daskv1.DaskJob](t, f.Fixture, "daskjobs")
		require.NoError(t, f.ctrl.Caches.In("").Jobs.GetIndexer().Update(written))
	}
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonFailedCreate))
	cond := apimeta.FindStatusCondition(controllertest.LastStatusWrite[*daskv1.DaskJob](t, f.Fixture, "daskjobs").Status.Conditions, daskv1.ConditionResourcesCreated)
	require.NotNil(t, cond)
	assert.Equal(t, metav1.ConditionFalse, cond.Status)
	assert.Contains(t, cond.Message, "exceeded quota")
}
