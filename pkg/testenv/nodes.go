package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

const kwokNodeAnnotation = "kwok.x-k8s.io/node"

// startNodes runs kube-scheduler and kwok, and registers one fake node that
// kwok serves: Pods bound to it become Running and Ready at once.
func (e *Env) startNodes() error {
	if err := e.startScheduler(); err != nil {
		return err
	}

	stages, err := filepath.Glob(filepath.Join(e.bins.KwokStages(), "*.yaml"))
	if err != nil || len(stages) == 0 {
		return fmt.Errorf("no kwok stages in %s", e.bins.KwokStages())
	}
	var config []byte
	for _, s := range stages {
		data, err := os.ReadFile(s)
		if err != nil {
			return err
		}
		config = append(config, []byte("---\n")...)
		config = append(config, data...)
		config = append(config, '\n')
	}
	configPath := filepath.Join(e.Dir, "kwok.yaml")
	if err := os.WriteFile(configPath, config, 0o644); err != nil {
		return err
	}
	kwok, err := startProcess(e.Dir, "kwok", e.bins.Path("kwok"),
		"--kubeconfig="+e.Kubeconfig,
		"--config="+configPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"=fake",
		"--cidr=10.244.0.0/16",
		"--node-ip=10.243.0.1",
		"--node-port=0",
		"--server-address=",
	)
	if err != nil {
		return err
	}
	e.procs = append(e.procs, kwok)

	e.NodeName = "kwok-node-0"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.AddKwokNode(ctx, e.NodeName); err != nil {
		return err
	}
	return e.waitNodeReady(ctx, kwok)
}

// AddKwokNode registers another fake node that kwok serves (Options.Nodes).
func (e *Env) AddKwokNode(ctx context.Context, name string) error {
	client, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": name},
		},
		Status: corev1.NodeStatus{
			Allocatable: bigNode(),
			Capacity:    bigNode(),
		},
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create fake node %s: %w", name, err)
	}
	return nil
}

func (e *Env) startScheduler() error {
	sched, err := startProcess(e.Dir, "kube-scheduler", e.bins.Path("kube-scheduler"),
		"--kubeconfig="+e.Kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
	)
	if err != nil {
		return err
	}
	e.procs = append(e.procs, sched)
	return nil
}

// waitNodeReady waits until the node e.NodeName is Ready, or its agent exited.
func (e *Env) waitNodeReady(ctx context.Context, agent *process) error {
	client, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if agent.exited() {
			return false, fmt.Errorf("%s exited:\n%s", agent.name, agent.tail())
		}
		n, err := client.CoreV1().Nodes().Get(ctx, e.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
}

func bigNode() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("4Ti"),
		corev1.ResourcePods:   resource.MustParse("20000"),
	}
}
