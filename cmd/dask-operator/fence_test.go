package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/dask-operator/dask-operator/pkg/daskapi"
)

// Issue 16: a replica writes only while its Lease renewal is younger than
// the renew deadline: followers never write, and a leader paused past its
// lease (SIGSTOP) refuses the writes its goroutines send on waking, before
// its elector has noticed the loss.
func TestWriteFenceRefusesWritesWithoutAFreshLease(t *testing.T) {
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Add(1) }))
	defer srv.Close()
	fence := newWriteFence(200 * time.Millisecond)
	client := &http.Client{Transport: fence.wrap(http.DefaultTransport)}
	do := func(method string) error {
		req, err := http.NewRequest(method, srv.URL, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	assert.NoError(t, do(http.MethodGet), "reads always pass")
	assert.ErrorContains(t, do(http.MethodPost), "not the leader", "a follower never writes")
	fence.renew(time.Now())
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		assert.NoError(t, do(m), "the leader writes (%s)", m)
	}
	time.Sleep(250 * time.Millisecond) // paused past the renew deadline
	assert.ErrorContains(t, do(http.MethodPatch), "last renewed")
	assert.NoError(t, do(http.MethodGet))
	assert.Equal(t, int32(6), served.Load(), "no refused write reached the server")
}

// The fence opens on each renewal and closes within the renew deadline once
// renewals fail, through the real elector.
func TestWriteFenceFollowsTheLease(t *testing.T) {
	kube := kubefake.NewClientset()
	var partitioned atomic.Bool
	kube.PrependReactor("*", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if partitioned.Load() {
			return true, nil, context.DeadlineExceeded
		}
		return false, nil, nil
	})
	f := leaderFlags()
	fence := newWriteFence(f.renewDeadline)
	leading := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- runAsLeader(context.Background(), f, kube, "me", fence, func(stop, lead context.Context) error {
			close(leading)
			<-lead.Done()
			return nil
		})
	}()
	_, err := fence.open(time.Now())
	require.Error(t, err, "closed before the Lease is held")
	select {
	case <-leading:
	case <-time.After(10 * time.Second):
		t.Fatal("never became the leader")
	}
	time.Sleep(3 * f.retryPeriod)
	_, err = fence.open(time.Now())
	assert.NoError(t, err, "open while renewals succeed, past one retry period")
	partitioned.Store(true)
	start := time.Now()
	for _, err := fence.open(time.Now()); err == nil; _, err = fence.open(time.Now()) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Less(t, time.Since(start), f.renewDeadline+f.retryPeriod, "closed within the renew deadline of the last renewal")
	<-done
}

// A write that passed the fence but was still waiting inside the HTTP
// transport when the fence closed (the process was paused there) is
// abandoned, not sent late: the fault suite saw 18 deletes sent that way
// after another replica had taken the Lease.
func TestWriteStillQueuedWhenTheFenceClosesIsNotSent(t *testing.T) {
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Add(1) }))
	defer srv.Close()
	fence := newWriteFence(200 * time.Millisecond)
	fence.renew(time.Now())
	// The transport holds the request as a frozen process would, past the
	// fence's closing, then sends it.
	queued := roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		time.Sleep(300 * time.Millisecond)
		return http.DefaultTransport.RoundTrip(req)
	})
	client := &http.Client{Transport: fence.wrap(queued)}
	req, err := http.NewRequest(http.MethodDelete, srv.URL, nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	assert.ErrorContains(t, err, "still unsent")
	assert.Zero(t, served.Load(), "the server never saw it")

	// A write sent in time is answered, and its body can be read after
	// RoundTrip returned.
	fence.renew(time.Now())
	req, err = http.NewRequest(http.MethodPost, srv.URL, nil)
	require.NoError(t, err)
	resp, err = (&http.Client{Transport: fence.wrap(http.DefaultTransport)}).Do(req)
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	assert.NoError(t, err)
	assert.NoError(t, resp.Body.Close())
	assert.Equal(t, int32(1), served.Load())
}

// Issue 29, item 5: scheduler calls have a fence of their own. Through the
// API server's proxy (out of cluster) or direct, a retire that takes longer
// than the renew deadline is not cut short while the Lease is renewed, and
// no call at all leaves a replica whose Lease renewal is too old.
func TestSchedulerCallsHaveTheirOwnFence(t *testing.T) {
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		time.Sleep(300 * time.Millisecond) // Dask moving the workers' data
		_, _ = w.Write([]byte(`{"tcp://10.0.0.1:4000": {"name": "w"}}`))
	}))
	defer srv.Close()
	for _, access := range []string{"proxy", "url"} {
		t.Run(access, func(t *testing.T) {
			served.Store(0)
			f := &flags{schedulerAccess: "proxy"}
			if access == "url" {
				f.schedulerURL = srv.URL
			}
			fence := newWriteFence(100 * time.Millisecond)
			r, err := schedulerResolver(f, &rest.Config{Host: srv.URL}, false, fence)
			require.NoError(t, err)
			api := daskapi.New(r)
			target := daskapi.Target{Namespace: "ns", Cluster: "c", Service: "c-scheduler", Port: 8787}

			_, err = api.RetireWorkers(context.Background(), target, []string{"tcp://10.0.0.1:4000"})
			assert.ErrorContains(t, err, "scheduler call refused: not the leader")
			assert.Zero(t, served.Load(), "a replica without the Lease asks no scheduler")

			// A healthy leader: renewed before, and during, the retire.
			fence.renew(time.Now())
			stop := make(chan struct{})
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
						fence.renew(time.Now())
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := api.RetireWorkers(ctx, target, []string{"tcp://10.0.0.1:4000"})
			close(stop)
			require.NoError(t, err, "a retire longer than the renew deadline is not cut short")
			assert.Len(t, got, 1)
		})
	}
}
