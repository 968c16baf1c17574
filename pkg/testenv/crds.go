package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs server-side applies every CRD file in dir (they are too large
// for client-side apply) and waits until each is established.
func InstallCRDs(ctx context.Context, cfg *rest.Config, dir string) error {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRDs in %s", dir)
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		// Files may start with a comment and a document separator.
		data = []byte(crdDocument(string(data)))
		json, err := yaml.YAMLToJSON(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(json); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		force := true
		if _, err := client.Resource(crdResource).Patch(ctx, obj.GetName(), types.ApplyPatchType, json,
			metav1.PatchOptions{FieldManager: "dask-operator-testenv", Force: &force}); err != nil {
			return fmt.Errorf("apply %s: %w", obj.GetName(), err)
		}
		names = append(names, obj.GetName())
	}
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			crd, err := client.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", name, err)
		}
	}
	return nil
}

// waitGarbageCollectorKnowsDask waits until kube-controller-manager's garbage
// collector has discovered the Dask kinds (it re-reads discovery about every
// 30 s): until then, deleting a DaskCluster would not cascade. It creates one
// object of each kind owned by an owner that does not exist, and waits until
// the collector removes them all.
func waitGarbageCollectorKnowsDask(ctx context.Context, cfg *rest.Config) error {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	const ns = "default"
	gv := "kubernetes.dask.org/v1"
	podSpec := map[string]any{"containers": []any{map[string]any{"name": "c", "image": "none"}}}
	clusterSpec := map[string]any{
		"worker":    map[string]any{"spec": podSpec},
		"scheduler": map[string]any{"spec": podSpec, "service": map[string]any{}},
	}
	probes := []struct {
		resource, kind, ownerKind string
		spec                      map[string]any
	}{
		{"daskclusters", "DaskCluster", "DaskJob", clusterSpec},
		{"daskworkergroups", "DaskWorkerGroup", "DaskCluster", map[string]any{"cluster": "gc-probe", "worker": map[string]any{"spec": podSpec}}},
		{"daskjobs", "DaskJob", "DaskWorkerGroup", map[string]any{"job": map[string]any{"spec": podSpec}, "cluster": map[string]any{"spec": clusterSpec}}},
		{"daskautoscalers", "DaskAutoscaler", "DaskCluster", map[string]any{"cluster": "gc-probe", "minimum": int64(0), "maximum": int64(1)}},
	}
	for _, p := range probes {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": gv,
			"kind":       p.kind,
			"metadata": map[string]any{
				"name": "gc-probe",
				"ownerReferences": []any{map[string]any{
					"apiVersion": gv, "kind": p.ownerKind, "name": "gc-probe-owner",
					"uid": "00000000-0000-0000-0000-000000000000",
				}},
			},
			"spec": p.spec,
		}}
		gvr := schema.GroupVersionResource{Group: "kubernetes.dask.org", Version: "v1", Resource: p.resource}
		if _, err := client.Resource(gvr).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create garbage collector probe %s: %w", p.kind, err)
		}
	}
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, p := range probes {
			gvr := schema.GroupVersionResource{Group: "kubernetes.dask.org", Version: "v1", Resource: p.resource}
			_, err := client.Resource(gvr).Namespace(ns).Get(ctx, "gc-probe", metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	})
}

// crdDocument returns the one YAML document of a CRD file, without the
// comments and document separator that may come before it.
func crdDocument(data string) string {
	if i := strings.Index(data, "\n---\n"); i >= 0 {
		return data[i+5:]
	}
	return strings.TrimPrefix(data, "---\n")
}
