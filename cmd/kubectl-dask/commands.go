package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/cli-runtime/pkg/printers"

	daskv1 "github.com/dask-operator/dask-operator/pkg/apis/kubernetes.dask.org/v1"
	"github.com/dask-operator/dask-operator/pkg/daskctl"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = ""

type options struct {
	flags   *genericclioptions.ConfigFlags
	streams genericiooptions.IOStreams
}

func (o *options) client() (*daskctl.Client, error) {
	cfg, err := o.flags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("no cluster to talk to: %v", err)
	}
	return daskctl.New(cfg)
}

// clientIn returns a client and the namespace the flags name.
func (o *options) clientIn() (*daskctl.Client, string, error) {
	c, err := o.client()
	if err != nil {
		return nil, "", err
	}
	ns, err := o.namespace()
	return c, ns, err
}

func (o *options) namespace() (string, error) {
	ns, _, err := o.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("cannot tell the namespace: %v", err)
	}
	return ns, nil
}

// interrupted is a context that ends on Ctrl-C or SIGTERM.
func interrupted() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// printObject prints an object or list as json or yaml, with its kind.
func (o *options) printObject(obj kruntime.Object, format string) error {
	var p printers.ResourcePrinter
	switch format {
	case "json":
		p = &printers.JSONPrinter{}
	case "yaml":
		p = &printers.YAMLPrinter{}
	default:
		return fmt.Errorf("unknown output format %q: want json, yaml or wide", format)
	}
	return p.PrintObj(obj, o.streams.Out)
}

func checkOutput(format string, allowed ...string) error {
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q: want one of %v", format, allowed)
}

// completeNames completes the names of a kind's objects in the namespace
// the flags say, for shell completion.
func (o *options) completeNames(kind string) ([]string, cobra.ShellCompDirective) {
	c, ns, err := o.clientIn()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := listKind(ctx, c, kind, ns, metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return l.names, cobra.ShellCompDirectiveNoFileComp
}

// firstArgIs completes the first argument with the names of a kind.
func (o *options) firstArgIs(kind string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return o.completeNames(kind)
	}
}

