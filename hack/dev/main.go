// Command dev runs the operator for development (`make dev`).
//
// With $KUBECONFIG (or --kubeconfig) it runs the operator against that
// cluster. Without, it starts a local control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok with one fake node),
// installs the CRDs, runs the operator against it, applies an example
// DaskCluster and prints how to look at it. Ctrl-C stops everything.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dask-operator/dask-operator/pkg/testenv"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "Run against this cluster instead of a local one.")
	example := flag.String("example", "manifests/examples/daskcluster.yaml", "Resource to apply to the local cluster.")
	flag.Parse()
	if err := run(*kubeconfig, *example, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, example string, operatorArgs []string) error {
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
	fmt.Println("No KUBECONFIG: starting a local control plane with a kwok node...")
	env, err := testenv.Start(testenv.Options{Nodes: true, SkipGarbageCollectorWait: true})
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
		return fmt.Errorf("apply %s: %w", example, err)
	}
	fmt.Printf(`
Local cluster and operator up in %s. Pods run on a kwok node: they are scheduled,
Running and Ready, but no container runs.

  %s get dsk,daskworkers,pods,svc
  %s scale dsk example --replicas=5

Ctrl-C stops the operator and the control plane.
`, time.Since(start).Round(time.Second), kubectl, kubectl)

	select {
	case <-ctx.Done():
		cancelOp()
		<-opDone
		return nil
	case err := <-opDone:
		return fmt.Errorf("the operator stopped: %v", err)
	}
}

// runOperator runs the operator binary until ctx ends, then stops it with
// SIGTERM so it shuts down cleanly.
func runOperator(ctx context.Context, binary string, args []string) error {
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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
