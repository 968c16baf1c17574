package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCreatedChildrenAreSweptOnceExpired(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := NewCreatedChildren(func() time.Time { return now })
	c.remember("Pod", &metav1.ObjectMeta{Namespace: "ns", Name: "lost"})
	now = now.Add(CreatedTTL)
	c.remember("Pod", &metav1.ObjectMeta{Namespace: "ns", Name: "new"})
	assert.Len(t, c.m, 1, "a child whose events were lost and that nobody asked for again is not kept")
}