// kindThenName completes a kind, then the names of that kind.
func (o *options) kindThenName(kinds []string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return kinds, cobra.ShellCompDirectiveNoFileComp
		case 1:
			return o.completeNames(args[0])
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

func (o *options) getCmd() *cobra.Command {
	var output string
	var all bool
	kinds := []string{"clusters", "groups", "jobs", "autoscalers"}
	cmd := &cobra.Command{
		Use:   "get (clusters|groups|jobs|autoscalers) [NAME]",
		Short: "List Dask clusters, worker groups, jobs or autoscalers",
		Long: `List Dask resources as a table: for clusters, the phase, each worker group's
ready/desired workers, the scheduler's address and dashboard; -o wide adds
images and the conditions that are not True; -o json|yaml prints the objects.`,
		Example:           "  kubectl dask get clusters\n  kubectl dask get groups -A -o wide\n  kubectl dask get cluster demo -o yaml",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: o.kindThenName(kinds),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "", "wide", "json", "yaml"); err != nil {
				return err
			}
			c, ns, err := o.clientIn()
			if err != nil {
				return err
			}
			if all {
				ns = ""
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
				if all {
					return errors.New("a NAME cannot be given with --all-namespaces")
				}
			}
			return o.get(cmd.Context(), c, args[0], ns, name, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: wide, json or yaml.")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "List the resources of every namespace.")
	return cmd
}

func (o *options) get(ctx context.Context, c *daskctl.Client, kind, ns, name, output string) error {
	now := time.Now()
	wide := output == "wide"
	one := metav1.ListOptions{}
	if name != "" {
		one.FieldSelector = "metadata.name=" + name
	}
	l, err := listKind(ctx, c, kind, ns, one)
	if err != nil {
		return err
	}
	if name != "" && len(l.items) == 0 {
		return fmt.Errorf("%s %q not found in namespace %q", l.kind, name, ns)
	}
	if output == "json" || output == "yaml" {
		if name != "" && len(l.items) == 1 {
			return o.printObject(l.items[0], output)
		}
		return o.printObject(l.list, output)
	}
	if len(l.items) == 0 {
		if ns == "" {
			fmt.Fprintf(o.streams.ErrOut, "No %ss found.\n", l.kind)
		} else {
			fmt.Fprintf(o.streams.ErrOut, "No %ss found in %s namespace.\n", l.kind, ns)
		}
		return nil
	}
	table, err := l.table(wide, now)
	if err != nil {
		return err
	}
	return table.Print(o.streams.Out, ns == "")
}

func (o *options) createCmd() *cobra.Command {
	create := &cobra.Command{Use: "create", Short: "Create a Dask cluster"}
	var (
		co                        daskctl.ClusterOptions
		workers                   int32
		resources, dryRun, output string
		env                       []string
		svcType                   string
		waitRunning               bool
		timeout                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "cluster NAME",
		Short: "Create a DaskCluster as the Python KubeCluster client's make_cluster_spec does",
		Long: `Create a DaskCluster with a scheduler and a default worker group, built as the
Python client's make_cluster_spec builds it, so that a cluster made either way
looks the same.`,
		Example: `  kubectl dask create cluster demo --workers 2 --image ghcr.io/dask/dask:latest --wait
  kubectl dask create cluster demo --env EXTRA_PIP_PACKAGES=s3fs --resources '{"limits":{"memory":"4Gi"}}'
  kubectl dask create cluster demo --dry-run=client -o yaml > demo.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, err := o.namespace()
			if err != nil {
				return err
			}
			co.Name, co.Namespace = args[0], ns
			if cmd.Flags().Changed("workers") {
				co.Workers = &workers
			}
			if co.Env, err = daskctl.ParseEnv(env); err != nil {
				return err
			}
			if resources != "" {
				var r corev1.ResourceRequirements
				if err := json.Unmarshal([]byte(resources), &r); err != nil {
					return fmt.Errorf("--resources %q: want JSON such as {\"limits\":{\"memory\":\"4Gi\"}}: %v", resources, err)
				}
				co.Resources = &r
			}
			co.SchedulerServiceType = corev1.ServiceType(svcType)
			cluster := daskctl.ClusterSpec(co)
			switch dryRun {
			case "client":
				return o.printObject(cluster, cmp.Or(output, "yaml"))
			case "", "none":
			default:
				return fmt.Errorf("--dry-run=%q: want client or none", dryRun)
			}
			if err := checkOutput(output, "", "json", "yaml"); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx, cancel := interrupted()
			defer cancel()
			created, err := c.CreateCluster(ctx, cluster)
			if err != nil {
				return err
			}
			if waitRunning {
				wctx, wcancel := context.WithTimeout(ctx, timeout)
				defer wcancel()
				if created, err = c.WaitClusterRunning(wctx, ns, co.Name); err != nil {
					return err
				}
			}
			if output != "" {
				created.APIVersion, created.Kind = daskv1.SchemeGroupVersion.String(), "DaskCluster"
				return o.printObject(created, output)
			}
			fmt.Fprintf(o.streams.Out, "daskcluster.kubernetes.dask.org/%s created\n", co.Name)
			if waitRunning {
				fmt.Fprintf(o.streams.Out, "scheduler: %s\ndashboard: %s\n", created.Status.SchedulerAddress, created.Status.DashboardURL)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Int32Var(&workers, "workers", 3, "Workers in the default worker group.")
	f.StringVar(&co.Image, "image", daskctl.DefaultImage, "Container image of the scheduler and workers.")
	f.StringVar(&resources, "resources", "", "Resources of the scheduler and worker containers, as JSON (requests, limits).")
	f.StringArrayVar(&env, "env", nil, "Environment variable NAME=VALUE of the scheduler and workers (repeatable).")
	f.StringVar(&co.WorkerCommand, "worker-command", "dask worker", "Command the workers run (split on spaces).")
	f.StringVar(&svcType, "scheduler-service-type", "ClusterIP", "Type of the scheduler Service: ClusterIP, NodePort or LoadBalancer.")
	f.Int64Var(&co.IdleTimeout, "idle-timeout", 0, "Delete the cluster after its scheduler is idle this many seconds (0: never).")
	f.BoolVar(&co.Jupyter, "jupyter", false, "Start Jupyter on the scheduler.")
	f.StringVar(&dryRun, "dry-run", "none", "client: print the DaskCluster instead of creating it.")
	f.StringVarP(&output, "output", "o", "", "Print the cluster as json or yaml.")
	f.BoolVar(&waitRunning, "wait", false, "Wait until the cluster is Running and its scheduler Ready.")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "How long --wait waits.")
	create.AddCommand(cmd)
	return create
}

func (o *options) scaleCmd() *cobra.Command {
	var group string
	cmd := &cobra.Command{
		Use:   "scale CLUSTER N",
		Short: "Set the number of workers of a cluster's worker group",
		Long: `Set the workers of a cluster's default group (or --group), as the Python
client's scale() does: the cluster's autoscaler, if any, is deleted first.
Workers that go are retired through the scheduler.`,
		Example:           "  kubectl dask scale demo 5\n  kubectl dask scale demo 0 --group highmem",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: o.firstArgIs("clusters"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := daskctl.ParseWorkers(args[1])
			if err != nil {
				return fmt.Errorf("N %w", err)
			}
			c, ns, err := o.clientIn()
			if err != nil {
				return err
			}
			if err := c.Scale(cmd.Context(), ns, args[0], group, n); err != nil {
				return err
			}
			fmt.Fprintf(o.streams.Out, "daskcluster.kubernetes.dask.org/%s scaled to %d workers (group %s)\n", args[0], n, cmp.Or(group, "default"))
			return nil
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "Worker group: its name or the part after <cluster>- (default: the default group).")
	return cmd
}

func (o *options) adaptCmd() *cobra.Command {
	var minimum, maximum int32
	cmd := &cobra.Command{
		Use:               "adapt CLUSTER --min N --max M",
		Short:             "Let the scheduler decide the number of workers, between bounds",
		Long:              "Create or update the cluster's DaskAutoscaler, as the Python client's adapt() does.",
		Example:           "  kubectl dask adapt demo --min 1 --max 10",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.firstArgIs("clusters"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if minimum < 0 || maximum < minimum {
				return fmt.Errorf("want 0 <= --min <= --max, got --min %d --max %d", minimum, maximum)
			}
			c, ns, err := o.clientIn()
			if err != nil {
				return err
			}
			if err := c.Adapt(cmd.Context(), ns, args[0], minimum, maximum); err != nil {
				return err
			}
			fmt.Fprintf(o.streams.Out, "daskautoscaler.kubernetes.dask.org/%s adapts between %d and %d workers\n", args[0], minimum, maximum)
			return nil
		},
	}
	cmd.Flags().Int32Var(&minimum, "min", 0, "Fewest workers.")
	cmd.Flags().Int32Var(&maximum, "max", 0, "Most workers.")
	_ = cmd.MarkFlagRequired("max")
	return cmd
}

func (o *options) forwardCmd(use string) *cobra.Command {
	var fo daskctl.ForwardOptions
	var open bool
	short := "Forward a cluster's scheduler and dashboard to this machine, reconnecting when the forward breaks"
	if use == "dashboard" {
		short = "Forward a cluster's dashboard (and scheduler) to this machine; --open opens it"
	}
	cmd := &cobra.Command{
		Use:   use + " CLUSTER",
		Short: short,
		Long: short + `.
It prints the tcp:// address for a Dask Client and the dashboard's http://
address, and runs until Ctrl-C. When the forward breaks (the connection drops,
the scheduler Pod is replaced), it forwards again on the same local ports.`,
		Example:           "  kubectl dask " + use + " demo\n  kubectl dask " + use + " demo --port 8786 --dashboard-port 8787",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.firstArgIs("clusters"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.clientIn()
			if err != nil {
				return err
			}
			ctx, cancel := interrupted()
			defer cancel()
			fo.Ready = func(f daskctl.Forward) {
				fmt.Fprintf(o.streams.Out, "scheduler: %s\ndashboard: %s\n", f.Address, f.Dashboard)
				if open {
					openBrowser(f.Dashboard, o.streams)
				}
			}
			fo.Log = func(msg string) { fmt.Fprintln(o.streams.ErrOut, msg) }
			return c.PortForward(ctx, ns, args[0], fo)
		},
	}
	f := cmd.Flags()
	f.IntVar(&fo.CommPort, "port", 0, "Local port of the scheduler (0: any free port).")
	f.IntVar(&fo.DashboardPort, "dashboard-port", 0, "Local port of the dashboard (0: any free port).")
	f.StringVar(&fo.LocalAddress, "address", "127.0.0.1", "Local address to listen on.")
	f.BoolVar(&open, "open", false, "Open the dashboard in a browser.")
	return cmd
}

func openBrowser(url string, streams genericiooptions.IOStreams) {
	name := "xdg-open"
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	if err := exec.Command(name, url).Start(); err != nil {
		fmt.Fprintf(streams.ErrOut, "cannot open a browser (%v): open %s yourself\n", err, url)
	}
}

func (o *options) logsCmd() *cobra.Command {
	var src daskctl.LogSource
	var follow bool
	cmd := &cobra.Command{
		Use:               "logs CLUSTER [--scheduler|--workers|--group G|--job]",
		Short:             "Print the logs of a cluster's Pods, each line prefixed by its Pod",
		Example:           "  kubectl dask logs demo\n  kubectl dask logs demo --scheduler -f\n  kubectl dask logs demo --group highmem",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.firstArgIs("clusters"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.clientIn()
			if err != nil {
				return err
			}
			ctx, cancel := interrupted()
			defer cancel()
			return c.Logs(ctx, ns, args[0], src, follow, o.streams.Out)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&src.Scheduler, "scheduler", false, "Only the scheduler.")
	f.BoolVar(&src.Workers, "workers", false, "Only the workers (every group).")
	f.StringVar(&src.Group, "group", "", "Only the workers of this group.")
	f.BoolVar(&src.Job, "job", false, "Only the job runner (for the cluster of a DaskJob).")
	f.BoolVarP(&follow, "follow", "f", false, "Keep streaming new lines.")
	cmd.MarkFlagsMutuallyExclusive("scheduler", "workers", "group", "job")
	return cmd
}

func (o *options) jobCmd() *cobra.Command {
	job := &cobra.Command{Use: "job", Short: "Submit Dask jobs, follow their logs and wait for them"}
	var (
		jo               daskctl.JobOptions
		workers, backoff int32
		files, env       []string
		waitDone         bool
		timeout          time.Duration
	)
	submit := &cobra.Command{
		Use:   "submit NAME --image IMAGE [--file F]... -- COMMAND [ARGS...]",
		Short: "Submit a DaskJob: a runner Pod running COMMAND, with its own Dask cluster",
		Long: `Submit a DaskJob. The runner runs COMMAND with DASK_SCHEDULER_ADDRESS set to its
cluster's scheduler; files given with --file are put in a ConfigMap mounted at
` + daskctl.FileMount + ` (the runner's working directory). The cluster goes when the job ends.`,
		Example: "  kubectl dask job submit etl --image ghcr.io/dask/dask:latest --file etl.py --workers 4 -- python etl.py",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return errors.New("give the job's NAME, then -- and its command: job submit NAME -- python script.py")
			}
			ns, err := o.namespace()
			if err != nil {
				return err
			}
			jo.Name, jo.Namespace, jo.Command = args[0], ns, args[1:]
			if cmd.Flags().Changed("workers") {
				jo.Workers = &workers
			}
			if cmd.Flags().Changed("backoff-limit") {
				jo.BackoffLimit = &backoff
			}
			if jo.Env, err = daskctl.ParseEnv(env); err != nil {
				return err
			}
			data := map[string]string{}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("--file: %v", err)
				}
				data[filepath.Base(f)] = string(b)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			ctx, cancel := interrupted()
			defer cancel()
			if _, err := c.SubmitJob(ctx, jo, data); err != nil {
				return err
			}
			fmt.Fprintf(o.streams.Out, "daskjob.kubernetes.dask.org/%s submitted\n", jo.Name)
			if waitDone {
				return o.waitJob(ctx, c, ns, jo.Name, timeout)
			}
			return nil
		},
	}
	f := submit.Flags()
	f.StringVar(&jo.Image, "image", daskctl.DefaultImage, "Image of the runner, scheduler and workers.")
	f.Int32Var(&workers, "workers", 3, "Workers of the job's cluster.")
	f.StringArrayVar(&files, "file", nil, "File to put in the runner's working directory (repeatable).")
	f.StringArrayVar(&env, "env", nil, "Environment variable NAME=VALUE of the runner, scheduler and workers (repeatable).")
	f.Int32Var(&backoff, "backoff-limit", 0, "Runner failures before the job is Failed (default: the operator's, 6).")
	f.BoolVar(&waitDone, "wait", false, "Wait until the job ends; exit non-zero when it failed.")
	f.DurationVar(&timeout, "timeout", time.Hour, "How long --wait waits.")

	var follow bool
	logs := &cobra.Command{
		Use:               "logs NAME",
		Short:             "Print the logs of a DaskJob's runner",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.firstArgIs("jobs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.clientIn()
			if err != nil {
				return err
			}
			ctx, cancel := interrupted()
			defer cancel()
			return c.JobLogs(ctx, ns, args[0], follow, o.streams.Out)
		},
	}
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "Keep streaming new lines.")

	var waitTimeout time.Duration
	waitCmd := &cobra.Command{
		Use:               "wait NAME",
		Short:             "Wait until a DaskJob ends; exit non-zero when it failed",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: o.firstArgIs("jobs"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.clientIn()
			if err != nil {
				return err
			}
			ctx, cancel := interrupted()
			defer cancel()
			return o.waitJob(ctx, c, ns, args[0], waitTimeout)
		},
	}
	waitCmd.Flags().DurationVar(&waitTimeout, "timeout", time.Hour, "How long to wait.")
	job.AddCommand(submit, logs, waitCmd)
	return job
}

