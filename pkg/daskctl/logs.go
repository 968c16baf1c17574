package daskctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// LogSource says whose logs to read.
type LogSource struct {
	Scheduler, Workers, Job bool
	// Group is a worker group: its name, or the part after "<cluster>-".
	Group string
}

// LogPods lists the cluster's Pods a LogSource names (every Pod of the
// cluster when it names none), by name.
func (c *Client) LogPods(ctx context.Context, ns, cluster string, src LogSource) ([]corev1.Pod, error) {
	sel := labels.Set{"dask.org/cluster-name": cluster}
	switch {
	case src.Scheduler:
		sel["dask.org/component"] = "scheduler"
	case src.Job:
		sel["dask.org/component"] = "job-runner"
	case src.Group != "":
		sel["dask.org/component"] = "worker"
	case src.Workers:
		sel["dask.org/component"] = "worker"
	}
	list, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, Explain(err, "Pod", ns, "")
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if g := src.Group; g != "" {
			name := p.Labels["dask.org/workergroup-name"]
			if name != g && name != cluster+"-"+g {
				continue
			}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Logs writes the logs of the cluster's Pods a LogSource names, each line
// prefixed by its Pod ("[pod] ..."); with follow, until ctx ends.
func (c *Client) Logs(ctx context.Context, ns, cluster string, src LogSource, follow bool, w io.Writer) error {
	if _, err := c.GetCluster(ctx, ns, cluster); err != nil {
		return err
	}
	pods, err := c.LogPods(ctx, ns, cluster, src)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return fmt.Errorf("daskcluster %q has no such Pods in namespace %q", cluster, ns)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(pods))
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.podLogs(ctx, &p, follow, func(line string) {
				mu.Lock()
				fmt.Fprintf(w, "[%s] %s\n", p.Name, line)
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

func (c *Client) podLogs(ctx context.Context, p *corev1.Pod, follow bool, line func(string)) error {
	opts := &corev1.PodLogOptions{Follow: follow}
	if len(p.Spec.Containers) > 0 {
		opts.Container = p.Spec.Containers[0].Name
	}
	stream, err := c.Kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, opts).Stream(ctx)
	if err != nil {
		return fmt.Errorf("logs of Pod %s: %w", p.Name, Explain(err, "Pod", p.Namespace, p.Name))
	}
	defer stream.Close()
	s := bufio.NewScanner(stream)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		line(s.Text())
	}
	if err := s.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of Pod %s: %w", p.Name, err)
	}
	return nil
}

// JobLogs writes the logs of a DaskJob's runner Pod, prefixed by the Pod;
// the runner stays after the job ends (its cluster does not).
func (c *Client) JobLogs(ctx context.Context, ns, job string, follow bool, w io.Writer) error {
	j, err := c.Dask.KubernetesV1().DaskJobs(ns).Get(ctx, job, metav1.GetOptions{})
	if err != nil {
		return Explain(err, "DaskJob", ns, job)
	}
	name := j.Status.JobRunnerPodName
	if name == "" {
		name = job + "-runner"
	}
	p, err := c.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("daskjob %q has no runner Pod yet: %w", job, Explain(err, "Pod", ns, name))
	}
	return c.podLogs(ctx, p, follow, func(line string) { fmt.Fprintf(w, "[%s] %s\n", p.Name, line) })
}
