package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func leaderFlags() *flags {
	return &flags{
		leaseNamespace: "ops", leaseName: "dask-operator",
		leaseDuration: time.Second, renewDeadline: 600 * time.Millisecond, retryPeriod: 100 * time.Millisecond,
	}
}

func holder(t *testing.T, kube *kubefake.Clientset) string {
	t.Helper()
	l, err := kube.CoordinationV1().Leases("ops").Get(context.Background(), "dask-operator", metav1.GetOptions{})
	require.NoError(t, err)
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// Issue 15, item 9: on SIGTERM the leader's in-flight work drains while it
// still holds the Lease (its lead context stays live); only then is the
// Lease released.
func TestLeaderDrainsBeforeReleasingTheLease(t *testing.T) {
	kube := kubefake.NewClientset()
	ctx, sigterm := context.WithCancel(context.Background())
	var heldWhileDraining string
	var leadLiveWhileDraining bool
	working := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runAsLeader(ctx, leaderFlags(), kube, "me", nil, func(stop, lead context.Context) error {
			close(working)
			<-stop.Done()
			time.Sleep(300 * time.Millisecond) // an in-flight sync finishing
			heldWhileDraining = holder(t, kube)
			leadLiveWhileDraining = lead.Err() == nil
			return nil
		})
	}()
	select {
	case <-working:
	case <-time.After(10 * time.Second):
		t.Fatal("never became the leader")
	}
	sigterm()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("runAsLeader did not return after SIGTERM")
	}
	assert.NotEmpty(t, heldWhileDraining, "the Lease is held while in-flight syncs finish")
	assert.True(t, leadLiveWhileDraining, "draining syncs keep a live context")
	assert.Empty(t, holder(t, kube), "the Lease is released once the work is done")
}

// Issue 15, item 9: when the Lease cannot be renewed, the work's
// lead context ends (nothing may write any more) and runAsLeader waits for
// the work before it reports the loss.
func TestLosingTheLeaseStopsTheWorkFirst(t *testing.T) {
	kube := kubefake.NewClientset()
	var partitioned atomic.Bool
	kube.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if partitioned.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	working := make(chan struct{})
	var workReturned time.Time
	done := make(chan error, 1)
	go func() {
		done <- runAsLeader(context.Background(), leaderFlags(), kube, "me", nil, func(stop, lead context.Context) error {
			close(working)
			<-lead.Done()
			time.Sleep(100 * time.Millisecond)
			workReturned = time.Now()
			return nil
		})
	}()
	select {
	case <-working:
	case <-time.After(10 * time.Second):
		t.Fatal("never became the leader")
	}
	// The API server refuses the leader's renewals from now on (a partition).
	partitioned.Store(true)
	select {
	case err := <-done:
		require.ErrorContains(t, err, "lost the lease")
		assert.False(t, workReturned.IsZero(), "the work returned before runAsLeader did")
	case <-time.After(10 * time.Second):
		t.Fatal("the loss of the Lease was not noticed")
	}
}
