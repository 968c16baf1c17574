package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Leader election under load: two replicas of the operator share a Lease;
// the leader is SIGKILLed (and, separately, SIGSTOPped for longer than the
// lease and then resumed) during a scale. The other takes over within the
// lease duration plus a retry; the paused one must not write once it wakes
// up (the API server's audit log, which names each replica by its user
// agent, is read for writes it sent after the other took the Lease).

const (
	leaseDuration = 6 * time.Second
	renewDeadline = 4 * time.Second
	retryPeriod   = time.Second
	leaseNS       = "faults"
)

// replica is one operator process with leader election on.
type replica struct {
	*operator
	name string
}

func (d *driver) newReplica(name string) *replica {
	args := []string{"--leader-elect=true", "--leader-election-namespace=" + leaseNS,
		"--leader-election-lease-duration=" + leaseDuration.String(),
		"--leader-election-renew-deadline=" + renewDeadline.String(),
		"--leader-election-retry-period=" + retryPeriod.String()}
	for _, a := range d.op.args {
		if a != "--leader-elect=false" {
			args = append(args, a)
		}
	}
	return &replica{name: name, operator: &operator{bin: d.op.bin, args: args,
		log: filepath.Join(filepath.Dir(d.op.log), "dask-operator-faults-"+name+".log")}}
}

var leaderLine = regexp.MustCompile(`"Became the leader".* identity="([^"]+)"`)

