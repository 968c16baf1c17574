package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DaskImage is a Dask release the process node runs: Pods whose image is
// Image run in Root, a file system root with that Dask (hack/dask-images.sh
// builds them; "/" is this machine's own, Debian 12's).
type DaskImage struct {
	// Generation names the root: bookworm, trixie or current.
	Generation string
	// Version is Dask's, such as 2026.7.1.
	Version string
	// Root is the file system root.
	Root string
}

// Image is the Dask image of the version: ghcr.io/dask/dask:<Version>.
func (d DaskImage) Image() string { return DaskRepository + ":" + d.Version }

// DaskRepository is Dask's image repository.
const DaskRepository = "ghcr.io/dask/dask"

// DaskImages lists the Dask releases the process node runs, oldest first:
// what hack/dask-images.sh printed ($DASK_OPERATOR_IMAGES, which make test
// sets), else what it prints now (it builds the roots the first time).
func DaskImages() ([]DaskImage, error) {
	list := os.Getenv("DASK_OPERATOR_IMAGES")
	if list == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(filepath.Join(root, "hack", "dask-images.sh"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("testenv: hack/dask-images.sh: %w", err)
		}
		list = strings.TrimSpace(string(out))
	}
	f, err := os.Open(list)
	if err != nil {
		return nil, fmt.Errorf("testenv: the list of Dask roots: %w", err)
	}
	defer f.Close()
	var out []DaskImage
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) != 3 {
			return nil, fmt.Errorf("testenv: %s: line %q: want GENERATION VERSION ROOT", list, s.Text())
		}
		out = append(out, DaskImage{Generation: fields[0], Version: fields[1], Root: fields[2]})
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("testenv: %s lists no Dask root", list)
	}
	return out, nil
}

// imageFlags are the node agent's --image flags: every version of Dask's
// images (ghcr.io/dask/dask and dask-notebook) in its root, and the names
// that mean the newest (the latest tag, and dask-kubernetes:dev, the Python
// operator's test image, which its CI builds from the latest).
func imageFlags(images []DaskImage) []string {
	var out []string
	newest := images[len(images)-1]
	for _, repo := range []string{DaskRepository, DaskRepository + "-notebook"} {
		for _, d := range images {
			out = append(out, "--image="+repo+":"+d.Version+"="+d.Root)
		}
		out = append(out, "--image="+repo+":latest="+newest.Root)
	}
	return append(out, "--image=dask-kubernetes:dev="+newest.Root)
}

// Latest is the release that the latest tag runs.
func (e *Env) Latest() DaskImage { return e.Images[len(e.Images)-1] }

// Current is the 2026 release (from ../shared/dask-current); the test skips,
// saying so, when it is not on the node (it fails under CI).
func (e *Env) Current(t testing.TB) DaskImage {
	t.Helper()
	for _, d := range e.Images {
		if d.Generation == "current" {
			return d
		}
	}
	msg := "no current Dask on the process node: ../shared/dask-current (or $DASK_CURRENT) is absent, so Dask 2026 is NOT tested"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return DaskImage{}
}

// EnterArgs is the command line that runs argv in the image's root, with
// the given host folders at the same paths and the first of them as the
// working directory (a Python client beside the cluster's Dask, as users
// run one). In this machine's root it is argv.
func (e *Env) EnterArgs(d DaskImage, share []string, argv ...string) []string {
	if d.Root == "/" {
		return argv
	}
	out := []string{e.agentBin, "enter", "--root=" + d.Root}
	if len(share) > 0 {
		out = append(out, "--workdir="+share[0])
	}
	for _, s := range share {
		out = append(out, "--share="+s)
	}
	return append(append(out, "--"), argv...)
}
