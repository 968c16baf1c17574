package metrics

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestVerb(t *testing.T) {
	for _, c := range []struct{ method, url, verb, resource string }{
		{"GET", "/api/v1/namespaces/ns/pods?watch=true&resourceVersion=5", "watch", "pods"},
		{"GET", "/api/v1/namespaces/ns/pods?limit=500", "list", "pods"},
		{"GET", "/api/v1/pods", "list", "pods"},
		{"GET", "/api/v1/namespaces/ns/pods/w-1", "get", "pods"},
		{"GET", "/apis/kubernetes.dask.org/v1/daskclusters?watch=1", "watch", "daskclusters"},
		{"POST", "/api/v1/namespaces/ns/pods", "create", "pods"},
		{"PUT", "/apis/kubernetes.dask.org/v1/namespaces/ns/daskclusters/c/status", "update", "daskclusters/status"},
		{"PATCH", "/api/v1/namespaces/ns/pods/w-1", "patch", "pods"},
		{"DELETE", "/api/v1/namespaces/ns/pods/w-1", "delete", "pods"},
		{"DELETE", "/api/v1/namespaces/ns/pods", "deletecollection", "pods"},
		{"POST", "/api/v1/namespaces/ns/services/c-scheduler:http-dashboard/proxy/api/v1/retire_workers", "create", "services/proxy"},
		{"GET", "/api/v1/namespaces/ns", "get", "namespaces"},
		{"GET", "/apis", "list", ""},
		{"GET", "/version", "list", ""},
	} {
		req := httptest.NewRequest(c.method, c.url, nil)
		verb, resource := RequestVerb(req)
		assert.Equal(t, c.verb+" "+c.resource, verb+" "+resource, "%s %s", c.method, c.url)
	}
}

func TestCountRequestsCountsWhatIsSent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	client := &http.Client{Transport: CountRequests(http.DefaultTransport)}
	before := testutil.ToFloat64(APIRequests.WithLabelValues("watch", "leases"))
	resp, err := client.Get(srv.URL + "/apis/coordination.k8s.io/v1/namespaces/ns/leases?watch=true")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, before+1, testutil.ToFloat64(APIRequests.WithLabelValues("watch", "leases")))
}
