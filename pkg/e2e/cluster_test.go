package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Workers the operator creates register with the real scheduler under their
// Pod names, and a client on this machine computes on them.
func TestWorkersRegisterAndCompute(t *testing.T) {
	ns := newNamespace(t)
	createCluster(t, ns, "reg", 2)
	ip := schedulerIP(t, ns, "reg")
	pods := waitRegistered(t, ns, "reg", "reg-default", ip, 2, 2*time.Minute)
	require.Len(t, pods, 2)

	c := startClient(t, `
from dask.distributed import Client
c = Client("tcp://`+ip+`:8786", timeout=30)
print("result", c.submit(sum, range(1000)).result(), flush=True)
print("workers", ",".join(sorted(w["name"] for w in c.scheduler_info()["workers"].values())), flush=True)
`)
	assert.Equal(t, " 499500", c.WaitLine(t, "result", time.Minute))
	assert.Equal(t, " "+pods[0]+","+pods[1], c.WaitLine(t, "workers", 10*time.Second))
}
