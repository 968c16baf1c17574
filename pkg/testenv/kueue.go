package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// KueueOptions configure the Kueue controller manager StartKueue runs.
type KueueOptions struct {
	// FeatureGates is Kueue's --feature-gates (e.g.
	// "ElasticJobsViaWorkloadSlices=true").
	FeatureGates string
	// Frameworks are the job integrations Kueue manages (default batch/job).
	Frameworks []string
	// ExternalFrameworks are the kinds MultiKueue's generic adapter
	// dispatches ("Kind.version.group").
	ExternalFrameworks []string
}

// Kueue is a Kueue controller manager running against the control plane.
type Kueue struct {
	proc *process
	Log  string
}

// kueueWebhookGroups are the API groups whose Kueue webhooks are
// registered: Kueue's own objects and batch Jobs. Kueue serves a webhook
// only for the integrations it runs; a registered webhook it does not serve
// would refuse every object it matches.
var kueueWebhookGroups = map[string]bool{"kueue.x-k8s.io": true, "batch": true}

// StartKueue installs Kueue's CRDs (from the module hack/tools.sh built it
// from), runs its controller manager as a process with its webhooks served
// on loopback under a certificate made here, registers those webhooks, and
// waits until they answer. Kueue is the real one: its scheduler, its
// preemption, its admission of Workloads.
func (e *Env) StartKueue(opts KueueOptions) (*Kueue, error) {
	dir := e.bins.KueueDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := InstallCRDs(ctx, e.Config, filepath.Join(dir, "crds")); err != nil {
		return nil, fmt.Errorf("kueue CRDs: %w", err)
	}
	kube, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kueue-system"}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}

	work := filepath.Join(e.Dir, "kueue")
	certDir := filepath.Join(work, "certs")
	if err := os.MkdirAll(certDir, 0o755); err != nil {
		return nil, err
	}
	caPEM, err := writeServingCert(certDir)
	if err != nil {
		return nil, err
	}
	// Without its internal certificate management, Kueue reads its metrics
	// server's certificate from this fixed path, and exits when it is not
	// there (its metrics server is off here: any certificate will do).
	if _, err := os.Stat(filepath.Join(kueueMetricsCerts, "tls.crt")); err != nil {
		if err := os.MkdirAll(kueueMetricsCerts, 0o755); err != nil {
			return nil, fmt.Errorf("kueue reads its metrics certificate from %s: %w", kueueMetricsCerts, err)
		}
		if _, err := writeServingCert(kueueMetricsCerts); err != nil {
			return nil, err
		}
	}
	webhookPort, healthPort := freePort(), freePort()
	frameworks := opts.Frameworks
	if len(frameworks) == 0 {
		frameworks = []string{"batch/job"}
	}
	config := map[string]any{
		"apiVersion":             "config.kueue.x-k8s.io/v1beta2",
		"kind":                   "Configuration",
		"namespace":              "kueue-system",
		"health":                 map[string]any{"healthProbeBindAddress": fmt.Sprintf("127.0.0.1:%d", healthPort)},
		"metrics":                map[string]any{"bindAddress": "0"},
		"webhook":                map[string]any{"port": webhookPort, "host": "127.0.0.1", "certDir": certDir},
		"leaderElection":         map[string]any{"leaderElect": false},
		"internalCertManagement": map[string]any{"enable": false},
		"clientConnection":       map[string]any{"qps": 100, "burst": 200},
		"integrations":           map[string]any{"frameworks": frameworks},
	}
	if len(opts.ExternalFrameworks) > 0 {
		config["multiKueue"] = map[string]any{"externalFrameworks": externalFrameworks(opts.ExternalFrameworks)}
	}
	data, err := yaml.Marshal(config)
	if err != nil {
		return nil, err
	}
	configPath := filepath.Join(work, "config.yaml")
	if err := os.WriteFile(configPath, data, 0o644); err != nil {
		return nil, err
	}
	args := []string{"--config=" + configPath, "--kubeconfig=" + e.Kubeconfig,
		"--zap-log-level=2"}
	// The visibility API server wants a certificate at a fixed path and an
	// APIService: not needed here.
	gates := "VisibilityOnDemand=false"
	if opts.FeatureGates != "" {
		gates += "," + opts.FeatureGates
	}
	args = append(args, "--feature-gates="+gates)
	name := fmt.Sprintf("kueue-%d", len(e.procs))
	proc, err := startProcess(e.Dir, name, e.bins.Path("kueue"), args...)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, proc)
	k := &Kueue{proc: proc, Log: filepath.Join(e.Dir, name+".log")}

	if err := e.registerKueueWebhooks(ctx, filepath.Join(dir, "webhooks.yaml"), webhookPort, caPEM); err != nil {
		return nil, err
	}
	// Ready: its probe answers and its webhooks admit a (dry-run) object.
	client, err := dynamic.NewForConfig(e.Config)
	if err != nil {
		return nil, err
	}
	flavor := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
		"metadata": map[string]any{"name": "testenv-probe"},
	}}
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if proc.exited() {
			return false, fmt.Errorf("kueue exited")
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort))
		if err != nil {
			lastErr = err
			return false, nil
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("readyz: %s", resp.Status)
			return false, nil
		}
		_, lastErr = client.Resource(KueueResource("resourceflavors")).Create(ctx, flavor, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return lastErr == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("kueue not ready (%v): %w; the end of its log:\n%s", lastErr, err, logTail(k.Log, 3000))
	}
	return k, nil
}

