package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Issue 15, item 10: the scale subresource (spec.worker.replicas, the
// default group's count) reads a status of the default group only, so an
// HPA does not multiply every group's workers into the default group.
func TestScaleStatusDescribesTheDefaultGroup(t *testing.T) {
	c := testobjects.Cluster("c")
	def := resources.DefaultWorkerGroup(c)
	def.UID = "uid-default"
	def.Status.Replicas = 2
	extra := testobjects.Group("extra", "c", 3)
	extra.Status.Replicas = 3
	f := newFixture(t, c, def, extra)
	f.WriteStatusAtOnce()
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	s := controllertest.LastClusterStatus(t, f.Fixture)
	assert.Equal(t, int32(2), s.DefaultGroupReplicas)
	assert.Equal(t, int32(5), s.Replicas, "status.replicas still counts every group")
	assert.Equal(t, resources.WorkerGroupSelector("c", "c-default").String(), s.Selector)
}

// Issue 15, item 11: after a scheduler restart, an idleness answer of the
// scheduler before it does not delete the cluster.
func TestIdleAnswerFromBeforeARestartIsIgnored(t *testing.T) {
	c := testobjects.Cluster("c")
	c.Spec.IdleTimeout = 60
	sched := resources.SchedulerPod(c)
	sched.UID = "uid-new-scheduler"
	sched.Status.Phase = corev1.PodRunning
	sched.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(time.Now().Add(-10 * time.Second))}}
	f := newFixture(t, c, sched)
	idleSince := time.Now().Add(-time.Hour)
	f.ctrl.idleChecks.Results["ns/c"] = controller.AsyncResult[*time.Time]{Value: &idleSince, At: time.Now().Add(-30 * time.Second)}
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Empty(t, f.Actions("delete", "daskclusters"), "the old scheduler's idleness says nothing of the new one")

	// The same answer from the running scheduler deletes the cluster.
	f = newFixture(t, c, sched)
	f.ctrl.idleChecks.Results["ns/c"] = controller.AsyncResult[*time.Time]{Value: &idleSince, At: time.Now()}
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Len(t, f.Actions("delete", "daskclusters"), 1)
}

// The status tells where the scheduler is, so that nobody assembles
// tcp://<svc>.<ns>.svc.cluster.local:8786 by hand.
func TestClusterStatusHasTheSchedulerAddress(t *testing.T) {
	f := newFixture(t, testobjects.Cluster("c"))
	f.WriteStatusAtOnce()
	_, err := f.ctrl.syncCluster(context.Background(), "ns/c")
	require.NoError(t, err)
	st := controllertest.LastClusterStatus(t, f.Fixture)
	assert.Equal(t, "tcp://c-scheduler.ns.svc.cluster.local:8786", st.SchedulerAddress)
	assert.Equal(t, "http://c-scheduler.ns.svc.cluster.local:8787", st.DashboardURL)
	assert.Empty(t, st.ExternalSchedulerAddress)
}

// A scheduler Pod spec the API server refuses is reported once: later syncs
// of the cluster (its group's status changes bring them) try again but
// record no second Warning while the condition says the same. Found by the
// fault suite's bad-input fault.
func TestRefusedCreateIsReportedOnce(t *testing.T) {
	c := testobjects.Cluster("c")
	f := newFixture(t, c)
	f.Kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "c-scheduler",
			field.ErrorList{field.Required(field.NewPath("spec", "containers").Index(0).Child("image"), "")})
	})
	for i := range 3 {
		// (The Service and group it created are not in the fake cache:
		// later syncs also report them as not seen yet.)
		_, err := f.ctrl.syncCluster(context.Background(), "ns/c")
		if i == 0 {
			require.NoError(t, err, "a permanent error is not retried")
			assert.Equal(t, daskv1.DaskClusterError, controllertest.LastClusterStatus(t, f.Fixture).Phase)
		}
		written := controllertest.LastClusterStatus(t, f.Fixture)
		updated := c.DeepCopy()
		updated.Status = written
		require.NoError(t, f.ctrl.Caches.In("").Clusters.GetIndexer().Update(updated))
	}
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonFailedCreate))
}

// Issue 29, item 3: an answer that said "idle" before the timeout was due
// does not delete the cluster once the timeout passes: work may have come
// since. The scheduler is asked again at once, and only an answer fetched
// after the timeout was due deletes.
func TestIdleTimeoutDecidesOnAFreshAnswer(t *testing.T) {
	c := testobjects.Cluster("c")
	c.Spec.IdleTimeout = 60
	sched := resources.SchedulerPod(c)
	sched.Status.Phase = corev1.PodRunning
	sched.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Hour))}}
	f := newFixture(t, c, sched)
	f.Idle = `{"idle_since": null}` // busy now
	// Idle for 50 s when asked 5 s ago; 55 s... now past the 60 s only by waiting.
	idleSince := time.Now().Add(-65 * time.Second)
	f.ctrl.idleChecks.Results["ns/c"] = controller.AsyncResult[*time.Time]{Value: &idleSince, At: idleSince.Add(50 * time.Second)}
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Empty(t, f.Actions("delete", "daskclusters"), "an answer from before the timeout was due does not delete")
	require.Eventually(t, func() bool { f.Mu.Lock(); defer f.Mu.Unlock(); return f.IdleAsked > 0 }, 5*time.Second, 10*time.Millisecond,
		"the scheduler is asked again at once")
	require.Eventually(t, func() bool { r, _ := f.ctrl.idleChecks.Peek("ns/c"); return r.Value == nil }, 5*time.Second, 10*time.Millisecond)
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Empty(t, f.Actions("delete", "daskclusters"), "busy now: kept")

	// Idle past the timeout when asked: deleted.
	f.ctrl.idleChecks.Results["ns/c"] = controller.AsyncResult[*time.Time]{Value: &idleSince, At: time.Now()}
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Len(t, f.Actions("delete", "daskclusters"), 1)
}
