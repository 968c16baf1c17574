package workergroup

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

// Issue 16 (found by the fault suite: a Pod over 60 after the API server
// was restarted mid-scale): a create whose connection broke may have
// created its Pod. Its name stays expected until a read from the API server
// settles it, so a sync reading a cache that has not seen the Pod does not
// create another; one that was not created is replaced after that read.
func TestUncertainCreatesAreSettledByARead(t *testing.T) {
	for _, created := range []bool{true, false} {
		t.Run(fmt.Sprintf("created=%v", created), func(t *testing.T) {
			c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 2)
			f := newFixture(t, c, g)
			now := time.Unix(1_800_000_000, 0)
			f.ctrl.Now = func() time.Time { return now }
			f.ctrl.expect.SetClock(func() time.Time { return now })
			failing := true
			f.Kube.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if !failing {
					return false, nil, nil
				}
				if created { // the server created it; the answer was lost
					pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
					require.NoError(t, f.Kube.Tracker().Add(pod))
				}
				return true, nil, fmt.Errorf("Post \"https://api/pods\": %w", syscall.ECONNRESET)
			})
			ctx := context.Background()
			_, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
			require.Error(t, err)
			require.Len(t, f.Actions("create", "pods"), 1, "slow start stops at the first failure")
			f.ClearActions()
			failing = false

			// The cache has not seen it: no second create, before or after the read.
			requeue, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
			require.NoError(t, err)
			assert.Empty(t, f.Actions("create", "pods"), "the uncertain create is still expected")
			assert.Greater(t, requeue, time.Duration(0))
			assert.LessOrEqual(t, requeue, uncertainWait)
			now = now.Add(uncertainWait)
			_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
			require.NoError(t, err)
			assert.Len(t, f.Actions("get", "pods"), 1, "the Pod is read by name")
			if created {
				assert.Empty(t, f.Actions("create", "pods"), "it exists: its add event is waited for")
				assert.False(t, f.ctrl.expect.Satisfied("ns/g"))
			} else {
				assert.Len(t, f.Actions("create", "pods"), 2, "it does not exist: both workers are created")
			}
		})
	}
}

func TestCreateMayHaveHappened(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{apierrors.NewForbidden(corev1.Resource("pods"), "p", errors.New("quota")), false},
		{apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Pod").GroupKind(), "p", nil), false},
		{apierrors.NewTooManyRequests("slow down", 1), false},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{apierrors.NewTimeoutError("the server may have processed it", 1), true},
		{apierrors.NewInternalError(errors.New("etcd")), true},
		{apierrors.NewAlreadyExists(corev1.Resource("pods"), "p"), true},
		{context.DeadlineExceeded, true},
	} {
		assert.Equal(t, c.want, createMayHaveHappened(c.err), "%v", c.err)
	}
}
