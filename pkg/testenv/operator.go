package testenv

import (
	"context"
	"flag"
	"fmt"
	"os"

	"k8s.io/client-go/dynamic"

	"github.com/dask-operator/dask-operator/pkg/controller/manager"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/dask-operator/dask-operator/pkg/controller"
	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
)

// Operator is the operator's controllers running in the test process.
type Operator struct {
	logPath string
	cancel  context.CancelFunc
	done    chan struct{}
}

// RunOperator runs the operator's controllers in this process against the
// environment, logging (klog, -v=2) to logPath only, until Stop.
func (e *Env) RunOperator(opts controller.Options, logPath string) (*Operator, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	logFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(logFlags)
	_ = logFlags.Set("logtostderr", "false")
	_ = logFlags.Set("alsologtostderr", "false")
	_ = logFlags.Set("stderrthreshold", "FATAL")
	_ = logFlags.Set("v", "2")
	klog.SetOutput(logFile)

	if opts.Dynamic == nil {
		opts.Dynamic = dynamic.NewForConfigOrDie(e.Config)
	}
	ctrl, err := manager.New(kubernetes.NewForConfigOrDie(e.Config), versioned.NewForConfigOrDie(e.Config), opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	op := &Operator{logPath: logPath, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(op.done)
		if err := ctrl.Run(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "operator:", err)
		}
	}()
	return op, nil
}

// Stop stops the operator. When the tests failed it prints the end of its
// log, and of the other logs named, to stderr.
func (o *Operator) Stop(failed bool, otherLogs ...string) {
	o.cancel()
	<-o.done
	klog.Flush()
	if !failed {
		return
	}
	for _, f := range append([]string{o.logPath}, otherLogs...) {
		if data, err := os.ReadFile(f); err == nil {
			const max = 15000
			if len(data) > max {
				data = data[len(data)-max:]
			}
			fmt.Fprintf(os.Stderr, "--- end of %s:\n%s\n", f, data)
		}
	}
}
