package workergroup

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

	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Issue 28, item 3: a group whose workers start dask-worker gets them
// started through the step that runs on current Dask, and one event that
// says so, not one per Pod or per sync; the annotation turns both off.
func TestLegacyWorkerCommandIsToldOnce(t *testing.T) {
	ctx := context.Background()
	c, g := testobjects.Cluster("c"), testobjects.Group("g", "c", 2)
	g.Spec.Worker.Spec.Containers[0].Args = []string{"dask-worker", "--name", "$(DASK_WORKER_NAME)"}
	f := newFixture(t, c, g)

	_, err := f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	creates := f.Actions("create", "pods")
	require.Len(t, creates, 2)
	for _, a := range creates {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		assert.Equal(t, []string{"sh", "-c"}, p.Spec.Containers[0].Args[:2])
		assert.Equal(t, []string{"dask-worker", "--name", "$(DASK_WORKER_NAME)"}, p.Spec.Containers[0].Args[3:])
	}
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonLegacyDaskCommand))

	// More workers later: no second event for the same group.
	g2 := g.DeepCopy()
	g2.Spec.Worker.Replicas = testobjects.Int32p(4)
	f.ctrl.expect.Forget("ns/g")
	f.AddToCache(g2)
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g")
	require.NoError(t, err)
	assert.Greater(t, len(f.Actions("create", "pods")), 2, "the second sync created workers too")
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonLegacyDaskCommand))

	// Kept as written: no step, no event.
	c3, g3 := testobjects.Cluster("c3"), testobjects.Group("g3", "c3", 1)
	g3.Spec.Worker.Spec.Containers[0].Args = []string{"dask-worker"}
	g3.Annotations = map[string]string{resources.AnnotationLegacyCommands: resources.LegacyCommandsKeep}
	f = newFixture(t, c3, g3)
	_, err = f.ctrl.syncWorkerGroup(ctx, "ns/g3")
	require.NoError(t, err)
	creates = f.Actions("create", "pods")
	require.Len(t, creates, 1)
	assert.Equal(t, []string{"dask-worker"}, creates[0].(k8stesting.CreateAction).GetObject().(*corev1.Pod).Spec.Containers[0].Args)
	assert.Zero(t, controllertest.CountEvents(f.Fixture, daskv1.ReasonLegacyDaskCommand))
}
