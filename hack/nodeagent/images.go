package main

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// images maps image references to the file system roots that stand in for
// them on this node (--image NAME=ROOT): a pod runs its command in the root
// of its container's image, so that one cluster can run Pods of several
// Dask versions. "/" is the host. An image that is not in the map cannot be
// "pulled": the pod waits with ErrImagePull, as on a kubelet. The name "*"
// matches every image.
type images map[string]string

func parseImages(values []string) (images, error) {
	out := images{}
	for _, kv := range values {
		name, root, ok := strings.Cut(kv, "=")
		if !ok || name == "" || !filepath.IsAbs(root) {
			return nil, fmt.Errorf("--image %q: want NAME=/ROOT", kv)
		}
		out[normalizeImage(name)] = filepath.Clean(root)
	}
	return out, nil
}

// normalizeImage spells a reference as a registry would resolve it: no tag
// means latest, Docker Hub's default names are implied.
func normalizeImage(ref string) string {
	if ref == "*" {
		return ref
	}
	name, digest, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, '/'); !strings.Contains(name[i+1:], ":") {
		name += ":latest"
	}
	name = strings.TrimPrefix(name, "docker.io/")
	name = strings.TrimPrefix(name, "library/")
	if digest != "" {
		name += "@" + digest
	}
	return name
}

// root returns the root of an image, or an error worded as a kubelet's
// ErrImagePull message.
func (m images) root(image string) (string, error) {
	if r, ok := m[normalizeImage(image)]; ok {
		return r, nil
	}
	if r, ok := m["*"]; ok {
		return r, nil
	}
	known := make([]string, 0, len(m))
	for name := range m {
		known = append(known, name)
	}
	sort.Strings(known)
	return "", fmt.Errorf("failed to pull image %q: not found: this node has the images %s", image, strings.Join(known, ", "))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
