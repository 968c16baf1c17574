package controller

import (
	"k8s.io/apimachinery/pkg/labels"

	"github.com/dask-operator/dask-operator/pkg/metrics"
	"github.com/dask-operator/dask-operator/pkg/resources"
)

// DaskState counts the Dask resources in the caches, for the metrics a
// scrape reads. It lists from memory; no API call is made.
func (c *Base) DaskState() metrics.State {
	st := metrics.State{ClustersByPhase: map[string]int{}, JobsByStatus: map[string]int{}}
	for _, s := range c.Caches.Scopes {
		clusters, _ := s.clusterLister.List(labels.Everything())
		for _, cl := range clusters {
			phase := string(cl.Status.Phase)
			if phase == "" {
				phase = "Unknown"
			}
			st.ClustersByPhase[phase]++
		}
		jobs, _ := s.jobLister.List(labels.Everything())
		for _, j := range jobs {
			status := string(j.Status.JobStatus)
			if status == "" {
				status = "Unknown"
			}
			st.JobsByStatus[status]++
		}
		groups, _ := s.groupLister.List(labels.Everything())
		for _, g := range groups {
			st.WorkerGroups++
			st.WorkersDesired += int(resources.Replicas(&g.Spec.Worker))
			st.WorkersReady += int(g.Status.ReadyReplicas)
		}
		autoscalers, _ := s.autoscalerLister.List(labels.Everything())
		st.Autoscalers += len(autoscalers)
	}
	return st
}
