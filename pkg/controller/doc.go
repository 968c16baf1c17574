// Package controller holds the operator's controllers: one per Dask kind,
// each with its own rate-limited workqueue and workers, fed by shared
// informers. Event handlers only enqueue keys; sync functions read the
// informer caches, compare what exists with what is wanted and repair the
// difference (level-triggered), and write status only when it changed.
package controller
