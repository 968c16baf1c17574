// Command kubectl-dask is a kubectl plugin for Dask on Kubernetes: on PATH,
// kubectl runs it as `kubectl dask`. It creates, lists, scales, adapts and
// deletes DaskClusters, port-forwards to their schedulers (reconnecting when
// the forward breaks), streams their logs and submits DaskJobs.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	root := newRoot(genericclioptions.NewConfigFlags(true), streams)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// newRoot builds the command tree; tests run it in-process.
func newRoot(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-dask",
		Short: "Run Dask clusters and jobs on Kubernetes with the Dask operator",
		Long: `kubectl dask creates, lists, scales and deletes Dask clusters, forwards their
scheduler and dashboard to this machine, streams their logs and submits Dask
jobs, through the kubernetes.dask.org resources the Dask operator serves.`,
		Example: `  # A cluster of 3 workers, as the Python KubeCluster client makes it
  kubectl dask create cluster demo --workers 3 --wait

  # Its scheduler and dashboard on this machine (reconnects when the forward breaks)
  kubectl dask port-forward demo

  kubectl dask get clusters
  kubectl dask scale demo 5
  kubectl dask adapt demo --min 1 --max 10
  kubectl dask logs demo --scheduler -f
  kubectl dask job submit etl --image ghcr.io/dask/dask:latest --file etl.py -- python etl.py
  kubectl dask delete cluster demo --wait`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl dask"},
	}
	flags.AddFlags(root.PersistentFlags())
	o := &options{flags: flags, streams: streams}
	root.AddCommand(o.getCmd(), o.createCmd(), o.scaleCmd(), o.adaptCmd(), o.forwardCmd("port-forward"), o.forwardCmd("dashboard"),
		o.logsCmd(), o.jobCmd(), o.deleteCmd(), o.versionCmd())
	return root
}
