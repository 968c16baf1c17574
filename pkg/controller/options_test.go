package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// The Python operator's worker allocation variables keep working.
func TestOptionsFromTheIncumbentsEnvironment(t *testing.T) {
	t.Setenv(EnvBatchSize, "20")
	t.Setenv(EnvBatchDelay, "1.5")
	var o Options
	require.NoError(t, o.OptionsFromEnv())
	o.Defaults()
	assert.Equal(t, 20, o.MaxPodOpsPerSync)
	assert.Equal(t, 1500*time.Millisecond, o.WorkerBatchDelay)

	t.Setenv(EnvBatchSize, "5000")
	o = Options{}
	require.NoError(t, o.OptionsFromEnv())
	o.Defaults()
	assert.Equal(t, 500, o.MaxPodOpsPerSync, "never more than 500 per sync")

	t.Setenv(EnvBatchSize, "many")
	assert.ErrorContains(t, (&Options{}).OptionsFromEnv(), EnvBatchSize)
	t.Setenv(EnvBatchSize, "")
	t.Setenv(EnvBatchDelay, "-1")
	assert.ErrorContains(t, (&Options{}).OptionsFromEnv(), EnvBatchDelay)
}

func TestEventSpamBudgetIsPerReason(t *testing.T) {
	e := func(reason string) *corev1.Event {
		return &corev1.Event{Reason: reason, Type: corev1.EventTypeWarning, Source: corev1.EventSource{Component: "dask-operator"},
			InvolvedObject: corev1.ObjectReference{Kind: "DaskWorkerGroup", Namespace: "ns", Name: "g", UID: "u"}}
	}
	assert.Equal(t, SpamKeyByReason(e("RetireWorkersFailed")), SpamKeyByReason(e("RetireWorkersFailed")))
	assert.NotEqual(t, SpamKeyByReason(e("RetireWorkersFailed")), SpamKeyByReason(e("FallbackScaleDown")))
}
