// Command faults injects faults into the operator on the local control plane
// (kwok nodes, a fake Dask scheduler that answers at once) and checks its
// invariants at every event, from watches: `make faults` (ROUNDS=...), and a
// short run in `make test` (faults_test.go). It writes its figures to
// hack/faults/results/results.md.
//
// Faults:
//   - operator-kill: the operator is SIGKILLed at a random moment of a
//     scale-up 0 -> N and of a scale-down N -> M, and started again.
//   - pod-burst: B worker Pods are deleted at once behind the operator.
//   - stuck-terminating: a scale-down while some Pods cannot go (a finalizer
//     holds them Terminating).
//   - api-down: kube-apiserver stopped for a while mid-scale.
//   - compaction: etcd compacted and kube-apiserver restarted mid-scale, so
//     that watches resume from a compacted revision (410 Gone) and re-list.
//   - scheduler: a scale-down while the scheduler answers 500, garbage,
//     slowly, or not at all.
//   - outage-creation: kube-apiserver stopped while clusters are being
//     created; all must run, then all are deleted and nothing may be left.
//   - bad-input: valid clusters created among as many invalid objects; each
//     invalid one is refused at admission or gets a condition and one event,
//     and the valid ones' time is compared with a run without them.
//
// Invariants, checked at every Pod event: a worker Pod is never created while
// its group already has as many live Pods as asked for (no over-creation); a
// Ready worker is never deleted unless the scheduler retired it or the fault
// itself deleted it; after each fault the group converges (live Pods ==
// replicas, all Ready, status matching) within the timeout.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	cfg := defaultConfig()
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds of each fault")
	flag.IntVar(&cfg.Scale, "scale", cfg.Scale, "workers of the scale-up")
	flag.IntVar(&cfg.Down, "down", cfg.Down, "workers after the scale-down")
	flag.IntVar(&cfg.Burst, "burst", cfg.Burst, "Pods deleted at once")
	flag.IntVar(&cfg.BadInput, "bad-input", cfg.BadInput, "valid and invalid objects of the bad-input fault (0: skip it)")
	flag.IntVar(&cfg.Clusters, "clusters", cfg.Clusters, "clusters being created when the API server goes down (0: skip that fault)")
	out := flag.String("out", "hack/faults/results", "folder for results.md and results.json")
	flag.Parse()
	res, err := Run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	if err := res.Write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	fmt.Print(res.Markdown())
	fmt.Println("results in", filepath.Join(*out, "results.md"))
	if res.Failed() {
		os.Exit(1)
	}
}
