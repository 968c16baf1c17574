package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPacer(t *testing.T) {
	p := newPacer()
	now := time.Unix(1_800_000_000, 0)
	assert.Zero(t, p.wait("k", now), "the first write is never held back")
	p.hold("k", now.Add(time.Second))
	assert.Equal(t, 700*time.Millisecond, p.wait("k", now.Add(300*time.Millisecond)))
	assert.Zero(t, p.wait("k", now.Add(time.Second)))
	assert.Zero(t, p.wait("other", now))
	p.hold("k", now.Add(time.Hour))
	p.forget("k")
	assert.Zero(t, p.wait("k", now))
}

func TestCountsOnly(t *testing.T) {
	ready := []metav1.Condition{{Type: CondWorkersReady, Status: metav1.ConditionFalse, Message: "1/3"}, {Type: CondClusterFound, Status: metav1.ConditionTrue}}
	moreReady := []metav1.Condition{{Type: CondWorkersReady, Status: metav1.ConditionFalse, Message: "2/3"}, {Type: CondClusterFound, Status: metav1.ConditionTrue}}
	assert.True(t, countsOnly([2]int32{3, 1}, [2]int32{3, 2}, ready, moreReady))
	lost := []metav1.Condition{{Type: CondWorkersReady, Status: metav1.ConditionFalse, Message: "2/3"}, {Type: CondClusterFound, Status: metav1.ConditionFalse}}
	assert.False(t, countsOnly([2]int32{3, 1}, [2]int32{3, 2}, ready, lost), "another condition changed")
	assert.False(t, countsOnly([2]int32{3, 1}, [2]int32{3, 1}, ready, moreReady), "the counts did not change")
}
