package resources

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
)

// MaxClusterNameLength keeps "<name>-scheduler" a valid Service name (63).
const MaxClusterNameLength = 63 - len("-scheduler")

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidateClusterName explains why a name cannot be a DaskCluster's (the CRD
// rejects such names too; this guards clusters created before it did).
func ValidateClusterName(name string) error {
	if len(name) > MaxClusterNameLength {
		return fmt.Errorf("name %q is %d characters long; a DaskCluster name may have at most %d so that %q is a valid Service name",
			name, len(name), MaxClusterNameLength, SchedulerName(name))
	}
	if !dnsLabel.MatchString(name) {
		return fmt.Errorf("name %q is not a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit)", name)
	}
	return nil
}

// SchedulerName names a cluster's scheduler Pod and Service.
func SchedulerName(cluster string) string { return cluster + "-scheduler" }

// DefaultWorkerGroupName names a cluster's default DaskWorkerGroup.
func DefaultWorkerGroupName(cluster string) string { return cluster + "-default" }

// RunnerPodName names a DaskJob's runner Pod.
func RunnerPodName(job string) string { return job + "-runner" }

// JobClusterName names a DaskJob's DaskCluster.
func JobClusterName(job string) string { return job }

// NewWorkerName returns a fresh worker Pod name: <group>-worker-<10 hex digits>.
func NewWorkerName(group string) string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return group + "-worker-" + hex.EncodeToString(b[:])
}
