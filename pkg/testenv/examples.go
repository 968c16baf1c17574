package testenv

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// UpstreamExamplesDir is where the Python operator's own example and test
// resources are: $DASK_UPSTREAM_EXAMPLES, else ../shared/upstream-examples
// beside the repository. Compatibility tests read them. When they are
// missing the test says so plainly and skips, except under CI (CI=true),
// where they must be present and their absence fails the test.
func UpstreamExamplesDir(t testing.TB) string {
	t.Helper()
	return sharedDir(t, "DASK_UPSTREAM_EXAMPLES", "upstream-examples", "",
		"the Python operator's example resources are not at %s (set DASK_UPSTREAM_EXAMPLES): compatibility with them is NOT checked")
}

// sharedDir is $env, else ../shared/<sub> beside the repository, when it
// holds marker (or exists, with marker ""); else the test skips with missing
// (which gets the path), or fails under CI (CI=true).
func sharedDir(t testing.TB, env, sub, marker, missing string) string {
	t.Helper()
	dir := os.Getenv(env)
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "..", "shared", sub)
	}
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		msg := fmt.Sprintf(missing, dir)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// Example is one resource from an example file.
type Example struct {
	File   string
	Object *unstructured.Unstructured
	// YAML is the document the object was read from.
	YAML []byte
}

// UpstreamExamples reads every resource of the Python operator's examples.
func UpstreamExamples(t testing.TB) []Example {
	t.Helper()
	dir := UpstreamExamplesDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []Example
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parseExamples(t, filepath.Base(f), data)...)
	}
	if len(out) == 0 {
		t.Fatalf("no resources in %s", dir)
	}
	return out
}

// UpstreamExample returns the single resource of one example file.
func UpstreamExample(t testing.TB, file string) Example {
	t.Helper()
	for _, e := range UpstreamExamples(t) {
		if e.File == file {
			return e
		}
	}
	t.Fatalf("no example %s", file)
	return Example{}
}

//go:embed testdata/*.yaml
var fixtures embed.FS

// Fixture returns the single resource of one of the project's own test
// files in pkg/testenv/testdata: a cluster.yaml ("simple", two workers),
// workergroup.yaml ("simple-additional"), autoscaler.yaml, job.yaml
// ("simple-job") and failing-job.yaml ("failed-job", restartPolicy Never).
// Behaviour tests use these; only compatibility tests read the Python
// operator's files.
func Fixture(t testing.TB, file string) Example {
	t.Helper()
	data, err := fixtures.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatalf("fixture %s: %v", file, err)
	}
	docs := parseExamples(t, file, data)
	if len(docs) != 1 {
		t.Fatalf("fixture %s holds %d resources, want 1", file, len(docs))
	}
	return docs[0]
}

// FixturePath is the path of a fixture file, for tools such as kubectl.
func FixturePath(t testing.TB, file string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "pkg", "testenv", "testdata", file)
}

func parseExamples(t testing.TB, file string, data []byte) []Example {
	t.Helper()
	var out []Example
	for _, doc := range strings.Split(string(data), "\n---") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, Example{File: file, Object: obj, YAML: []byte(doc)})
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// IncumbentDir is where the Python operator's own client and operator are,
// unmodified and runnable (their README says how): $DASK_INCUMBENT, else
// ../shared/incumbent beside the repository. Tests that drive the real
// KubeCluster client use it from there; without it they say so and skip,
// except under CI, where its absence fails the test.
func IncumbentDir(t testing.TB) string {
	t.Helper()
	return sharedDir(t, "DASK_INCUMBENT", "incumbent", "env.sh",
		"the Python operator's client is not at %s (set DASK_INCUMBENT): the real KubeCluster client is NOT tested")
}
