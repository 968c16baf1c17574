package resources

import (
	"path"

	corev1 "k8s.io/api/core/v1"
)

// Since distributed 2026.6 the dask-scheduler and dask-worker commands no
// longer exist (dask/distributed#9240): only `dask scheduler` and
// `dask worker` start a scheduler or a worker (both spellings exist from
// 2022.10 on). The Python KubeCluster client's make_cluster_spec, the
// Python operator's examples and years of users' YAML still start
// containers with the old commands, which then fail on current images.
//
// The operator starts such a container through a small shell step that
// runs the command as written where the image has it, and as the `dask`
// subcommand where it does not, with the user's arguments unchanged. A
// container with only args (the image's entrypoint runs them, as Dask's
// images do) keeps its entrypoint: the step goes into args. An object
// annotated AnnotationLegacyCommands: "keep" runs its commands as written.

// AnnotationLegacyCommands set to LegacyCommandsKeep on a DaskCluster,
// DaskWorkerGroup or DaskJob (annotations flow to what they make) turns the
// rewriting of dask-scheduler / dask-worker off.
const AnnotationLegacyCommands = "kubernetes.dask.org/legacy-commands"

// LegacyCommandsKeep is the value of AnnotationLegacyCommands that keeps
// commands as written.
const LegacyCommandsKeep = "keep"

// legacyStep runs "$0" "$@" where $0 exists, else `<dir>/dask <sub> "$@"`
// where <sub> is $0's name without "dask-". It has no "$(", which a kubelet
// would take for a variable reference.
const legacyStep = `if command -v "$0" >/dev/null 2>&1; then exec "$0" "$@"; fi; ` +
	`case "$0" in */*) d="${0%/*}/dask" ;; *) d=dask ;; esac; b="${0##*/}"; exec "$d" "${b#dask-}" "$@"`

// legacyCommand reports whether a command word is one Dask removed.
func legacyCommand(word string) bool {
	switch path.Base(word) {
	case "dask-scheduler", "dask-worker":
		return true
	}
	return false
}

// LegacyCommandContainers names the containers of spec that start
// dask-scheduler or dask-worker (by command, or by args when there is no command).
func LegacyCommandContainers(spec *corev1.PodSpec) []string {
	var out []string
	for i := range spec.Containers {
		if legacyWords(&spec.Containers[i]) != nil {
			out = append(out, spec.Containers[i].Name)
		}
	}
	return out
}

// legacyWords returns the list (command or args) that starts with a removed
// command, or nil.
func legacyWords(c *corev1.Container) *[]string {
	switch {
	case len(c.Command) > 0:
		if legacyCommand(c.Command[0]) {
			return &c.Command
		}
	case len(c.Args) > 0:
		if legacyCommand(c.Args[0]) {
			return &c.Args
		}
	}
	return nil
}

// LegacyCommandsKept tells whether any of the annotation sets asks to keep
// the commands as written.
func LegacyCommandsKept(annotations ...map[string]string) bool {
	for _, a := range annotations {
		if a[AnnotationLegacyCommands] == LegacyCommandsKeep {
			return true
		}
	}
	return false
}

// rewriteLegacyCommands puts legacyStep before every removed command of spec.
func rewriteLegacyCommands(spec *corev1.PodSpec) {
	for i := range spec.Containers {
		if words := legacyWords(&spec.Containers[i]); words != nil {
			*words = append([]string{"sh", "-c", legacyStep}, *words...)
		}
	}
}
