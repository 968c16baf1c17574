package main

import (
	"os/exec"
	"strings"
	"testing"
)

// Development and test tooling (the local control plane, the node agent)
// never ends up in the operator binary.
func TestOperatorDoesNotImportTestTooling(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps gave %d packages, too few to be the operator's", len(deps))
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/dask-operator/dask-operator/hack") ||
			strings.HasPrefix(d, "github.com/dask-operator/dask-operator/pkg/testenv") ||
			strings.HasPrefix(d, "github.com/dask-operator/dask-operator/pkg/e2e") ||
			strings.HasPrefix(d, "github.com/dask-operator/dask-operator/pkg/integration") {
			t.Errorf("the operator imports %s", d)
		}
	}
}
