package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/resources"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"k8s.io/apimachinery/pkg/runtime"
)

// Children: whether an object is ours, what a refused create means, one
// Warning per standing problem, adopting objects, and the Python operator's
// finalizer.

// OwnedBy reports whether obj's controller is owner; a child of the same name
// left behind by a deleted owner (another UID) is not adopted silently.
func OwnedBy(obj metav1.Object, owner metav1.Object) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == owner.GetUID()
}

// AlreadyExists handles a create refused because the name is taken. The
// object is read live (get): the cache may lag behind our own create, or
// not hold the object at all (a foreign Pod without the operator's labels is
// never in the label-filtered cache). Ours means the cache lags: retry. Not
// ours is a real conflict.
func AlreadyExists[T metav1.Object](ctx context.Context, owner metav1.Object, ownerKind, kind, name string,
	get func(context.Context, string, metav1.GetOptions) (T, error)) error {
	live, err := get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s %s existed at create and is gone now; creating it again", kind, name)
	case err != nil:
		return fmt.Errorf("%s %s exists; reading it: %w", kind, name, err)
	case OwnedBy(live, owner):
		return errCacheLag{kind: kind, name: name}
	}
	return NameConflict(kind, name, ownerKind)
}

// WarnOnce records a Warning event unless the object's condition already
// says the same: a standing problem is reported once, not on every sync.
func (c *Base) WarnOnce(obj runtime.Object, conds []metav1.Condition, typ, reason, msg string) {
	if old := apimeta.FindStatusCondition(conds, typ); old != nil && old.Status == metav1.ConditionFalse && old.Reason == reason &&
		strings.Contains(old.Message, msg) {
		return
	}
	c.Recorder.Event(obj, corev1.EventTypeWarning, reason, msg)
}

// ChildOwner is the object a child is created for, with the conditions
// its status has now: a failure its ResourcesCreated condition already
// tells of is not reported again.
type ChildOwner struct {
	Obj        ownerObject
	Kind       string
	Conditions []metav1.Condition
}

type ownerObject interface {
	runtime.Object
	metav1.Object
}

// CreateChild creates a single named child of an owner, the one way every
// kind does (as the ReplicaSet controller's RealPodControl). A name already
// taken is read live and told apart: ours means the cache lags, another's
// is a name conflict. A namespace being deleted is nothing to retry or
// report (it returns no child and no error). Any other refusal is an
// errFailedCreate, reported once by a Warning event (not again while the
// owner's ResourcesCreated condition says the same), and permanent when
// the API server calls the child invalid. A child created is remembered
// until the cache holds it.
func CreateChild[T metav1.Object](ctx context.Context, c *Base, created *CreatedChildren, owner ChildOwner, kind string, desired T,
	create func(context.Context, T, metav1.CreateOptions) (T, error),
	get func(context.Context, string, metav1.GetOptions) (T, error)) (T, error) {
	var none T
	child, err := create(ctx, desired, metav1.CreateOptions{})
	switch {
	case err == nil:
		created.remember(kind, child)
		klog.InfoS("Created "+kind, strings.ToLower(owner.Kind), klog.KObj(owner.Obj), strings.ToLower(kind), klog.KObj(child))
		return child, nil
	case apierrors.IsAlreadyExists(err):
		return none, AlreadyExists(ctx, owner.Obj, owner.Kind, kind, desired.GetName(), get)
	case NamespaceTerminating(err):
		return none, nil
	}
	return none, c.CreateFailed(owner, kind, desired.GetName(), err)
}

// CreateFailed reports a create the API server refused: once, as a Warning
// (warnOnce on the owner's ResourcesCreated condition, which the owner's
// sync sets from the error), permanent when the child is invalid: the user
// must fix the spec.
func (c *Base) CreateFailed(owner ChildOwner, kind, name string, err error) error {
	msg := fmt.Sprintf("create %s %s: %v", kind, name, err)
	c.WarnOnce(owner.Obj, owner.Conditions, daskv1.ConditionResourcesCreated, daskv1.ReasonFailedCreate, msg)
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		return Permanent(errFailedCreate{msg})
	}
	return errFailedCreate{msg}
}

// AdoptPatch adds a controller reference to obj; the uid and resourceVersion
// make it fail rather than touch a changed or recreated object.
// Annotations, when given, are added in the same request.
func AdoptPatch(obj metav1.Object, ref metav1.OwnerReference, annotations map[string]string) []byte {
	meta := map[string]any{
		"ownerReferences": append(append([]metav1.OwnerReference{}, obj.GetOwnerReferences()...), ref),
		"uid":             obj.GetUID(),
		"resourceVersion": obj.GetResourceVersion(),
	}
	if len(annotations) > 0 {
		meta["annotations"] = annotations
	}
	patch, _ := json.Marshal(map[string]any{"metadata": meta})
	return patch
}

// RemoveKopfFinalizer removes the Python operator's finalizer from an object
// it created: nothing would ever remove it, and the object could not be
// deleted. It reports whether it changed the object (whose update event
// brings the next sync).
func (c *Base) RemoveKopfFinalizer(ctx context.Context, obj metav1.Object) (bool, error) {
	fins := obj.GetFinalizers()
	kept := make([]string, 0, len(fins))
	for _, f := range fins {
		if f != resources.KopfFinalizer {
			kept = append(kept, f)
		}
	}
	if len(kept) == len(fins) {
		return false, nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers":      kept,
		"resourceVersion": obj.GetResourceVersion(),
	}})
	var err error
	switch o := obj.(type) {
	case *daskv1.DaskCluster:
		_, err = c.Dask.KubernetesV1().DaskClusters(o.Namespace).Patch(ctx, o.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			c.Recorder.Event(o, corev1.EventTypeNormal, daskv1.ReasonFinalizerRemoved, "Removed the Python operator's finalizer "+resources.KopfFinalizer)
		}
	case *daskv1.DaskAutoscaler:
		_, err = c.Dask.KubernetesV1().DaskAutoscalers(o.Namespace).Patch(ctx, o.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			c.Recorder.Event(o, corev1.EventTypeNormal, daskv1.ReasonFinalizerRemoved, "Removed the Python operator's finalizer "+resources.KopfFinalizer)
		}
	default:
		return false, fmt.Errorf("removeKopfFinalizer: unexpected %T", obj)
	}
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return true, err
}

type hashEntry struct {
	uid        types.UID
	generation int64
	hash       string
}

// eventNames is how many names an event message lists; the log line that
// goes with it has them all. (The API server keeps about 1 kB of a message.)
const eventNames = 10

// NameList lists names for an event message: the first eventNames, and how
// many more there are.
func NameList(names []string) string {
	if len(names) <= eventNames {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:eventNames], ", "), len(names)-eventNames)
}
