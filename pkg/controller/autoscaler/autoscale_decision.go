package autoscaler

import (
	"fmt"
	"sync"
	"time"
)

// scaleInput is what an autoscaler decision depends on.
type scaleInput struct {
	Current int32
	// Target is the scheduler's adaptive_target; nil when unknown (scheduler
	// not ready or unreachable).
	Target   *int32
	Min, Max int32
	Now      time.Time
	// CooldownUntil delays any change but a return into [Min, Max].
	CooldownUntil time.Time
	// WindowMax is the largest clamped target seen during the scale-down
	// stabilization window (including this one); the group never shrinks
	// below it.
	WindowMax int32
}

// scaleDecision is the number of workers to run and why.
type scaleDecision struct {
	Replicas int32
	Reason   string
	Message  string
}

func clamp(v, lo, hi int32) int32 {
	return max(lo, min(v, hi))
}

// maxScaleDownStep is how many workers one step may remove: 25 % of the
// current count, at least 1.
func maxScaleDownStep(current int32) int32 {
	return max(1, current/4)
}

// decideScale is the autoscaler's rule, a pure function of its input.
func decideScale(in scaleInput) scaleDecision {
	bounded := clamp(in.Current, in.Min, in.Max)
	if bounded != in.Current {
		return scaleDecision{bounded, "OutsideBounds",
			fmt.Sprintf("%d workers is outside [%d, %d]; scaling to %d", in.Current, in.Min, in.Max, bounded)}
	}
	if in.Target == nil {
		return scaleDecision{in.Current, "NoTarget", "the scheduler's adaptive target is not known; keeping the current number of workers"}
	}
	target := clamp(*in.Target, in.Min, in.Max)
	if target == in.Current {
		return scaleDecision{in.Current, "AtTarget",
			fmt.Sprintf("the scheduler wants %d workers (within [%d, %d]); %d running", *in.Target, in.Min, in.Max, in.Current)}
	}
	if in.Now.Before(in.CooldownUntil) {
		return scaleDecision{in.Current, "CooldownActive",
			fmt.Sprintf("the scheduler wants %d workers; waiting for the cooldown until %s", target, in.CooldownUntil.UTC().Format(time.RFC3339))}
	}
	if target > in.Current {
		return scaleDecision{target, "ScaleUp",
			fmt.Sprintf("the scheduler wants %d workers (clamped to [%d, %d]); scaling up from %d", *in.Target, in.Min, in.Max, in.Current)}
	}
	floor := max(target, in.WindowMax)
	if floor >= in.Current {
		return scaleDecision{in.Current, "ScaleDownStabilizing",
			fmt.Sprintf("the scheduler wants %d workers but wanted %d within the stabilization window; keeping %d", target, in.WindowMax, in.Current)}
	}
	next := max(floor, in.Current-maxScaleDownStep(in.Current))
	return scaleDecision{next, "ScaleDown",
		fmt.Sprintf("the scheduler wants %d workers; scaling down from %d to %d (at most 25%% per step)", target, in.Current, next)}
}

// autoscaleMemory keeps, per autoscaler, the clamped targets seen during the
// stabilization window, like the HorizontalPodAutoscaler does. It lives in
// memory: after a restart the window starts empty again.
type autoscaleMemory struct {
	mu      sync.Mutex
	history map[string][]timedTarget
}

type timedTarget struct {
	at    time.Time
	value int32
}

func newAutoscaleMemory() *autoscaleMemory {
	return &autoscaleMemory{history: map[string][]timedTarget{}}
}

// record adds a target and returns the largest target within the window.
func (m *autoscaleMemory) record(key string, now time.Time, value int32, window time.Duration) int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.history[key][:0]
	for _, t := range m.history[key] {
		if now.Sub(t.at) < window {
			kept = append(kept, t)
		}
	}
	kept = append(kept, timedTarget{at: now, value: value})
	m.history[key] = kept
	best := value
	for _, t := range kept {
		best = max(best, t.value)
	}
	return best
}

func (m *autoscaleMemory) forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.history, key)
}