func (o *options) waitJob(ctx context.Context, c *daskctl.Client, ns, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	j, err := c.WaitJob(ctx, ns, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.streams.Out, "daskjob.kubernetes.dask.org/%s %s\n", name, j.Status.JobStatus)
	if j.Status.JobStatus == daskv1.JobFailed {
		msg := ""
		for _, cond := range j.Status.Conditions {
			if cond.Type == "Failed" {
				msg = ": " + cond.Message
			}
		}
		return fmt.Errorf("daskjob %q failed%s", name, msg)
	}
	return nil
}

func (o *options) deleteCmd() *cobra.Command {
	var waitGone bool
	cmd := &cobra.Command{
		Use:               "delete (cluster|job) NAME",
		Short:             "Delete a Dask cluster or job",
		Example:           "  kubectl dask delete cluster demo --wait",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: o.kindThenName([]string{"cluster", "job"}),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := o.clientIn()
			if err != nil {
				return err
			}
			ctx, cancel := interrupted()
			defer cancel()
			switch args[0] {
			case "cluster", "clusters", "daskcluster", "dsk":
				err = c.DeleteCluster(ctx, ns, args[1], waitGone)
				args[0] = "daskcluster"
			case "job", "jobs", "daskjob":
				err = c.DeleteJob(ctx, ns, args[1], waitGone)
				args[0] = "daskjob"
			default:
				return fmt.Errorf("unknown kind %q: want cluster or job", args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(o.streams.Out, "%s.kubernetes.dask.org/%s deleted\n", args[0], args[1])
			return nil
		},
	}
	cmd.Flags().BoolVar(&waitGone, "wait", false, "Wait until it and what it made are gone.")
	return cmd
}

func (o *options) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plugin's version, the API server's, and whether the Dask resources are served",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := version
			if v == "" {
				if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
					v = bi.Main.Version
				}
			}
			fmt.Fprintf(o.streams.Out, "kubectl-dask: %s (%s)\n", cmp.Or(v, "(devel)"), runtime.Version())
			c, err := o.client()
			if err != nil {
				return err
			}
			sv, err := c.Kube.Discovery().ServerVersion()
			if err != nil {
				return daskctl.Explain(err, "version", "", "")
			}
			fmt.Fprintf(o.streams.Out, "Kubernetes: %s\n", sv.GitVersion)
			if _, err := c.Kube.Discovery().ServerResourcesForGroupVersion(daskv1.SchemeGroupVersion.String()); err != nil {
				fmt.Fprintf(o.streams.Out, "%s: not served (%v)\n", daskv1.SchemeGroupVersion.String(), daskctl.Explain(err, "DaskCluster", "", ""))
				return nil
			}
			fmt.Fprintf(o.streams.Out, "%s: served\n", daskv1.SchemeGroupVersion.String())
			return nil
		},
	}
}