// kueueMetricsCerts is where Kueue looks for its metrics certificate.
const kueueMetricsCerts = "/etc/kueue/metrics/certs"

// KueueResource is a resource of Kueue's API, kueue.x-k8s.io/v1beta2.
func KueueResource(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: resource}
}

func externalFrameworks(kinds []string) []map[string]any {
	var out []map[string]any
	for _, k := range kinds {
		out = append(out, map[string]any{"name": k})
	}
	return out
}

// registerKueueWebhooks registers the webhooks of Kueue's manifest that
// concern kueue.x-k8s.io and batch, pointed at the process on loopback.
func (e *Env) registerKueueWebhooks(ctx context.Context, manifest string, port int, caPEM []byte) error {
	data, err := os.ReadFile(manifest)
	if err != nil {
		return err
	}
	client, err := dynamic.NewForConfig(e.Config)
	if err != nil {
		return err
	}
	for _, doc := range strings.Split(string(data), "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			return err
		}
		if obj.GetKind() == "" {
			continue
		}
		hooks, _, _ := unstructured.NestedSlice(obj.Object, "webhooks")
		var kept []any
		for _, h := range hooks {
			hook := h.(map[string]any)
			if !webhookConcerns(hook) {
				continue
			}
			path, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
			hook["clientConfig"] = map[string]any{
				"url":      fmt.Sprintf("https://127.0.0.1:%d%s", port, path),
				"caBundle": base64.StdEncoding.EncodeToString(caPEM),
			}
			kept = append(kept, hook)
		}
		if len(kept) == 0 {
			continue
		}
		obj.Object["webhooks"] = kept
		obj.SetName("testenv-" + obj.GetName())
		body, err := obj.MarshalJSON()
		if err != nil {
			return err
		}
		gvr := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1",
			Resource: strings.ToLower(obj.GetKind()) + "s"}
		force := true
		if _, err := client.Resource(gvr).Patch(ctx, obj.GetName(), types.ApplyPatchType, body,
			metav1.PatchOptions{FieldManager: "dask-operator-testenv", Force: &force}); err != nil {
			return fmt.Errorf("register %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

func webhookConcerns(hook map[string]any) bool {
	rules, _, _ := unstructured.NestedSlice(hook, "rules")
	for _, r := range rules {
		groups, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "apiGroups")
		for _, g := range groups {
			if !kueueWebhookGroups[g] {
				return false
			}
		}
	}
	return len(rules) > 0
}

// writeServingCert writes a self-signed certificate for 127.0.0.1 as
// tls.crt and tls.key in dir and returns it, PEM-encoded, as its own CA.
func writeServingCert(dir string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "testenv-webhooks"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600); err != nil {
		return nil, err
	}
	return certPEM, nil
}

// logTail returns the last n bytes of a log file.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}
