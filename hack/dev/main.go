// Command dev runs the operator for development (`make dev`).
//
// With $KUBECONFIG (or --kubeconfig) it runs the operator against that
// cluster. Without, it starts a local control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and a node), installs the CRDs,
// runs the operator against it, applies an example DaskCluster and prints
// how to compute on it. Ctrl-C stops everything.
//
// The node is the node agent (hack/nodeagent): Pods run as host processes,
// each in a network namespace, with the Dask of their image
// (hack/dask-images.sh builds the roots: Debian 12's 2022.12, Debian 13's
// 2024.12 and the current one); it needs root. The example runs the latest.
// --sim=kwok (make dev SIM=kwok) uses a kwok node instead, where Pods only
// pretend to run.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/dask-operator/dask-operator/pkg/resources"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "Run against this cluster instead of a local one.")
	example := flag.String("example", "manifests/examples/daskcluster.yaml", "Resource to apply to the local cluster.")
	sim := flag.String("sim", "process", "The local cluster's node: process (Pods run as processes, needs root) or kwok (Pods only pretend to run).")
	flag.Parse()
	if *sim != "process" && *sim != "kwok" {
		fmt.Fprintf(os.Stderr, "dev: --sim=%q: want process or kwok\n", *sim)
		os.Exit(2)
	}
	if err := run(*kubeconfig, *example, *sim, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, example, sim string, operatorArgs []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	operator := filepath.Join(root, "bin", "dask-operator")
	build := exec.Command("go", "build", "-o", operator, "./cmd/dask-operator")
	build.Dir, build.Stdout, build.Stderr = root, os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build the operator: %w", err)
	}

	if kubeconfig != "" {
		fmt.Printf("Running the operator against %s (Ctrl-C stops it)\n", kubeconfig)
		return runOperator(ctx, operator, append([]string{"--kubeconfig=" + kubeconfig}, operatorArgs...))
	}

	start := time.Now()
	if sim == "process" && os.Geteuid() != 0 {
		fmt.Println("Not root: Pods cannot run in network namespaces, so the node is a kwok node where they only pretend to run (run as root for real Dask).")
		sim = "kwok"
	}
	if sim == "process" {
		if err := ensureHostPackages(ctx, root); err != nil {
			fmt.Printf("%v: the node is a kwok node where Pods only pretend to run.\n", err)
			sim = "kwok"
		}
	}
	opts := testenv.Options{Nodes: sim == "kwok", RealPods: sim == "process", SkipGarbageCollectorWait: true}
	fmt.Printf("No KUBECONFIG: starting a local control plane with a %s node...\n", sim)
	env, err := testenv.Start(opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("Stopping the local control plane...")
		env.Stop()
	}()
	bins, err := testenv.FindBinaries()
	if err != nil {
		return err
	}
	kubectl := fmt.Sprintf("%s --kubeconfig %s", bins.Path("kubectl"), env.Kubeconfig)

	opCtx, cancelOp := context.WithCancel(ctx)
	defer cancelOp()
	opDone := make(chan error, 1)
	go func() {
		args := []string{"--kubeconfig=" + env.Kubeconfig, "--leader-elect=false"}
		opDone <- runOperator(opCtx, operator, append(args, operatorArgs...))
	}()

	apply := exec.CommandContext(ctx, bins.Path("kubectl"), "--kubeconfig", env.Kubeconfig, "apply", "--server-side", "-f", filepath.Join(root, example))
	apply.Stdout, apply.Stderr = os.Stdout, os.Stderr
	if err := apply.Run(); err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C while starting
		}
		return fmt.Errorf("apply %s: %w", example, err)
	}
	if sim == "kwok" {
		fmt.Printf(`
Local cluster and operator up in %s. Pods run on a kwok node: they are scheduled,
Running and Ready, but no container runs.

  %s get dsk,daskworkers,pods,svc
  %s scale dsk example --replicas=5

Ctrl-C stops the operator and the control plane.
`, time.Since(start).Round(time.Second), kubectl, kubectl)
	} else {
		fmt.Println("Waiting for the example cluster's scheduler and workers...")
		addr, err := waitForExample(ctx, env, "default", "example")
		if ctx.Err() != nil {
			return nil // Ctrl-C while starting
		}
		if err != nil {
			return err
		}
		latest := env.Latest()
		client := shellJoin(env.EnterArgs(latest, nil, "/usr/bin/python3", "-c",
			fmt.Sprintf("from dask.distributed import Client; c = Client('%s'); print(c.submit(sum, range(1000)).result())", addr)))
		fmt.Printf(`
Local cluster and operator up in %s. Pods run as processes, each in a network
namespace on bridge %s (%s), with the Dask of their image (README, "Dask
versions"); this machine reaches them at their Pod IPs. Service names resolve
inside Pods only: from here, use the scheduler Pod's address, or
hack/dask-address.sh <cluster> [namespace].

The example cluster runs %s:latest, Dask %s. Compute on it with a client of
the same Dask (a client of another Dask release cannot talk to it):
  %s

  %s get dsk,daskworkers,pods,svc -o wide
  %s scale dsk example --replicas=5
  (KUBECONFIG=%s hack/dask-address.sh example)

Ctrl-C stops the operator, the control plane and every Pod process.
`, time.Since(start).Round(time.Second), env.Bridge, env.PodCIDR, testenv.DaskRepository, latest.Version, client, kubectl, kubectl, env.Kubeconfig)
	}

	select {
	case <-ctx.Done():
		cancelOp()
		<-opDone
		return nil
	case err := <-opDone:
		if ctx.Err() != nil {
			return nil // stopped by Ctrl-C
		}
		return fmt.Errorf("the operator stopped: %v", err)
	}
}

