package autoscaler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDecideScale(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	target := func(v int32) *int32 { return &v }
	cases := []struct {
		name       string
		in         scaleInput
		want       int32
		wantReason string
	}{
		{"scale up to the target", scaleInput{Current: 2, Target: target(6), Min: 1, Max: 10, WindowMax: 6}, 6, "ScaleUp"},
		{"scale up is clamped to maximum", scaleInput{Current: 2, Target: target(60), Min: 1, Max: 10, WindowMax: 10}, 10, "ScaleUp"},
		{"at target", scaleInput{Current: 4, Target: target(4), Min: 1, Max: 10, WindowMax: 4}, 4, "AtTarget"},
		{"target below minimum is clamped", scaleInput{Current: 2, Target: target(0), Min: 2, Max: 10, WindowMax: 2}, 2, "AtTarget"},
		{"scale down by at most 25%", scaleInput{Current: 20, Target: target(1), Min: 1, Max: 30, WindowMax: 1}, 15, "ScaleDown"},
		{"scale down of 3 takes at least one", scaleInput{Current: 3, Target: target(0), Min: 0, Max: 30, WindowMax: 0}, 2, "ScaleDown"},
		{"scale down of 1 takes one", scaleInput{Current: 1, Target: target(0), Min: 0, Max: 30, WindowMax: 0}, 0, "ScaleDown"},
		{"scale down stops at the target", scaleInput{Current: 10, Target: target(9), Min: 1, Max: 30, WindowMax: 9}, 9, "ScaleDown"},
		{"scale down never below minimum", scaleInput{Current: 5, Target: target(0), Min: 4, Max: 30, WindowMax: 4}, 4, "ScaleDown"},
		{"stabilization window holds a scale-down", scaleInput{Current: 8, Target: target(2), Min: 1, Max: 30, WindowMax: 8}, 8, "ScaleDownStabilizing"},
		{"stabilization window limits a scale-down", scaleInput{Current: 8, Target: target(2), Min: 1, Max: 30, WindowMax: 7}, 7, "ScaleDown"},
		{"cooldown holds a scale-up", scaleInput{Current: 2, Target: target(6), Min: 1, Max: 10, WindowMax: 6, CooldownUntil: now.Add(time.Second)}, 2, "CooldownActive"},
		{"cooldown holds a scale-down", scaleInput{Current: 6, Target: target(2), Min: 1, Max: 10, WindowMax: 2, CooldownUntil: now.Add(time.Second)}, 6, "CooldownActive"},
		{"expired cooldown", scaleInput{Current: 2, Target: target(6), Min: 1, Max: 10, WindowMax: 6, CooldownUntil: now.Add(-time.Second)}, 6, "ScaleUp"},
		{"unknown target keeps the count", scaleInput{Current: 3, Min: 1, Max: 10}, 3, "NoTarget"},
		{"new bounds apply without a target", scaleInput{Current: 3, Min: 5, Max: 10}, 5, "OutsideBounds"},
		{"new maximum applies during cooldown", scaleInput{Current: 12, Target: target(12), Min: 1, Max: 10, CooldownUntil: now.Add(time.Hour)}, 10, "OutsideBounds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now = now
			got := decideScale(tc.in)
			assert.Equal(t, tc.want, got.Replicas)
			assert.Equal(t, tc.wantReason, got.Reason)
			assert.NotEmpty(t, got.Message)
		})
	}
}

func TestAutoscaleMemoryKeepsTheWindow(t *testing.T) {
	m := newAutoscaleMemory()
	t0 := time.Unix(1_800_000_000, 0)
	assert.Equal(t, int32(8), m.record("k", t0, 8, time.Minute))
	assert.Equal(t, int32(8), m.record("k", t0.Add(30*time.Second), 2, time.Minute), "8 is still in the window")
	assert.Equal(t, int32(3), m.record("k", t0.Add(61*time.Second), 3, time.Minute), "8 left the window; 2 and 3 remain")
	assert.Equal(t, int32(1), m.record("other", t0, 1, time.Minute), "autoscalers are independent")
	m.forget("k")
	assert.Equal(t, int32(1), m.record("k", t0.Add(62*time.Second), 1, time.Minute))
}
