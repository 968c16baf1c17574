package controller

import (
	"context"
	"testing"

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
	j := daskJob("j", "")
	j.ResourceVersion = "1"
	sent := 0
	w := statusWrite[*daskv1.DaskJob]{kind: "DaskJob", key: "ns/j", obj: j, writes: f.ctrl.jobWrites,
		update: func(context.Context) (*daskv1.DaskJob, error) {
			sent++
			written := j.DeepCopy()
			written.ResourceVersion = "2"
			return written, nil
		}}

	w.same = true
	wait, err := writeStatus(ctx, f.ctrl.Base, w)
	require.NoError(t, err)
	assert.Zero(t, wait)
	assert.Zero(t, sent, "unchanged: nothing sent")

	w.same = false
	_, err = writeStatus(ctx, f.ctrl.Base, w)
	require.NoError(t, err)
	assert.Equal(t, 1, sent)
	assert.Equal(t, "2", f.ctrl.jobWrites.newest("ns/j", j).ResourceVersion, "remembered until the cache has it")

	w.paceKey, w.factor, w.progressOnly = "DaskJob/ns/j", 1, true
	wait, err = writeStatus(ctx, f.ctrl.Base, w)
	require.NoError(t, err)
	assert.Equal(t, statusWriteInterval, wait, "progress waits its turn")
	assert.Equal(t, 1, sent)

	w.paceKey = ""
	w.update = func(context.Context) (*daskv1.DaskJob, error) {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "kubernetes.dask.org", Resource: "daskjobs"}, "j")
	}
	_, err = writeStatus(ctx, f.ctrl.Base, w)
	assert.NoError(t, err, "gone meanwhile")
}
