package manager

import (
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	"github.com/dask-operator/dask-operator/pkg/controller/controllertest"
)

// fixture is the manager, with every kind's controller, on controllertest's
// fake clients, caches and scheduler: for what crosses kinds.
type fixture struct {
	*controllertest.Fixture
	ctrl *Manager
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	f := controllertest.NewFixture(t, objs...)
	m, err := newManager(f.Base, record.NewBroadcaster(), f.Kube)
	require.NoError(t, err)
	return &fixture{Fixture: f, ctrl: m}
}
