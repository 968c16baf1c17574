package controller

import (
	"fmt"
	"strings"
	"sync"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/dask-operator/dask-operator/pkg/resources"
)

// NotedOnce remembers, per object key, the UID of the object a notice was
// given for, so that each object gets it once (a new object of the same
// name gets it again).
type NotedOnce struct {
	mu sync.Mutex
	m  map[string]types.UID
}

func NewNotedOnce() *NotedOnce { return &NotedOnce{m: map[string]types.UID{}} }

// first reports whether this is the first notice for the object.
func (n *NotedOnce) first(key string, uid types.UID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m[key] == uid {
		return false
	}
	n.m[key] = uid
	return true
}

func (n *NotedOnce) Forget(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, key)
}

// noteLegacyCommands tells, once per object, that containers of a Pod it
// makes start a removed Dask command and how they are run.
func (n *NotedOnce) Note(recorder record.EventRecorder, obj runtime.Object, kind, key string, uid types.UID, spec *corev1.PodSpec, annotations ...map[string]string) {
	names := resources.LegacyCommandContainers(spec)
	if len(names) == 0 || resources.LegacyCommandsKept(annotations...) || !n.first(kind+"/"+key, uid) {
		return
	}
	recorder.Event(obj, corev1.EventTypeNormal, daskv1.ReasonLegacyDaskCommand, fmt.Sprintf(
		"container %s starts dask-scheduler or dask-worker, which Dask 2026.6 and later no longer have: "+
			"it runs as written on images that have the command and as `dask scheduler` / `dask worker` (same arguments) on images that do not; "+
			"annotate with %s=%s to run it as written everywhere",
		strings.Join(names, ", "), resources.AnnotationLegacyCommands, resources.LegacyCommandsKeep))
}
