package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"

	"github.com/dask-operator/dask-operator/pkg/testenv"
)

// `make dev` from a clean state: it prints a client command that computes on
// the example cluster, its operator retires workers through the scheduler,
// and Ctrl-C (SIGINT to its process group, as a
// terminal sends it) leaves no process, namespace or link behind.
func TestMakeDevComputesAndCleansUp(t *testing.T) {
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "dev")
	build := exec.Command("go", "build", "-o", bin, "./hack/dev")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	logPath := filepath.Join(t.TempDir(), "dev.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer logFile.Close()
	dev := exec.Command(bin)
	dev.Dir = root
	dev.Env = withoutVar(os.Environ(), "KUBECONFIG")
	dev.Stdout, dev.Stderr = logFile, logFile
	dev.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, dev.Start())
	exited := make(chan error, 1)
	go func() { exited <- dev.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-dev.Process.Pid, syscall.SIGKILL)
	})

	// The client runs with the example's Dask (the latest image's): the
	// node agent's enter runs it in that Dask's root.
	clientLine := regexp.MustCompile(`(?m)^\s+(\S+/nodeagent enter --root=\S+ -- /usr/bin/python3 -c 'from dask.distributed import Client; .*')$`)
	if env.Latest().Root == "/" {
		clientLine = regexp.MustCompile(`(?m)^\s+(/usr/bin/python3 -c 'from dask.distributed import Client; .*')$`)
	}
	bridgeLine := regexp.MustCompile(`on bridge (dko[0-9]+)`)
	dirLine := regexp.MustCompile(`--kubeconfig (\S+)/kubeconfig`)
	var command, bridge, dir string
	eventually(t, 4*time.Minute, func() (bool, string) {
		data, _ := os.ReadFile(logPath)
		if m := clientLine.FindSubmatch(data); m != nil {
			command = string(m[1])
		}
		if m := bridgeLine.FindSubmatch(data); m != nil {
			bridge = string(m[1])
		}
		if m := dirLine.FindSubmatch(data); m != nil {
			dir = string(m[1])
		}
		select {
		case err := <-exited:
			t.Fatalf("make dev exited: %v\n%s", err, data)
		default:
		}
		return command != "" && bridge != "" && dir != "", "make dev has not printed a client command yet:\n" + tail(string(data), 3000)
	})

	result, err := exec.Command("sh", "-c", command).CombinedOutput()
	require.NoError(t, err, "%s\n%s", command, result)
	assert.Equal(t, "499500", strings.TrimSpace(string(result)), command)
	data, _ := os.ReadFile(logPath)
	assert.Contains(t, string(data), "The example cluster runs "+testenv.DaskRepository+":latest, Dask "+env.Latest().Version+".")

	// The operator binary, out of cluster with its default flags, reaches
	// the scheduler to retire a worker (through the API server's proxy).
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(dir, "kubeconfig"))
	require.NoError(t, err)
	_, err = versioned.NewForConfigOrDie(cfg).KubernetesV1().DaskClusters("default").Patch(context.Background(), "example",
		types.MergePatchType, []byte(`{"spec":{"worker":{"replicas":1}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	kc := kubernetes.NewForConfigOrDie(cfg)
	eventually(t, time.Minute, func() (bool, string) {
		evs, err := kc.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=example-default"})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if strings.HasPrefix(e.Message, "Retired and deleted 1 workers") {
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return false, fmt.Sprintf("no retirement through the scheduler yet; events: %v", seen)
	})

	require.NoError(t, syscall.Kill(-dev.Process.Pid, syscall.SIGINT))
	select {
	case err := <-exited:
		if !assert.NoError(t, err, "make dev ends cleanly on Ctrl-C") {
			data, _ := os.ReadFile(logPath)
			t.Logf("make dev's output:\n%s", tail(string(data), 4000))
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("make dev did not stop within 2 minutes of Ctrl-C")
	}
	for _, ns := range netnsList(t) {
		assert.False(t, strings.HasPrefix(ns, bridge+"-"), "namespace %s left behind", ns)
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	require.NoError(t, err)
	assert.NotContains(t, string(links), " "+bridge, "links of %s left behind", bridge)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, _ := os.ReadFile(p)
		cwd, _ := os.Readlink(filepath.Join(filepath.Dir(p), "cwd"))
		assert.False(t, strings.Contains(string(cmdline), dir) || strings.HasPrefix(cwd, dir),
			"process %s of make dev left behind: %s", filepath.Dir(p), strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
}

func withoutVar(environ []string, name string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
