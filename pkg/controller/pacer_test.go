package controller

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

func TestPacer(t *testing.T) {
	p := NewPacer()
	now := time.Unix(1_800_000_000, 0)
	assert.Zero(t, p.Wait("k", now), "the first write is never held back")
	p.Hold("k", now.Add(time.Second))
	assert.Equal(t, 700*time.Millisecond, p.Wait("k", now.Add(300*time.Millisecond)))
	assert.Zero(t, p.Wait("k", now.Add(time.Second)))
	assert.Zero(t, p.Wait("other", now))
	p.Hold("k", now.Add(time.Hour))
	p.Forget("k")
	assert.Zero(t, p.Wait("k", now))
}

func TestDeferral(t *testing.T) {
	p := NewPacer()
	now := time.Unix(1_800_000_000, 0)
	assert.Equal(t, time.Second, p.Deferral("k", now, time.Second), "the first progress waits")
	assert.Equal(t, 600*time.Millisecond, p.Deferral("k", now.Add(400*time.Millisecond), time.Second), "and is not pushed back by more")
	assert.Zero(t, p.Deferral("k", now.Add(time.Second), time.Second), "then it is written")
	assert.Zero(t, p.Deferral("k", now.Add(2*time.Second), time.Second), "until the write replaces the entry")
	p.Forget("k")
	assert.Equal(t, time.Second, p.Deferral("k", now.Add(3*time.Second), time.Second), "a settled write lets the next progress wait again")
}

func TestStatusPacing(t *testing.T) {
	cond := func(typ string, s metav1.ConditionStatus, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: "R" + string(s), Message: msg}
	}
	found := cond(daskv1.ConditionClusterFound, metav1.ConditionTrue, "")
	ready := func(msg string, s metav1.ConditionStatus) metav1.Condition {
		return cond(daskv1.ConditionWorkersReady, s, msg)
	}

	// A new group: from nothing to ClusterFound, 0/3 ready: progress, not settled.
	empty := &daskv1.DaskWorkerGroupStatus{}
	starting := &daskv1.DaskWorkerGroupStatus{Conditions: []metav1.Condition{found, ready("0/3", metav1.ConditionFalse)}}
	progress, settled := GroupStatusPacing(empty, starting, 3)
	assert.True(t, progress)
	assert.False(t, settled)

	up := &daskv1.DaskWorkerGroupStatus{Replicas: 3, ReadyReplicas: 3, Conditions: []metav1.Condition{found, ready("3/3", metav1.ConditionTrue)}}
	progress, settled = GroupStatusPacing(starting, up, 3)
	assert.True(t, progress)
	assert.True(t, settled, "all there and ready")
	_, settled = GroupStatusPacing(starting, &daskv1.DaskWorkerGroupStatus{Replicas: 5, ReadyReplicas: 5, Conditions: up.Conditions}, 3)
	assert.False(t, settled, "a scale-down still under way, though WorkersReady is True")

	lost := &daskv1.DaskWorkerGroupStatus{Conditions: []metav1.Condition{cond(daskv1.ConditionClusterFound, metav1.ConditionFalse, "gone"), ready("0/3", metav1.ConditionFalse)}}
	progress, _ = GroupStatusPacing(starting, lost, 3)
	assert.False(t, progress, "a condition turning False is written at once")
	failing := &daskv1.DaskWorkerGroupStatus{Conditions: append(slices.Clone(starting.Conditions), cond(daskv1.ConditionReplicaFailure, metav1.ConditionTrue, "quota"))}
	progress, _ = GroupStatusPacing(starting, failing, 3)
	assert.False(t, progress, "another condition appearing is written at once")
	progress, _ = GroupStatusPacing(failing, starting, 3)
	assert.False(t, progress, "and so is its removal")

	// Clusters: a new phase (Running, which clients wait for) is written at
	// once; the scheduler and workers coming up are progress.
	running := &daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterRunning, Conditions: []metav1.Condition{
		cond(daskv1.ConditionSchedulerReady, metav1.ConditionFalse, "pending"), ready("0/3", metav1.ConditionFalse)}}
	progress, settled = ClusterStatusPacing(&daskv1.DaskClusterStatus{}, running)
	assert.False(t, progress, "the phase changed")
	assert.False(t, settled)
	halfUp := &daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterRunning, Replicas: 3, ReadyReplicas: 1, Conditions: []metav1.Condition{
		cond(daskv1.ConditionSchedulerReady, metav1.ConditionTrue, "ready"), ready("1/3", metav1.ConditionFalse)}}
	progress, settled = ClusterStatusPacing(running, halfUp)
	assert.True(t, progress)
	assert.False(t, settled)
	allUp := &daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterRunning, Replicas: 3, ReadyReplicas: 3, Conditions: []metav1.Condition{
		cond(daskv1.ConditionSchedulerReady, metav1.ConditionTrue, "ready"), ready("3/3", metav1.ConditionTrue)}}
	_, settled = ClusterStatusPacing(halfUp, allUp)
	assert.True(t, settled)
	progress, _ = ClusterStatusPacing(running, &daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterError})
	assert.False(t, progress)
}

