package cluster

import (
	"cmp"
	"context"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// A changed scheduler spec is recorded, with the fields that changed, and
// the running scheduler kept (OnDelete, the default); with Recreate the
// scheduler Pod is deleted to be made anew.
func TestSchedulerTemplateChange(t *testing.T) {
	for _, strategy := range []daskv1.SchedulerUpdateStrategy{"", daskv1.SchedulerRecreate} {
		t.Run(string(cmp.Or(strategy, "default")), func(t *testing.T) {
			c := testobjects.Cluster("c")
			sched := resources.SchedulerPod(c)
			sched.UID = "uid-sched"
			sched.Status.Phase = corev1.PodRunning
			c.Spec.Scheduler.Spec.Containers[0].Image = "dask:new"
			c.Spec.Scheduler.UpdateStrategy = strategy
			c.Generation = 2
			f := newFixture(t, c, sched)
			f.WriteStatusAtOnce()
			_, err := f.ctrl.syncCluster(context.Background(), "ns/c")
			require.NoError(t, err)
			cond := apimeta.FindStatusCondition(controllertest.LastClusterStatus(t, f.Fixture).Conditions, daskv1.ConditionSchedulerOutdated)
			if strategy == daskv1.SchedulerRecreate {
				assert.Equal(t, []string{sched.Name}, controllertest.DeletedNames(f.Fixture, "pods"))
				assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonSchedulerRecreated))
				assert.Nil(t, cond)
				return
			}
			assert.Empty(t, controllertest.DeletedNames(f.Fixture, "pods"), "the running scheduler is kept")
			require.NotNil(t, cond)
			assert.Equal(t, metav1.ConditionTrue, cond.Status)
			assert.Contains(t, cond.Message, "spec.containers[0].image")
			assert.Equal(t, 1, controllertest.CountEvents(f.Fixture, daskv1.ReasonSchedulerOutdated))
		})
	}
}
