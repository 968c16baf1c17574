package resources

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
)

func legacyCluster(annotations map[string]string) *daskv1.DaskCluster {
	return &daskv1.DaskCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns", Annotations: annotations},
		Spec: daskv1.DaskClusterSpec{
			Scheduler: daskv1.SchedulerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "scheduler", Image: "ghcr.io/dask/dask:latest", Args: []string{"dask-scheduler", "--host", "0.0.0.0"}},
				{Name: "sidecar", Image: "busybox", Command: []string{"sleep", "inf"}},
			}}},
			Worker: daskv1.WorkerSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "worker", Image: "ghcr.io/dask/dask:latest", Command: []string{"/opt/conda/bin/dask-worker"}, Args: []string{"--name", "$(DASK_WORKER_NAME)"}},
			}}},
		},
	}
}

// The removed commands start through the step, with the user's words after
// it unchanged; the entrypoint of an args-only container is kept; other
// containers and the template hash are untouched.
func TestLegacyCommandsAreStartedThroughTheStep(t *testing.T) {
	c := legacyCluster(nil)
	sched := SchedulerPod(c)
	assert.Nil(t, sched.Spec.Containers[0].Command, "the image's entrypoint still runs the args")
	assert.Equal(t, []string{"sh", "-c", legacyStep, "dask-scheduler", "--host", "0.0.0.0"}, sched.Spec.Containers[0].Args)
	assert.Equal(t, []string{"sleep", "inf"}, sched.Spec.Containers[1].Command)
	assert.Equal(t, SchedulerTemplateHash(c), sched.Labels[LabelTemplateHash])
	assert.Equal(t, []string{"dask-scheduler", "--host", "0.0.0.0"}, c.Spec.Scheduler.Spec.Containers[0].Args, "the cluster is not changed")

	g := DefaultWorkerGroup(c)
	w := WorkerPod(g, c, "c-default-abc", "cluster.local")
	assert.Equal(t, []string{"sh", "-c", legacyStep, "/opt/conda/bin/dask-worker"}, w.Spec.Containers[0].Command)
	assert.Equal(t, []string{"--name", "$(DASK_WORKER_NAME)"}, w.Spec.Containers[0].Args)
	assert.Equal(t, []string{"scheduler"}, LegacyCommandContainers(&c.Spec.Scheduler.Spec))

	// Current spellings are left alone.
	c.Spec.Scheduler.Spec.Containers[0].Args = []string{"dask", "scheduler"}
	assert.Equal(t, []string{"dask", "scheduler"}, SchedulerPod(c).Spec.Containers[0].Args)
	assert.Empty(t, LegacyCommandContainers(&c.Spec.Scheduler.Spec))
}

func TestLegacyCommandsKeptByAnnotation(t *testing.T) {
	c := legacyCluster(map[string]string{AnnotationLegacyCommands: LegacyCommandsKeep})
	assert.Equal(t, []string{"dask-scheduler", "--host", "0.0.0.0"}, SchedulerPod(c).Spec.Containers[0].Args)
	g := DefaultWorkerGroup(c)
	assert.Equal(t, LegacyCommandsKeep, g.Annotations[AnnotationLegacyCommands], "the annotation flows to the default group")
	assert.Equal(t, []string{"/opt/conda/bin/dask-worker"}, WorkerPod(g, c, "w", "cluster.local").Spec.Containers[0].Command)

	// On a group of its own only.
	c2 := legacyCluster(nil)
	g2 := DefaultWorkerGroup(c2)
	g2.Annotations = map[string]string{AnnotationLegacyCommands: LegacyCommandsKeep}
	assert.Equal(t, []string{"/opt/conda/bin/dask-worker"}, WorkerPod(g2, c2, "w", "cluster.local").Spec.Containers[0].Command)
}

// The step itself, run by a real shell: the old command where the image
// has it, else `dask <sub>` from the same folder or PATH, arguments intact.
func TestLegacyStepRunsOnImagesWithAndWithoutTheOldCommands(t *testing.T) {
	sh, err := exec.LookPath("sh")
	require.NoError(t, err)
	script := func(dir, name string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\necho "+name+" \"$@\"\n"), 0o755))
	}
	run := func(pathDir string, words ...string) string {
		cmd := exec.Command(sh, append([]string{"-c", legacyStep}, words...)...)
		cmd.Env = []string{"PATH=" + pathDir} // not the host's: it may have Dask
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	old, current := t.TempDir(), t.TempDir()
	script(old, "dask-worker")
	script(old, "dask")
	script(current, "dask")

	assert.Equal(t, "dask-worker --name w-1 --nthreads 2", run(old, "dask-worker", "--name", "w-1", "--nthreads", "2"))
	assert.Equal(t, "dask worker --name w-1 --memory-limit 4 GiB", run(current, "dask-worker", "--name", "w-1", "--memory-limit", "4 GiB"),
		"arguments with spaces stay one argument")
	assert.Equal(t, "dask scheduler --host 0.0.0.0", run(current, "dask-scheduler", "--host", "0.0.0.0"))
	// By path: the dask command of the same folder.
	assert.Equal(t, "dask worker tcp://s:8786", run("/nonexistent", filepath.Join(current, "dask-worker"), "tcp://s:8786"))
	assert.Equal(t, "dask-worker tcp://s:8786", run("/nonexistent", filepath.Join(old, "dask-worker"), "tcp://s:8786"))
}
