package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/util/workqueue"
)

func TestExpeditingQueue(t *testing.T) {
	now := time.Unix(1000, 0)
	store := newExpeditingQueue(func() time.Time { return now })
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Queue: store})
	get := func() string {
		t.Helper()
		require.Positive(t, q.Len())
		k, shutdown := q.Get()
		require.False(t, shutdown)
		q.Done(k)
		return k
	}

	t.Run("first in, first out without marks", func(t *testing.T) {
		for _, k := range []string{"a", "b", "c"} {
			q.Add(k)
		}
		q.Add("a") // already queued: keeps its place
		assert.Equal(t, []string{"a", "b", "c"}, []string{get(), get(), get()})
		assert.Zero(t, q.Len())
	})

	t.Run("a marked key goes first once its time has come", func(t *testing.T) {
		store.expedite("c", now.Add(time.Second))
		q.Add("a")
		q.Add("b")
		q.Add("c") // before its time: at the back
		q.Add("d")
		assert.Equal(t, 4, q.Len())
		now = now.Add(time.Second)
		q.Add("c") // the delayed add: to the front, once
		assert.Equal(t, 4, q.Len(), "moved, not added twice")
		assert.Equal(t, []string{"c", "a", "b", "d"}, []string{get(), get(), get(), get()})
		assert.Zero(t, q.Len())

		q.Add("a")
		q.Add("c")
		assert.Equal(t, []string{"a", "c"}, []string{get(), get()}, "the mark ended when c left the queue")
	})

	t.Run("a key popped before its time keeps its mark", func(t *testing.T) {
		store.expedite("b", now.Add(time.Second))
		q.Add("b")
		assert.Equal(t, "b", get())
		q.Add("a")
		now = now.Add(time.Second)
		q.Add("b")
		assert.Equal(t, []string{"b", "a"}, []string{get(), get()})
	})

	t.Run("a key added while it is synced goes first when that sync is done", func(t *testing.T) {
		store.expedite("b", now)
		q.Add("b")
		k, _ := q.Get()
		require.Equal(t, "b", k)
		store.expedite("b", now)
		q.Add("a")
		q.Add("b") // dirty while processing: pushed on Done
		q.Done("b")
		assert.Equal(t, []string{"b", "a"}, []string{get(), get()})
	})
}