// identities are the Lease identities the replica's log says it led as.
func (r *replica) identities() []string {
	f, err := os.Open(r.log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if m := leaderLine.FindStringSubmatch(s.Text()); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// holder returns the Lease's holder and when it acquired it.
func (d *driver) holder() (string, time.Time, error) {
	l, err := d.kube.CoordinationV1().Leases(leaseNS).Get(d.ctx, "dask-operator", metav1.GetOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	if l.Spec.HolderIdentity == nil || l.Spec.AcquireTime == nil {
		return "", time.Time{}, nil
	}
	return *l.Spec.HolderIdentity, l.Spec.AcquireTime.Time, nil
}

// leaderOf waits until one of the replicas holds the Lease and returns it,
// with its identity and the Lease's acquire time.
func (d *driver) leaderOf(replicas []*replica, not string, within time.Duration) (*replica, string, time.Time, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		id, acquired, err := d.holder()
		if err == nil && id != "" && id != not {
			for _, r := range replicas {
				for _, own := range r.identities() {
					if own == id {
						return r, id, acquired, nil
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, "", time.Time{}, fmt.Errorf("no replica took the Lease within %s", within)
}

// leaderFaults runs the SIGKILL and the SIGSTOP fault on two replicas, then
// gives the other faults their single operator back.
func (d *driver) leaderFaults(killed, paused *FaultResult) error {
	d.op.kill()
	defer func() { _ = d.op.start() }()
	a, b := d.newReplica("a"), d.newReplica("b")
	replicas := []*replica{a, b}
	for _, r := range replicas {
		if err := r.start(); err != nil {
			return err
		}
		defer r.kill()
	}
	leader, id, _, err := d.leaderOf(replicas, "", 30*time.Second)
	if err != nil {
		return err
	}
	// Takeover is bounded by the lease duration plus two of the follower's
	// tries, which client-go's elector spaces by the retry period with a
	// jitter of up to 1.2 more: the first sees the leader's last renewal,
	// the one after the lease ran out takes it.
	bound := leaseDuration + 2*time.Duration(2.2*float64(retryPeriod)) + 500*time.Millisecond

	// SIGKILL mid-scale-up.
	d.record(killed, func() (time.Time, error) {
		d.w.setDesired(d.cfg.Scale)
		start := time.Now()
		if err := d.scale(d.cfg.Scale); err != nil {
			return start, err
		}
		time.Sleep(time.Duration(rand.Int64N(int64(2 * time.Second))))
		leader.kill()
		killedAt := time.Now()
		next, nextID, _, err := d.leaderOf(replicas, id, bound+5*time.Second)
		if err != nil {
			return start, err
		}
		if took := time.Since(killedAt); took > bound {
			killed.Violations = append(killed.Violations, fmt.Sprintf("takeover after a SIGKILL took %s, more than %s", took.Round(100*time.Millisecond), bound))
		}
		killed.Notes = append(killed.Notes, fmt.Sprintf("leader SIGKILLed: the other replica led %s later", time.Since(killedAt).Round(100*time.Millisecond)))
		if err := leader.start(); err != nil { // back as a follower
			return start, err
		}
		leader, id = next, nextID
		return start, nil
	}, d.cfg.Scale)

	// SIGSTOP past the lease mid-scale-down, then SIGCONT.
	d.record(paused, func() (time.Time, error) {
		d.w.setDesired(d.cfg.Down)
		start := time.Now()
		if err := d.scale(d.cfg.Down); err != nil {
			return start, err
		}
		time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
		stopped, stoppedID := leader, id
		_ = syscall.Kill(stopped.cmd.Process.Pid, syscall.SIGSTOP)
		stoppedAt := time.Now()
		next, nextID, acquired, err := d.leaderOf(replicas, stoppedID, bound+5*time.Second)
		if err != nil {
			_ = syscall.Kill(stopped.cmd.Process.Pid, syscall.SIGCONT)
			return start, err
		}
		if took := time.Since(stoppedAt); took > bound {
			paused.Violations = append(paused.Violations, fmt.Sprintf("takeover after a SIGSTOP took %s, more than %s", took.Round(100*time.Millisecond), bound))
		}
		paused.Notes = append(paused.Notes, fmt.Sprintf("leader SIGSTOPped: the other replica led %s later", time.Since(stoppedAt).Round(100*time.Millisecond)))
		// Paused well past its lease while the new leader works, then resumed.
		time.Sleep(leaseDuration)
		_ = syscall.Kill(stopped.cmd.Process.Pid, syscall.SIGCONT)
		select {
		case <-stopped.done:
		case <-time.After(3 * leaseDuration):
			paused.Violations = append(paused.Violations, "the resumed replica did not stop after losing the Lease")
			stopped.kill()
		}
		time.Sleep(2 * time.Second) // the audit log is written as requests end
		writes, others, err := writesAfter(d.env.AuditLog, stoppedID, nextID, acquired)
		if err != nil {
			return start, err
		}
		for _, w := range writes {
			paused.Violations = append(paused.Violations, "the paused replica wrote after the takeover: "+w)
		}
		if others == 0 {
			paused.Violations = append(paused.Violations, "the audit log shows no write by the new leader, not even of its Lease: the check sees nothing")
		}
		if err := stopped.start(); err != nil {
			return start, err
		}
		leader, id = next, nextID
		return start, nil
	}, d.cfg.Down)
	return nil
}

// auditEvent is the part of an API server audit event the check reads.
type auditEvent struct {
	Verb       string    `json:"verb"`
	UserAgent  string    `json:"userAgent"`
	Received   time.Time `json:"requestReceivedTimestamp"`
	RequestURI string    `json:"requestURI"`
	Response   struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	ObjectRef struct {
		Resource string `json:"resource"`
	} `json:"objectRef"`
}

// writesAfter returns the writes (other than to the Lease) the replica
// named stale sent after since, and counts those of the replica named
// fresh over the same time (its Lease renewals too).
func writesAfter(path, stale, fresh string, since time.Time) ([]string, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	var writes []string
	others := 0
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<22)
	for s.Scan() {
		var e auditEvent
		if json.Unmarshal(s.Bytes(), &e) != nil || e.Received.Before(since) {
			continue
		}
		// The paused replica's elector may try its Lease on waking (and
		// fails): that is how it learns of the loss. The new leader's
		// renewals show that the log names it: the scale-down may be over
		// before the pause, leaving it nothing else to write.
		lease := e.ObjectRef.Resource == "leases"
		switch {
		case strings.Contains(e.UserAgent, stale) && !lease:
			writes = append(writes, fmt.Sprintf("%s %s (%d) at %s", e.Verb, e.RequestURI, e.Response.Code, e.Received.Format(time.RFC3339Nano)))
		case strings.Contains(e.UserAgent, fresh):
			others++
		}
	}
	return writes, others, s.Err()
}
