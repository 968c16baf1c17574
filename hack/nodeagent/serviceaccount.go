package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// In-cluster access to the API server, as a kubelet gives it: every pod
// that does not opt out (automountServiceAccountToken: false) finds its
// service account's token, the API server's CA bundle and its namespace in
// /var/run/secrets/kubernetes.io/serviceaccount, and KUBERNETES_SERVICE_HOST
// and _PORT in its environment; so client-go's and kr8s' in-cluster
// configuration work in a pod (a notebook running the KubeCluster client).
//
// There is no kube-proxy here to route the kubernetes Service's ClusterIP:
// the agent relays the node's address, port 443, to the API server, and the
// pods' hosts files map kubernetes.default.svc to the node, the name
// KUBERNETES_SERVICE_HOST gives (the API server's certificate names it).

// saMount is where pods find their service account's files.
const saMount = "/var/run/secrets/kubernetes.io/serviceaccount"

// apiHost is KUBERNETES_SERVICE_HOST in pods.
const apiHost = "kubernetes.default.svc"

type apiAccess struct {
	caFile   string // the API server's CA bundle
	upstream string // host:port of the API server
	created  string // the first folder of saMount this agent created, removed at exit
}

// start relays nodeIP:443 to the API server and makes sure saMount exists
// on the host (bind mounts need a mount point).
func (s *apiAccess) start(ctx context.Context, nodeIP string) error {
	if _, err := os.Stat(s.caFile); err != nil {
		return fmt.Errorf("API server CA bundle: %w", err)
	}
	for dir := saMount; dir != "/"; dir = filepath.Dir(dir) {
		if _, err := os.Lstat(dir); os.IsNotExist(err) {
			s.created = dir
		}
	}
	if err := os.MkdirAll(saMount, 0o755); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(nodeIP, "443"))
	if err != nil {
		return fmt.Errorf("relay to the API server: %w", err)
	}
	go func() { <-ctx.Done(); ln.Close() }()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go relay(conn, s.upstream)
		}
	}()
	return nil
}

// stop removes the folders start created, if they are empty.
func (s *apiAccess) stop() {
	if s.created == "" {
		return
	}
	for dir := saMount; len(dir) >= len(s.created); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			return
		}
	}
}

func relay(conn net.Conn, upstream string) {
	defer conn.Close()
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		klog.ErrorS(err, "Relay to the API server failed")
		return
	}
	defer up.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if c, ok := dst.(*net.TCPConn); ok {
			_ = c.CloseWrite()
		}
	}
	go pipe(up, conn)
	go pipe(conn, up)
	wg.Wait()
}

// automount tells whether a pod gets its service account's files.
func automount(pod *corev1.Pod) bool {
	return pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken
}

// writeServiceAccount writes, in dir, the files a pod finds in saMount: a
// token bound to the pod (TokenRequest, as the kubelet's projected volume
// asks for), the CA bundle and the namespace.
func (a *agent) writeServiceAccount(ctx context.Context, pod *corev1.Pod, dir string) error {
	expiry := int64(3600)
	req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		// The ServiceAccount admission plugin, off on the test control
		// plane, would have set it; a token bound to the pod needs it.
		sa = "default"
	} else {
		req.Spec.BoundObjectRef = &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	tr, err := a.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token of service account %s: %w", sa, err)
	}
	ca, err := os.ReadFile(a.api.caFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"token": []byte(tr.Status.Token), "ca.crt": ca, "namespace": []byte(pod.Namespace)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// inClusterEnv is what a kubelet sets for the kubernetes Service, unless
// the pod sets it.
func inClusterEnv(env []string) []string {
	for _, kv := range []string{"KUBERNETES_SERVICE_HOST=" + apiHost, "KUBERNETES_SERVICE_PORT=443"} {
		name := kv[:strings.IndexByte(kv, '=')+1]
		set := false
		for _, e := range env {
			set = set || strings.HasPrefix(e, name)
		}
		if !set {
			env = append(env, kv)
		}
	}
	return env
}