// Issue 29, item 10: a scheduler or workers that were ready and are not any
// more are written at once, not paced as progress; from False to another
// False (1/3, then 2/3 ready) is still progress.
func TestReadinessLostIsWrittenAtOnce(t *testing.T) {
	cond := func(typ string, s metav1.ConditionStatus, msg string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: "R" + string(s), Message: msg}
	}
	for _, typ := range []string{daskv1.ConditionSchedulerReady, daskv1.ConditionWorkersReady, daskv1.ConditionWorkersUpdated} {
		was := []metav1.Condition{cond(typ, metav1.ConditionTrue, "ready")}
		now := []metav1.Condition{cond(typ, metav1.ConditionFalse, "not ready")}
		assert.False(t, conditionsProgressOnly(was, now, false), "%s turning False", typ)
		assert.True(t, conditionsProgressOnly(now, was, true), "%s turning True", typ)
		assert.True(t, conditionsProgressOnly(now, []metav1.Condition{cond(typ, metav1.ConditionFalse, "less not ready")}, true), typ)
	}
	// More workers wanted, none fewer ready (a new cluster's group appearing
	// with 3 where there were 0, a scale-up): progress to come.
	up := &daskv1.DaskWorkerGroupStatus{Replicas: 3, ReadyReplicas: 3, Conditions: []metav1.Condition{cond(daskv1.ConditionWorkersReady, metav1.ConditionTrue, "3/3")}}
	more := &daskv1.DaskWorkerGroupStatus{Replicas: 3, ReadyReplicas: 3, Conditions: []metav1.Condition{cond(daskv1.ConditionWorkersReady, metav1.ConditionFalse, "3/5")}}
	progress, _ := GroupStatusPacing(up, more, 5)
	assert.True(t, progress, "scaled up: paced")
	fewer := &daskv1.DaskWorkerGroupStatus{Replicas: 3, ReadyReplicas: 2, Conditions: []metav1.Condition{cond(daskv1.ConditionWorkersReady, metav1.ConditionFalse, "2/3")}}
	progress, _ = GroupStatusPacing(up, fewer, 3)
	assert.False(t, progress, "a worker became unready: at once")
	ready := &daskv1.DaskClusterStatus{Phase: daskv1.DaskClusterRunning, Replicas: 3, ReadyReplicas: 3,
		Conditions: []metav1.Condition{cond(daskv1.ConditionSchedulerReady, metav1.ConditionTrue, "ready")}}
	lost := ready.DeepCopy()
	lost.Conditions[0] = cond(daskv1.ConditionSchedulerReady, metav1.ConditionFalse, "scheduler Pod not Ready")
	progress, _ = ClusterStatusPacing(ready, lost)
	assert.False(t, progress)
}

// A group's and a cluster's WorkersReady say the same, from the counts.
func TestSetWorkersReady(t *testing.T) {
	for _, tc := range []struct {
		ready, desired int32
		status         metav1.ConditionStatus
		msg            string
	}{
		{0, 3, metav1.ConditionFalse, "0/3 workers ready"},
		{3, 3, metav1.ConditionTrue, "3/3 workers ready"},
		{5, 3, metav1.ConditionTrue, "5/3 workers ready"},
		{0, 0, metav1.ConditionTrue, "0/0 workers ready"},
	} {
		var conds []metav1.Condition
		SetWorkersReady(&conds, 4, tc.ready, tc.desired)
		require.Len(t, conds, 1)
		assert.Equal(t, tc.status, conds[0].Status)
		assert.Equal(t, tc.msg, conds[0].Message)
		assert.Equal(t, int64(4), conds[0].ObservedGeneration)
	}
}
