package job

import (
	"context"
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

// One writer for every kind's status: nothing is sent for an unchanged
// status, progress waits its turn, what was written is remembered until the
// cache has it, and an object gone meanwhile is no error.
func TestWriteStatus(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	j := testobjects.DaskJob("j", "")
	j.ResourceVersion = "1"
	sent := 0
	w := controller.StatusWrite[*daskv1.DaskJob]{Kind: "DaskJob", Key: "ns/j", Obj: j, Writes: f.ctrl.jobWrites,
		Update: func(context.Context) (*daskv1.DaskJob, error) {
			sent++
			written := j.DeepCopy()
			written.ResourceVersion = "2"
			return written, nil
		}}

	w.Same = true
	wait, err := controller.WriteStatus(ctx, f.ctrl.Base, w)
	require.NoError(t, err)
	assert.Zero(t, wait)
	assert.Zero(t, sent, "unchanged: nothing sent")

	w.Same = false
	_, err = controller.WriteStatus(ctx, f.ctrl.Base, w)
	require.NoError(t, err)
	assert.Equal(t, 1, sent)
	assert.Equal(t, "2", f.ctrl.jobWrites.Newest("ns/j", j).ResourceVersion, "remembered until the cache has it")

	w.PaceKey, w.Factor, w.ProgressOnly = "DaskJob/ns/j", 1, true
	wait, err = controller.WriteStatus(ctx, f.ctrl.Base, w)
	require.NoError(t, err)
	assert.Equal(t, controller.StatusWriteInterval, wait, "progress waits its turn")
	assert.Equal(t, 1, sent)

	w.PaceKey = ""
	w.Update = func(context.Context) (*daskv1.DaskJob, error) {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "kubernetes.dask.org", Resource: "daskjobs"}, "j")
	}
	_, err = controller.WriteStatus(ctx, f.ctrl.Base, w)
	assert.NoError(t, err, "gone meanwhile")
}
