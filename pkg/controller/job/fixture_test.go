package job

import (
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
)

// fixture is the controller under test on controllertest's fake clients,
// caches and scheduler.
type fixture struct {
	*controllertest.Fixture
	ctrl *Controller
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	f := controllertest.NewFixture(t, objs...)
	c, err := New(f.Base)
	require.NoError(t, err)
	return &fixture{Fixture: f, ctrl: c}
}
