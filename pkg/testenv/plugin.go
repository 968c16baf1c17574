package testenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var pluginBuild struct {
	once sync.Once
	path string
	err  error
}

// PluginBinary builds cmd/kubectl-dask once per test binary and returns
// its path.
func PluginBinary(t testing.TB) string {
	t.Helper()
	pluginBuild.once.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			pluginBuild.err = err
			return
		}
		dir, err := os.MkdirTemp("", "kubectl-dask-")
		if err != nil {
			pluginBuild.err = err
			return
		}
		pluginBuild.path = filepath.Join(dir, "kubectl-dask")
		cmd := exec.Command("go", "build", "-o", pluginBuild.path, "./cmd/kubectl-dask")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			pluginBuild.err = errors.New(err.Error() + "\n" + string(out))
		}
	})
	if pluginBuild.err != nil {
		t.Fatalf("build kubectl-dask: %v", pluginBuild.err)
	}
	return pluginBuild.path
}

// PluginResult is what one run of kubectl-dask printed and its exit code.
type PluginResult struct {
	Stdout, Stderr string
	Code           int
}

// Plugin runs kubectl-dask against the control plane with the given
// arguments (the kubeconfig is passed on).
func (e *Env) Plugin(t testing.TB, args ...string) PluginResult {
	t.Helper()
	cmd := exec.Command(PluginBinary(t), append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := PluginResult{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run kubectl-dask: %v", err)
	}
	return res
}
