package autoscaler

import (
	"context"
	"errors"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// The autoscaler scales only the group it decided from: a user's scale that
// lands first (KubeCluster.scale deletes the autoscaler, then patches the
// group) is never overwritten by a decision made from an older state.
func TestAutoscalerScalesOnlyTheGroupItSaw(t *testing.T) {
	g := testobjects.Group("c-default", "c", 0)
	g.ResourceVersion = "7"
	as := &daskv1.DaskAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", UID: "uid-as", Generation: 1},
		Spec:       daskv1.DaskAutoscalerSpec{Cluster: "c", Minimum: 2, Maximum: 4},
	}
	f := newFixture(t, testobjects.Cluster("c"), g, as)
	_, err := f.ctrl.syncAutoscaler(context.Background(), "ns/c")
	require.NoError(t, err)
	patches := f.Actions("patch", "daskworkergroups")
	require.Len(t, patches, 1, "the minimum is enforced")
	assert.JSONEq(t, `{"metadata":{"resourceVersion":"7"},"spec":{"worker":{"replicas":2}}}`,
		string(patches[0].(k8stesting.PatchAction).GetPatch()))

	// The group changed since: the API server refuses, and the sync says so.
	f.Dask.PrependReactor("patch", "daskworkergroups", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(daskv1.Resource("daskworkergroups"), g.Name, errors.New("the object has been modified"))
	})
	_, err = f.ctrl.syncAutoscaler(context.Background(), "ns/c")
	assert.True(t, apierrors.IsConflict(err), "got %v", err)
}
