package controller

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Errors a sync returns, and what the queue makes of them: permanent ones
// (the user must change the object) are not retried, a cache that lags behind
// our own creates is no problem to report, a name another owner holds is.

// errPermanent marks an error that retrying will not fix: the user must
// change the object. It is reported, and the object is not requeued.
type errPermanent struct{ error }

func Permanent(err error) error { return errPermanent{err} }

// IsPermanent reports whether retrying cannot help: err is permanent, or
// every error joined in it is. One permanent error among transient ones
// (errors.Join) must not stop the retries the others need.
func IsPermanent(err error) bool {
	return everyError(err, func(e error) bool {
		var p errPermanent
		return errors.As(e, &p)
	})
}

// errCacheLag is a child we created that the create found existing while
// the cache does not hold it yet: it exists, and the next sync (its watch
// event brings one) sees it. Not a problem to report in the status.
type errCacheLag struct{ kind, name string }

func (e errCacheLag) Error() string {
	return fmt.Sprintf("%s %s exists but is not in the cache yet", e.kind, e.name)
}

// OnlyCacheLag reports whether every error joined in err is an errCacheLag.
func OnlyCacheLag(err error) bool {
	return everyError(err, func(e error) bool {
		var l errCacheLag
		return errors.As(e, &l)
	})
}

// everyError reports whether err is not nil and is, or joins only, errors
// for which is holds.
func everyError(err error, is func(error) bool) bool {
	if err == nil {
		return false
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs := joined.Unwrap()
		for _, e := range errs {
			if e != nil && !everyError(e, is) {
				return false
			}
		}
		return len(errs) > 0
	}
	return is(err)
}

// errNameConflict is a child's name taken by an object another owner (or
// no owner) controls: the user must delete or rename one of them. It is
// reported once, as a condition and a Warning event, and retried with
// backoff, since the other object's deletion may bring no event.
type errNameConflict struct{ msg string }

func (e errNameConflict) Error() string { return e.msg }

// errFailedCreate is a create the API server refused (createFailed).
type errFailedCreate struct{ msg string }

func (e errFailedCreate) Error() string { return e.msg }

// FailedCreateIn returns the message of a failed create in err.
func FailedCreateIn(err error) (string, bool) {
	var f errFailedCreate
	if errors.As(err, &f) {
		return f.msg, true
	}
	return "", false
}

func NameConflict(kind, name, ownerKind string) error {
	return errNameConflict{fmt.Sprintf("%s %s already exists and is not controlled by this %s; delete or rename it", kind, name, ownerKind)}
}

func ConflictIn(err error) (string, bool) {
	var nc errNameConflict
	if errors.As(err, &nc) {
		return nc.msg, true
	}
	return "", false
}

// NamespaceTerminating reports a create refused because the namespace is
// being deleted: everything in it goes, so there is nothing to retry.
func NamespaceTerminating(err error) bool {
	return apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}
