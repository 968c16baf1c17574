package job

import (
	"context"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"
	"github.com/dask-operator/dask-operator/pkg/kueue"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Issue 31: a job labelled for a Kueue queue where Kueue is not installed
// does not run, and says why, once, as a Warning: never a silent wait.
func TestQueueLabelWithoutKueueIsReported(t *testing.T) {
	j := testobjects.DaskJob("j", corev1.RestartPolicyNever)
	j.Labels = map[string]string{kueue.LabelQueueName: "q"}
	f := newFixture(t, j)
	f.WriteStatusAtOnce()
	_, err := f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	st := lastJobStatus(t, f)
	c := apimeta.FindStatusCondition(st.Conditions, daskv1.ConditionAdmitted)
	require.NotNil(t, c)
	assert.Equal(t, metav1.ConditionFalse, c.Status)
	assert.Equal(t, daskv1.ReasonKueueNotInstalled, c.Reason)
	assert.Contains(t, c.Message, "install Kueue")
	assert.Equal(t, daskv1.JobSuspended, st.JobStatus)
	assert.Empty(t, f.Actions("create", "daskclusters"), "no cluster")
	assert.Empty(t, f.Actions("create", "pods"), "no runner")
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonKueueNotInstalled))

	// The next sync, with that status, tells no one again.
	j.Status = st
	f = newFixture(t, j)
	_, err = f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	assert.Zero(t, controllertest.CountEvents(f.Fixture, daskv1.ReasonKueueNotInstalled))
}

// Issue 31: a queued job's cluster is part of the job's Workload: it does
// not carry the queue and priority labels (it would be queued on its own).
func TestJobClusterIsNotQueuedItself(t *testing.T) {
	j := testobjects.DaskJob("j", corev1.RestartPolicyNever)
	j.Labels = map[string]string{kueue.LabelQueueName: "q", kueue.LabelPriorityClass: "high", "team": "a"}
	c := resources.JobCluster(j)
	assert.NotContains(t, c.Labels, kueue.LabelQueueName)
	assert.NotContains(t, c.Labels, kueue.LabelPriorityClass)
	assert.Equal(t, "a", c.Labels["team"])
}

// Issue 31: a job another controller manages (spec.managedBy, as
// MultiKueue sets it) is left alone: no cluster, no runner, no status.
func TestJobManagedElsewhereIsLeftAlone(t *testing.T) {
	j := testobjects.DaskJob("j", corev1.RestartPolicyNever)
	j.Spec.ManagedBy = testobjects.Ptr("kueue.x-k8s.io/multikueue")
	f := newFixture(t, j)
	f.WriteStatusAtOnce()
	_, err := f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	assert.Empty(t, f.Actions("create", "daskclusters"))
	assert.Empty(t, f.Actions("create", "pods"))
	assert.Empty(t, f.Actions("update", "daskjobs"), "its status is the other controller's")

	// Managed by this operator by name: run as usual.
	j.Spec.ManagedBy = testobjects.Ptr(daskv1.ManagedByOperator)
	f = newFixture(t, j)
	_, err = f.ctrl.syncJob(context.Background(), "ns/j")
	require.NoError(t, err)
	assert.Len(t, f.Actions("create", "daskclusters"), 1)
}
