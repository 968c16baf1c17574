package daskapi

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"text/template"
	"time"

	"k8s.io/client-go/rest"
)

// DefaultTimeout bounds a call whose context has no deadline of its own.
// The HTTP clients themselves have no timeout: a call's deadline always
// comes from its context, so that a long retire_workers (Dask moves the
// workers' data before it answers) is not cut short.
const DefaultTimeout = 10 * time.Second

// sharedClient is the client of the resolvers that are given none.
var sharedClient = &http.Client{}

// DirectResolver reaches the scheduler Service by its cluster DNS name, as
// the operator does when it runs in a Pod: http://<svc>.<ns>.svc:<port>.
type DirectResolver struct {
	Client *http.Client
}

// Resolve implements Resolver.
func (r DirectResolver) Resolve(t Target) (string, *http.Client, error) {
	return fmt.Sprintf("http://%s.%s.svc:%d", t.Service, t.Namespace, t.Port), r.client(), nil
}

func (r DirectResolver) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return sharedClient
}

// ProxyResolver reaches the scheduler through the API server's service proxy,
// for an operator running outside the cluster with a kubeconfig.
type ProxyResolver struct {
	host   string
	client *http.Client
}

// NewProxyResolver builds a ProxyResolver that authenticates as cfg.
func NewProxyResolver(cfg *rest.Config) (*ProxyResolver, error) {
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	c.Timeout = 0 // deadlines come from each call's context
	host := cfg.Host
	if u, _, err := rest.DefaultServerUrlFor(cfg); err == nil {
		host = u.String()
	}
	return &ProxyResolver{host: host, client: c}, nil
}

// Resolve implements Resolver.
func (r *ProxyResolver) Resolve(t Target) (string, *http.Client, error) {
	return fmt.Sprintf("%s/api/v1/namespaces/%s/services/http:%s:%d/proxy", r.host, t.Namespace, t.Service, t.Port), r.client, nil
}

// TemplateResolver builds the URL from a Go text/template over Target's
// fields (.Namespace, .Cluster, .Service, .Port), for tests and unusual
// networks, for example "http://127.0.0.1:8787" or
// "http://{{.Service}}.{{.Namespace}}.example:{{.Port}}".
type TemplateResolver struct {
	tmpl   *template.Template
	client *http.Client
}

// NewTemplateResolver parses the template.
func NewTemplateResolver(text string) (*TemplateResolver, error) {
	tmpl, err := template.New("scheduler-url").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("scheduler URL template: %w", err)
	}
	return &TemplateResolver{tmpl: tmpl, client: sharedClient}, nil
}

// Resolve implements Resolver.
func (r *TemplateResolver) Resolve(t Target) (string, *http.Client, error) {
	var buf bytes.Buffer
	data := map[string]string{
		"Namespace": t.Namespace, "Cluster": t.Cluster, "Service": t.Service, "Port": strconv.Itoa(int(t.Port)),
	}
	if err := r.tmpl.Execute(&buf, data); err != nil {
		return "", nil, fmt.Errorf("scheduler URL template: %w", err)
	}
	return buf.String(), r.client, nil
}
