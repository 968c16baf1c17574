package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestImagesResolveToTheirRoots(t *testing.T) {
	m, err := parseImages([]string{"ghcr.io/dask/dask:2022.12.1=/", "ghcr.io/dask/dask:latest=/roots/current", "python=/roots/py/"})
	require.NoError(t, err)
	for image, want := range map[string]string{
		"ghcr.io/dask/dask:2022.12.1": "/",
		"ghcr.io/dask/dask":           "/roots/current", // no tag is latest
		"ghcr.io/dask/dask:latest":    "/roots/current",
		"docker.io/library/python":    "/roots/py",
		"python:latest":               "/roots/py",
	} {
		got, err := m.root(image)
		require.NoError(t, err, image)
		assert.Equal(t, want, got, image)
	}
	_, err = m.root("ghcr.io/dask/dask:2099.1.0")
	require.Error(t, err, "an image the node lacks is not run on another root")
	assert.Contains(t, err.Error(), `failed to pull image "ghcr.io/dask/dask:2099.1.0"`)
	assert.Contains(t, err.Error(), "ghcr.io/dask/dask:latest", "the message names the images the node has")
	_, err = m.root("localhost:5000/dask") // a registry port is not a tag
	require.Error(t, err)

	all, err := parseImages([]string{"*=/"})
	require.NoError(t, err)
	got, err := all.root("anything:1")
	require.NoError(t, err)
	assert.Equal(t, "/", got)

	_, err = parseImages([]string{"dask=relative/root"})
	assert.Error(t, err)
}

// A mount point in an image root follows the root's own links: Debian's
// /var/run is a link to /run, which must not lead to the host's /run.
func TestMountPointsResolveInsideTheRoot(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var"), 0o755))
	require.NoError(t, os.Symlink("/run", filepath.Join(root, "var", "run")))
	require.NoError(t, os.Symlink("../run/x", filepath.Join(root, "var", "rel")))

	got, err := inRoot(root, "/var/run/secrets/kubernetes.io/serviceaccount")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "run/secrets/kubernetes.io/serviceaccount"), got)
	got, err = inRoot(root, "/var/rel/y")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "run/x/y"), got)
	got, err = inRoot(root, "/../../etc/hosts")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "etc/hosts"), got, "never above the root")

	require.NoError(t, os.Symlink("/loop", filepath.Join(root, "loop")))
	_, err = inRoot(root, "/loop/x")
	assert.Error(t, err)
}
