package deploy

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/dask-operator/dask-operator/pkg/generated/clientset/versioned"
	"github.com/dask-operator/dask-operator/pkg/testenv"
)

var (
	env      *testenv.Env
	kube     kubernetes.Interface
	dask     versioned.Interface
	operator string // the built binary
	root     string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("deployment tests need a control plane: not run with -short")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if root, err = testenv.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "dask-operator-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	operator = filepath.Join(dir, "dask-operator")
	build := exec.Command("go", "build", "-o", operator, "./cmd/dask-operator")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the operator: %v\n%s", err, out)
		return 1
	}
	env, err = testenv.Start(testenv.Options{Nodes: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start control plane:", err)
		return 1
	}
	defer env.Stop()
	kube = kubernetes.NewForConfigOrDie(env.Config)
	dask = versioned.NewForConfigOrDie(env.Config)
	return m.Run()
}

// operatorProcess is the operator binary running as a separate process.
type operatorProcess struct {
	cmd         *exec.Cmd
	log         string
	metricsAddr string
	healthAddr  string
	done        chan struct{}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startOperator runs the binary with a kubeconfig and extra flags; the test's
// cleanup stops it with SIGTERM, as a kubelet would.
func startOperator(t *testing.T, kubeconfig string, args ...string) *operatorProcess {
	t.Helper()
	p := &operatorProcess{
		log:         filepath.Join(t.TempDir(), "operator.log"),
		metricsAddr: freeAddr(t),
		healthAddr:  freeAddr(t),
		done:        make(chan struct{}),
	}
	logFile, err := os.Create(p.log)
	require.NoError(t, err)
	all := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--metrics-bind-address=" + p.metricsAddr,
		"--health-probe-bind-address=" + p.healthAddr,
		"--scheduler-url-template=http://127.0.0.1:{{.Port}}",
		"--retire-fallback-timeout=2s",
		"--leader-election-namespace=dask-operator",
		"-v=2",
	}, args...)
	p.cmd = exec.Command(operator, all...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			data, _ := os.ReadFile(p.log)
			if len(data) > 15000 {
				data = data[len(data)-15000:]
			}
			t.Logf("operator log:\n%s", data)
		}
	})
	return p
}

func (p *operatorProcess) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(45 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *operatorProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logLines returns the lines of the operator's log that contain s.
func (p *operatorProcess) logLines(s string) []string {
	f, err := os.Open(p.log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return resp.StatusCode, b.String(), nil
}

func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, timeout, cond)
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return env.Kubectl(t, root, args...)
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the
// operator's ServiceAccount, with a token from the TokenRequest API.
func serviceAccountKubeconfig(t *testing.T) string {
	t.Helper()
	expiry := int64(3600)
	tok, err := kube.CoreV1().ServiceAccounts("dask-operator").CreateToken(context.Background(), "dask-operator",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	require.NoError(t, err)
	cfg := &rest.Config{Host: env.Config.Host, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, testenv.WriteKubeconfig(path, cfg))
	return path
}
