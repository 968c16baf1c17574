package manager

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// clientVerbs maps a typed client's methods to the RBAC verbs they need.
var clientVerbs = map[string]string{
	"Create": "create", "Update": "update", "UpdateStatus": "update", "Patch": "patch", "Apply": "patch",
	"Delete": "delete", "DeleteCollection": "deletecollection", "Get": "get", "List": "list", "Watch": "watch",
}

// apiGroups maps a clientset's group accessor to its API group.
var apiGroups = map[string]string{"CoreV1": "", "KubernetesV1": "kubernetes.dask.org", "Core": "", "AppsV1": "apps", "Apps": "apps",
	"SchedulingV1": "scheduling.k8s.io"}

// dynamicResources maps the GroupVersionResource variables that the
// dynamic client is called with (pkg/kueue) to their group and resource.
var dynamicResources = map[string]string{
	"WorkloadResource":              "kueue.x-k8s.io/workloads",
	"ResourceFlavorResource":        "kueue.x-k8s.io/resourceflavors",
	"WorkloadPriorityClassResource": "kueue.x-k8s.io/workloadpriorityclasses",
}

// dynamicResource tells the resource of a dynamic client or informer call:
// X.Resource(R)[.Namespace(ns)] or f.ForResource(R).
func dynamicResource(t *testing.T, e ast.Expr) (string, bool) {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	if sel.Sel.Name == "Namespace" {
		return dynamicResource(t, sel.X)
	}
	if (sel.Sel.Name != "Resource" && sel.Sel.Name != "ForResource") || len(call.Args) != 1 {
		return "", false
	}
	id, ok := call.Args[0].(*ast.Ident)
	if !ok || !strings.HasSuffix(id.Name, "Resource") {
		return "", false
	}
	r, ok := dynamicResources[id.Name]
	if !ok {
		t.Errorf("dynamic client called with %s: add it to dynamicResources", id.Name)
	}
	return r, ok
}

// permissionsTheCodeNeeds reads the controllers' sources and returns every
// "group/resource:verb" their API calls need: direct client calls
// (c.Kube.CoreV1().Pods(ns).Patch -> /pods:patch), informers (list, watch),
// events, and update on <kind>/finalizers for each kind that owns what it
// creates with blockOwnerDeletion (OwnerReferencesPermissionEnforcement).
func permissionsTheCodeNeeds(t *testing.T) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	// Every controller package: the shared one and each kind's, and the
	// Kueue integration's.
	files, err := filepath.Glob("../*.go")
	require.NoError(t, err)
	kinds, err := filepath.Glob("../*/*.go")
	require.NoError(t, err)
	files = append(files, kinds...)
	kueueFiles, err := filepath.Glob("../../kueue/*.go")
	require.NoError(t, err)
	files = append(files, kueueFiles...)
	need := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		require.NoError(t, err)
		ast.Inspect(file, func(n ast.Node) bool {
			// A method called or passed as a value (a Get handed to a helper).
			method, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			// The dynamic client: X.Resource(R)[.Namespace(ns)].<Method>,
			// f.ForResource(R).Informer().
			if r, ok := dynamicResource(t, method.X); ok {
				if method.Sel.Name == "Informer" {
					need[r+":list"], need[r+":watch"] = true, true
				} else if verb, ok := clientVerbs[method.Sel.Name]; ok {
					if method.Sel.Name == "UpdateStatus" {
						r += "/status"
					}
					need[r+":"+verb] = true
				}
				return true
			}
			// X.<Resource>(...).<Method>(...) with X = ...<Group>() or, for
			// informers, ...V1().<Resource>().Informer().
			res, ok := method.X.(*ast.CallExpr)
			if !ok {
				return true
			}
			resSel, ok := res.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			group, ok := groupOf(resSel.X)
			if !ok {
				return true
			}
			resource := strings.ToLower(resSel.Sel.Name)
			if method.Sel.Name == "Informer" {
				need[group+"/"+resource+":list"] = true
				need[group+"/"+resource+":watch"] = true
				return true
			}
			verb, ok := clientVerbs[method.Sel.Name]
			if !ok {
				return true
			}
			if method.Sel.Name == "UpdateStatus" {
				resource += "/status"
			}
			need[group+"/"+resource+":"+verb] = true
			return true
		})
	}
	// The event recorder creates events and patches them when they repeat.
	need["/events:create"], need["/events:patch"] = true, true
	// Owners of what the operator creates with blockOwnerDeletion.
	for _, kind := range []string{"daskclusters", "daskworkergroups", "daskjobs"} {
		need["kubernetes.dask.org/"+kind+"/finalizers:update"] = true
	}
	return need
}

// groupOf tells the API group of a clientset or informer-factory accessor:
// c.kube.CoreV1(), c.dask.KubernetesV1(), s.kube.Core().V1(), v1 (the dask
// informer group's V1()).
func groupOf(e ast.Expr) (string, bool) {
	switch x := e.(type) {
	case *ast.CallExpr:
		sel, ok := x.Fun.(*ast.SelectorExpr)
		if !ok {
			return "", false
		}
		if g, ok := apiGroups[sel.Sel.Name]; ok {
			return g, true
		}
		if sel.Sel.Name == "V1" {
			return groupOf(sel.X)
		}
	case *ast.Ident:
		if x.Name == "v1" {
			return "kubernetes.dask.org", true
		}
	}
	return "", false
}

func granted(t *testing.T, path, kind, name string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string]bool{}
	found := false
	for _, doc := range strings.Split(string(data), "\n---") {
		var role rbacv1.ClusterRole // a Role has the same rules
		require.NoError(t, yaml.Unmarshal([]byte(doc), &role))
		if role.Kind != kind || role.Name != name {
			continue
		}
		found = true
		for _, r := range role.Rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						out[g+"/"+res+":"+v] = true
					}
				}
			}
		}
	}
	require.True(t, found, "no %s %s in %s", kind, name, path)
	return out
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Issue 15, item 4: the shipped ClusterRole and namespaced Role grant
// exactly what the controllers' code calls: a new call without its
// permission (patch on pods was missing), or a permission no code needs,
// fails here.
func TestShippedRBACMatchesTheCode(t *testing.T) {
	need := permissionsTheCodeNeeds(t)
	require.True(t, need["/pods:patch"], "the scan finds the Pod patches that pass labels on")
	require.True(t, need["kubernetes.dask.org/daskworkergroups:list"], "the scan finds the informers")
	require.True(t, need["kueue.x-k8s.io/workloads/status:update"], "the scan finds the dynamic client's calls")
	for _, m := range []struct{ path, kind string }{
		{"../../../manifests/deploy/20-clusterrole.yaml", "ClusterRole"},
		{"../../../manifests/namespaced/role.yaml", "Role"},
	} {
		t.Run(m.kind, func(t *testing.T) {
			have := granted(t, m.path, m.kind, "dask-operator")
			if m.kind == "Role" {
				// What a Role cannot grant (cluster-scoped reads) comes
				// from a ClusterRole beside it.
				for p := range granted(t, m.path, "ClusterRole", "dask-operator-cluster-reads") {
					have[p] = true
				}
			}
			var missing, extra []string
			for _, p := range sortedKeys(need) {
				if !have[p] {
					missing = append(missing, p)
				}
			}
			for _, p := range sortedKeys(have) {
				if !need[p] {
					extra = append(extra, p)
				}
			}
			assert.Empty(t, missing, "%s lacks permissions the code uses", m.path)
			assert.Empty(t, extra, "%s grants permissions no code uses", m.path)
		})
	}
}
