package cluster

import (
	"context"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	k8stesting "k8s.io/client-go/testing"
)

// The scheduler: the event comes with the Pod's creation, once.
func TestLegacySchedulerCommandIsToldOnce(t *testing.T) {
	ctx := context.Background()
	c := testobjects.Cluster("c")
	c.Spec.Scheduler.Spec.Containers[0].Args = []string{"dask-scheduler"}
	f := newFixture(t, c)
	_, _ = f.ctrl.syncCluster(ctx, "ns/c")
	var sched *corev1.Pod
	for _, a := range f.Actions("create", "pods") {
		sched = a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
	}
	require.NotNil(t, sched)
	assert.Equal(t, "dask-scheduler", sched.Spec.Containers[0].Args[3])
	_, _ = f.ctrl.syncCluster(ctx, "ns/c")
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonLegacyDaskCommand))
}
