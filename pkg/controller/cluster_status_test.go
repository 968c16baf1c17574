package controller

import (
	"context"
	"errors"
	"fmt"
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
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

func lastClusterStatus(t *testing.T, f *fixture) daskv1.DaskClusterStatus {
	t.Helper()
	return lastStatusWrite[*daskv1.DaskCluster](t, f, "daskclusters").Status
}

// Issue 15, item 10: the scale subresource (spec.worker.replicas, the
// default group's count) reads a status of the default group only, so an
// HPA does not multiply every group's workers into the default group.
func TestScaleStatusDescribesTheDefaultGroup(t *testing.T) {
	c := cluster("c")
	def := resources.DefaultWorkerGroup(c)
	def.UID = "uid-default"
	def.Status.Replicas = 2
	extra := group("extra", "c", 3)
	extra.Status.Replicas = 3
	f := newFixture(t, c, def, extra)
	f.writeStatusAtOnce()
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	s := lastClusterStatus(t, f)
	assert.Equal(t, int32(2), s.DefaultGroupReplicas)
	assert.Equal(t, int32(5), s.Replicas, "status.replicas still counts every group")
	assert.Equal(t, resources.WorkerGroupSelector("c", "c-default").String(), s.Selector)
}

// Issue 15, item 11: a group controlled by a deleted cluster does not join
// a new cluster that reuses the name; one of a cluster being deleted says so.
func TestGroupFollowsOnlyItsOwnCluster(t *testing.T) {
	c := cluster("c")
	g := group("g", "c", 2)
	g.OwnerReferences = []metav1.OwnerReference{resources.ControllerRefToCluster(c)}
	g.OwnerReferences[0].UID = "uid-of-the-deleted-c"
	f := newFixture(t, c, g)
	_, err := f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	assert.Empty(t, f.actions("create", "pods"))
	cond := apimeta.FindStatusCondition(lastGroupStatus(t, f).Conditions, daskv1.ConditionClusterFound)
	require.NotNil(t, cond)
	assert.Equal(t, "OwnerDeleted", cond.Reason)

	deleting := cluster("c")
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	f = newFixture(t, deleting, group("g", "c", 2))
	_, err = f.ctrl.syncWorkerGroup(context.Background(), "ns/g")
	require.NoError(t, err)
	assert.Empty(t, f.actions("create", "pods"))
	cond = apimeta.FindStatusCondition(lastGroupStatus(t, f).Conditions, daskv1.ConditionClusterFound)
	require.NotNil(t, cond)
	assert.Equal(t, "ClusterDeleting", cond.Reason, "a cluster being deleted is not 'not found'")
}

// Issue 15, item 11: one permanent error joined with transient ones does
// not stop the retries the transient ones need.
func TestIsPermanentOnlyWhenEveryErrorIs(t *testing.T) {
	p, transient := permanent(errors.New("invalid spec")), errors.New("connection refused")
	assert.True(t, isPermanent(p))
	assert.True(t, isPermanent(fmt.Errorf("create: %w", p)))
	assert.True(t, isPermanent(errors.Join(p, nil, permanent(errors.New("also invalid")))))
	assert.False(t, isPermanent(errors.Join(p, transient)))
	assert.False(t, isPermanent(transient))
	assert.False(t, isPermanent(nil))
}

// Issue 15, item 11: after a scheduler restart, an idleness answer of the
// scheduler before it does not delete the cluster.
func TestIdleAnswerFromBeforeARestartIsIgnored(t *testing.T) {
	c := cluster("c")
	c.Spec.IdleTimeout = 60
	sched := resources.SchedulerPod(c)
	sched.UID = "uid-new-scheduler"
	sched.Status.Phase = corev1.PodRunning
	sched.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(time.Now().Add(-10 * time.Second))}}
	f := newFixture(t, c, sched)
	idleSince := time.Now().Add(-time.Hour)
	f.ctrl.idleChecks.results["ns/c"] = asyncResult[*time.Time]{value: &idleSince, at: time.Now().Add(-30 * time.Second)}
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Empty(t, f.actions("delete", "daskclusters"), "the old scheduler's idleness says nothing of the new one")

	// The same answer from the running scheduler deletes the cluster.
	f = newFixture(t, c, sched)
	f.ctrl.idleChecks.results["ns/c"] = asyncResult[*time.Time]{value: &idleSince, at: time.Now()}
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Len(t, f.actions("delete", "daskclusters"), 1)
}

