package controller

import (
	"testing"

	"github.com/dask-operator/dask-operator/pkg/controller/testobjects"

	"github.com/stretchr/testify/assert"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

func TestLatestWritesWinOverAStaleCache(t *testing.T) {
	l := NewLatestWrites[*daskv1.DaskJob]()
	cached := testobjects.DaskJob("j", "")
	cached.ResourceVersion = "10"
	written := cached.DeepCopy()
	written.ResourceVersion = "11"
	written.Status.JobStatus = daskv1.JobFailed
	l.Remember("ns/j", written)

	assert.Equal(t, daskv1.JobFailed, l.Newest("ns/j", cached).Status.JobStatus, "the cache has not seen the write yet")
	caughtUp := written.DeepCopy()
	caughtUp.ResourceVersion = "12"
	assert.Same(t, caughtUp, l.Newest("ns/j", caughtUp), "once the cache is newer it wins")
	assert.Same(t, cached, l.Newest("ns/j", cached), "and the remembered write is forgotten")

	l.Remember("ns/j", written)
	recreated := testobjects.DaskJob("j", "")
	recreated.UID, recreated.ResourceVersion = "another", "5"
	assert.Same(t, recreated, l.Newest("ns/j", recreated), "a new object of the same name is not confused with the old")
}
