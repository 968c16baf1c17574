package manager

import (
	"context"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// Suspending a cluster deletes its scheduler Pod, keeps the Service and
// group, and says Suspended; its autoscaler does nothing.
func TestSuspendedCluster(t *testing.T) {
	c := testobjects.Cluster("c")
	yes := true
	c.Spec.Suspend = &yes
	sched := resources.SchedulerPod(c)
	sched.UID = "uid-sched"
	def := resources.DefaultWorkerGroup(c)
	def.UID = "uid-def"
	as := &daskv1.DaskAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", UID: "uid-as", Generation: 1},
		Spec:       daskv1.DaskAutoscalerSpec{Cluster: "c", Minimum: 3, Maximum: 5},
	}
	f := newFixture(t, c, sched, def, as)
	_, err := f.ctrl.clusters.Sync(context.Background(), "ns/c")
	require.NoError(t, err)
	assert.Equal(t, []string{sched.Name}, controllertest.DeletedNames(f.Fixture, "pods"))
	assert.Empty(t, controllertest.DeletedNames(f.Fixture, "services"))
	assert.Empty(t, controllertest.DeletedNames(f.Fixture, "daskworkergroups"))
	st := controllertest.LastClusterStatus(t, f.Fixture)
	assert.Equal(t, daskv1.DaskClusterSuspended, st.Phase)
	assert.True(t, apimeta.IsStatusConditionTrue(st.Conditions, daskv1.ConditionSuspended))
	assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonSuspended))

	_, err = f.ctrl.autoscalers.Sync(context.Background(), "ns/c")
	require.NoError(t, err)
	assert.Empty(t, f.Actions("patch", "daskworkergroups"), "below its minimum, the group is still not scaled")
	cond := apimeta.FindStatusCondition(controllertest.LastStatusWrite[*daskv1.DaskAutoscaler](t, f.Fixture, "daskautoscalers").Status.Conditions, daskv1.ConditionScalingActive)
	require.NotNil(t, cond)
	assert.Equal(t, "ClusterSuspended", cond.Reason)
}