// The status tells where the scheduler is, so that nobody assembles
// tcp://<svc>.<ns>.svc.cluster.local:8786 by hand.
func TestClusterStatusHasTheSchedulerAddress(t *testing.T) {
	f := newFixture(t, cluster("c"))
	f.writeStatusAtOnce()
	_, err := f.ctrl.syncCluster(context.Background(), "ns/c")
	require.NoError(t, err)
	st := lastClusterStatus(t, f)
	assert.Equal(t, "tcp://c-scheduler.ns.svc.cluster.local:8786", st.SchedulerAddress)
	assert.Equal(t, "http://c-scheduler.ns.svc.cluster.local:8787", st.DashboardURL)
	assert.Empty(t, st.ExternalSchedulerAddress)
}

// A scheduler Pod spec the API server refuses is reported once: later syncs
// of the cluster (its group's status changes bring them) try again but
// record no second Warning while the condition says the same. Found by the
// fault suite's bad-input fault.
func TestRefusedCreateIsReportedOnce(t *testing.T) {
	c := cluster("c")
	f := newFixture(t, c)
	f.kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "c-scheduler",
			field.ErrorList{field.Required(field.NewPath("spec", "containers").Index(0).Child("image"), "")})
	})
	for i := range 3 {
		// (The Service and group it created are not in the fake cache:
		// later syncs also report them as not seen yet.)
		_, err := f.ctrl.syncCluster(context.Background(), "ns/c")
		if i == 0 {
			require.NoError(t, err, "a permanent error is not retried")
			assert.Equal(t, daskv1.DaskClusterError, lastClusterStatus(t, f).Phase)
		}
		written := lastClusterStatus(t, f)
		updated := c.DeepCopy()
		updated.Status = written
		require.NoError(t, f.ctrl.caches.in("").clusters.GetIndexer().Update(updated))
	}
	assert.Equal(t, 1, countEvents(f, daskv1.ReasonFailedCreate))
}

// Issue 29, item 3: an answer that said "idle" before the timeout was due
// does not delete the cluster once the timeout passes: work may have come
// since. The scheduler is asked again at once, and only an answer fetched
// after the timeout was due deletes.
func TestIdleTimeoutDecidesOnAFreshAnswer(t *testing.T) {
	c := cluster("c")
	c.Spec.IdleTimeout = 60
	sched := resources.SchedulerPod(c)
	sched.Status.Phase = corev1.PodRunning
	sched.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(time.Now().Add(-time.Hour))}}
	f := newFixture(t, c, sched)
	f.idle = `{"idle_since": null}` // busy now
	// Idle for 50 s when asked 5 s ago; 55 s... now past the 60 s only by waiting.
	idleSince := time.Now().Add(-65 * time.Second)
	f.ctrl.idleChecks.results["ns/c"] = asyncResult[*time.Time]{value: &idleSince, at: idleSince.Add(50 * time.Second)}
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Empty(t, f.actions("delete", "daskclusters"), "an answer from before the timeout was due does not delete")
	require.Eventually(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.idleAsked > 0 }, 5*time.Second, 10*time.Millisecond,
		"the scheduler is asked again at once")
	require.Eventually(t, func() bool { r, _ := f.ctrl.idleChecks.peek("ns/c"); return r.value == nil }, 5*time.Second, 10*time.Millisecond)
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Empty(t, f.actions("delete", "daskclusters"), "busy now: kept")

	// Idle past the timeout when asked: deleted.
	f.ctrl.idleChecks.results["ns/c"] = asyncResult[*time.Time]{value: &idleSince, at: time.Now()}
	_, _ = f.ctrl.syncCluster(context.Background(), "ns/c")
	assert.Len(t, f.actions("delete", "daskclusters"), 1)
}
