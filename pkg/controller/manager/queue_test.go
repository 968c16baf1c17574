package manager

import (
	"context"
	"testing"
	"time"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
)

// Issue 15, item 9: when the lease is lost, the workers' context, which
// every background scheduler call descends from, ends at once.
func TestAbortEndsEverySchedulerCall(t *testing.T) {
	f := newFixture(t)
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	lease, lose := context.WithCancel(context.Background())
	f.ctrl.Start(stop)
	done := make(chan error, 1)
	go func() { done <- f.ctrl.RunWorkersUntil(stop, lease, 0) }()
	require.Eventually(t, func() bool { return f.ctrl.base.SchedulerContext() != context.Background() && f.ctrl.HasSynced() }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // the workers start once the caches are synced
	sched := f.ctrl.base.SchedulerContext()
	assert.NoError(t, sched.Err())
	lose()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the workers did not stop when the lease was lost")
	}
	assert.Error(t, sched.Err(), "scheduler calls are cancelled")
}

// Issue 19: events go through a client of their own (Options.Events), whose
// rate limit is not the one Pod creations wait on.
func TestEventsGoThroughTheirOwnClient(t *testing.T) {
	f := newFixture(t)
	events := kubefake.NewSimpleClientset()
	f.ctrl.base.Opts.Events = events.CoreV1()
	f.ctrl.base.Recorder = f.ctrl.events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "dask-operator"})
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.ctrl.Start(stop)
	done := make(chan error, 1)
	go func() { done <- f.ctrl.RunWorkers(stop, 0) }()
	c := testobjects.Cluster("c")
	require.Eventually(t, func() bool {
		f.ctrl.base.Recorder.Event(c, corev1.EventTypeNormal, "Test", "through the events client")
		list, err := events.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
		return err == nil && len(list.Items) > 0
	}, 5*time.Second, 50*time.Millisecond)
	list, err := f.Kube.CoreV1().Events("ns").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list.Items, "nothing through the client that creates Pods")
	cancel()
	<-done
}