// shellJoin quotes words for a POSIX shell, so that a printed command can
// be pasted as it is.
func shellJoin(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if w != "" && strings.IndexFunc(w, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@", r))
		}) < 0 {
			out[i] = w
			continue
		}
		out[i] = "'" + strings.ReplaceAll(w, "'", `'"'"'`) + "'"
	}
	return strings.Join(out, " ")
}

// runOperator runs the operator binary until ctx ends, then stops it with
// SIGTERM so it shuts down cleanly. The operator has its own process group:
// a terminal's Ctrl-C reaches only this process, which then stops the
// operator itself, so the two never race to report how it ended.
func runOperator(ctx context.Context, binary string, args []string) error {
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return nil
	}
}

// waitForExample waits until the cluster's scheduler Pod is Ready and every
// worker the cluster asks for has registered with it, and returns the
// scheduler's address.
func waitForExample(ctx context.Context, env *testenv.Env, namespace, cluster string) (string, error) {
	client, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var addr, last string
	err = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
			LabelSelector: resources.LabelClusterName + "=" + cluster + "," + resources.LabelComponent + "=" + resources.ComponentScheduler,
		})
		if err != nil || len(pods.Items) == 0 {
			last = "no scheduler Pod yet"
			return false, nil
		}
		p := pods.Items[0]
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if !ready || p.Status.PodIP == "" {
			last = "scheduler Pod " + p.Name + " not Ready"
			return false, nil
		}
		addr = "tcp://" + net.JoinHostPort(p.Status.PodIP, "8786")
		workers, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
			LabelSelector: resources.LabelClusterName + "=" + cluster + "," + resources.LabelComponent + "=" + resources.ComponentWorker,
		})
		if err != nil {
			return false, nil
		}
		running := 0
		for _, w := range workers.Items {
			if w.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		last = fmt.Sprintf("%d worker Pods running", running)
		return running > 0, nil
	})
	if err != nil {
		return "", fmt.Errorf("the example cluster did not come up: %s (%v); see the Pods' logs under %s", last, err, env.Dir)
	}
	return addr, nil
}

// ensureHostPackages installs, with apt-get, what Pods on the process node
// use: Debian's Dask (python3-distributed) and iproute2 (hack/ensure-deps.sh,
// which make test uses too).
func ensureHostPackages(ctx context.Context, root string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "ensure-deps.sh"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("Dask or iproute2 is missing and could not be installed (%v)", err)
	}
	return nil
}
