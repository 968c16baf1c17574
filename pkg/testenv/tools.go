package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Binaries locates the control plane binaries.
type Binaries struct {
	Dir string
}

// Path returns the path of a binary.
func (b Binaries) Path(name string) string { return filepath.Join(b.Dir, name) }

// KueueDir is the folder of Kueue's CRDs (crds/) and webhook configuration
// (webhooks.yaml) that hack/tools.sh copies next to the binaries.
func (b Binaries) KueueDir() string { return filepath.Join(filepath.Dir(b.Dir), "kueue") }

// KwokStages is the folder of kwok's stage definitions that hack/tools.sh copies
// next to the binaries.
func (b Binaries) KwokStages() string { return filepath.Join(filepath.Dir(b.Dir), "kwok-stages") }

var (
	toolsOnce sync.Once
	toolsBin  Binaries
	toolsErr  error
)

// FindBinaries returns the cached control plane binaries, building them with
// hack/tools.sh when needed. DASK_OPERATOR_TOOLS_BIN points to a ready folder
// and skips the build check.
func FindBinaries() (Binaries, error) {
	toolsOnce.Do(func() {
		if dir := os.Getenv("DASK_OPERATOR_TOOLS_BIN"); dir != "" {
			toolsBin = Binaries{Dir: dir}
			return
		}
		root, err := RepoRoot()
		if err != nil {
			toolsErr = err
			return
		}
		var stdout bytes.Buffer
		cmd := exec.Command("bash", filepath.Join(root, "hack", "tools.sh"))
		cmd.Stdout = &stdout
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			toolsErr = fmt.Errorf("hack/tools.sh: %w", err)
			return
		}
		toolsBin = Binaries{Dir: strings.TrimSpace(stdout.String())}
	})
	return toolsBin, toolsErr
}

// RepoRoot is the folder holding the operator's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/dask-operator/dask-operator\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of github.com/dask-operator/dask-operator above the working directory")
		}
		dir = parent
	}
}
