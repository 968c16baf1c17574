package metrics

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// APIRequests counts the requests the operator sends to the API server by
// Kubernetes verb (a watch is "watch", not the GET it is sent as) and
// resource, so that what it costs the API server can be told apart from
// the watches it keeps open.
var APIRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "dask_operator_api_requests_total",
	Help: "Requests sent to the API server, by verb (get, list, watch, create, update, patch, delete, deletecollection) and resource[/subresource].",
}, []string{"verb", "resource"})

// CountRequests wraps a transport so that every request it sends is counted
// in APIRequests. Use it as a rest.Config's WrapTransport.
func CountRequests(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt} }

type countingTransport struct{ next http.RoundTripper }

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	verb, resource := RequestVerb(req)
	APIRequests.WithLabelValues(verb, resource).Inc()
	return t.next.RoundTrip(req)
}

// RequestVerb tells a request's Kubernetes verb and resource from its method
// and path: /api/v1/namespaces/ns/pods/name/status is ("update",
// "pods/status") for a PUT. A path that names no resource (discovery,
// /version) has resource "".
func RequestVerb(req *http.Request) (verb, resource string) {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:] // api, version
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:] // apis, group, version
	default:
		parts = nil
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:] // a namespaced resource
	}
	var name string
	switch len(parts) {
	case 0:
	case 1:
		resource = parts[0]
	case 2:
		resource, name = parts[0], parts[1]
	default:
		resource, name = parts[0]+"/"+parts[2], parts[1]
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		switch watch := req.URL.Query().Get("watch"); {
		case watch == "true" || watch == "1":
			verb = "watch"
		case name == "":
			verb = "list"
		default:
			verb = "get"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
		if name == "" {
			verb = "deletecollection"
		}
	default:
		verb = strings.ToLower(req.Method)
	}
	return verb, resource
}
