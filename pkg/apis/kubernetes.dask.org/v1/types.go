package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// EmbeddedMetadata is the part of an object's metadata a user may set on a
// child the operator creates: labels and annotations.
type EmbeddedMetadata struct {
	// Labels added to the created object.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations added to the created object.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// WorkerSpec describes a homogeneous set of Dask worker Pods.
type WorkerSpec struct {
	// Replicas is the number of worker Pods.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// Metadata is added to every worker Pod.
	// +optional
	Metadata EmbeddedMetadata `json:"metadata,omitempty"`
	// Spec is the Pod spec of every worker. Its containers should run
	// `dask worker --name $(DASK_WORKER_NAME)` so that graceful scale-down can
	// map Dask workers to Pods.
	Spec corev1.PodSpec `json:"spec"`
	// Strategy is how running workers are replaced when spec changes (labels
	// and annotations reach running workers in place). Unset means
	// RollingUpdate with maxSurge 25% and maxUnavailable 0.
	// +optional
	Strategy *WorkerUpdateStrategy `json:"strategy,omitempty"`
}

// WorkerUpdateStrategyType names a way of replacing outdated workers.
// +kubebuilder:validation:Enum=RollingUpdate;OnDelete
type WorkerUpdateStrategyType string

const (
	// RollingUpdateStrategy replaces outdated workers in batches; each one
	// is retired through the scheduler (its results move to other workers)
	// before its Pod is deleted.
	RollingUpdateStrategy WorkerUpdateStrategyType = "RollingUpdate"
	// OnDeleteStrategy leaves running workers alone: only Pods created from
	// now on (scale-up, replacements of deleted Pods) get the new spec.
	OnDeleteStrategy WorkerUpdateStrategyType = "OnDelete"
)

// WorkerUpdateStrategy is how running workers are replaced when the worker
// Pod spec changes.
// +kubebuilder:validation:XValidation:rule="!has(self.rollingUpdate) || !has(self.type) || self.type == 'RollingUpdate'",message="spec.worker.strategy.rollingUpdate may only be set when type is RollingUpdate",reason=FieldValueForbidden
type WorkerUpdateStrategy struct {
	// Type is RollingUpdate (the default) or OnDelete.
	// +optional
	Type WorkerUpdateStrategyType `json:"type,omitempty"`
	// RollingUpdate bounds a rolling update.
	// +optional
	RollingUpdate *RollingUpdateWorkers `json:"rollingUpdate,omitempty"`
	// ProgressDeadlineSeconds is how long new workers may take to become
	// Ready before the rollout is reported stalled (condition Progressing
	// False, reason ProgressDeadlineExceeded, and a Warning event). The
	// rollout waits, and goes on once they are Ready. Unset means 30.
	// +kubebuilder:validation:Minimum=1
	// +optional
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`
}

// RollingUpdateWorkers bounds a rolling update of workers.
// +kubebuilder:validation:XValidation:rule="!(has(self.maxSurge) && has(self.maxUnavailable) && string(self.maxSurge) in ['0', '0%'] && string(self.maxUnavailable) in ['0', '0%'])",message="maxSurge and maxUnavailable cannot both be 0: the rollout could never replace a worker",reason=FieldValueInvalid
type RollingUpdateWorkers struct {
	// MaxSurge is how many workers may exist above replicas during a
	// rollout: a number, or a percentage of replicas rounded up. Unset
	// means 25%.
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 : self.matches('^[0-9]+%$')",message="maxSurge must be a non-negative number or a percentage such as 25%",reason=FieldValueInvalid
	// +optional
	MaxSurge *intstr.IntOrString `json:"maxSurge,omitempty"`
	// MaxUnavailable is how many of replicas may be not Ready during a
	// rollout: a number, or a percentage of replicas rounded down. Unset
	// means 0: a Ready worker is retired only when a new one is Ready.
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",message="maxUnavailable must be a non-negative number or a percentage from 0% to 100%",reason=FieldValueInvalid
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// SchedulerUpdateStrategy is when a changed scheduler Pod spec is applied.
// +kubebuilder:validation:Enum=OnDelete;Recreate
type SchedulerUpdateStrategy string

const (
	// SchedulerOnDelete records the change (condition SchedulerOutdated) and
	// applies it when the scheduler Pod is next replaced.
	SchedulerOnDelete SchedulerUpdateStrategy = "OnDelete"
	// SchedulerRecreate deletes the running scheduler and creates it anew:
	// the scheduler's state (tasks, results) is lost; workers reconnect.
	SchedulerRecreate SchedulerUpdateStrategy = "Recreate"
)

// SchedulerSpec describes the Dask scheduler Pod and the Service in front of it.
type SchedulerSpec struct {
	// Metadata is added to the scheduler Pod and Service.
	// +optional
	Metadata EmbeddedMetadata `json:"metadata,omitempty"`
	// Spec is the Pod spec of the scheduler.
	Spec corev1.PodSpec `json:"spec"`
	// Service is the spec of the scheduler Service. When it has no selector,
	// the operator selects the scheduler Pod.
	Service corev1.ServiceSpec `json:"service"`
	// UpdateStrategy is when a change to spec is applied to the running
	// scheduler. OnDelete (the default) records it (condition
	// SchedulerOutdated) and applies it when the scheduler Pod is next
	// replaced; Recreate replaces the scheduler at once, losing its state.
	// +optional
	UpdateStrategy SchedulerUpdateStrategy `json:"updateStrategy,omitempty"`
}

// DaskClusterSpec describes a Dask cluster.
// +kubebuilder:validation:XValidation:rule="has(oldSelf.managedBy) == has(self.managedBy)",message="spec.managedBy is immutable"
type DaskClusterSpec struct {
	// Worker describes the default worker group.
	Worker WorkerSpec `json:"worker"`
	// Scheduler describes the scheduler Pod and Service.
	Scheduler SchedulerSpec `json:"scheduler"`
	// IdleTimeout deletes the cluster once the scheduler has been idle this many
	// seconds. 0 keeps it forever.
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +optional
	IdleTimeout int64 `json:"idleTimeout,omitempty"`
	// Suspend stops the cluster without deleting its definition: while true
	// the scheduler and every worker Pod are deleted (workers are not
	// retired: their results are lost), and the Service, worker groups and
	// autoscaler stay. Setting it back to false starts the cluster again.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`
	// ManagedBy names the controller that manages this object. Unset, or
	// kubernetes.dask.org/dask-operator, is this operator. Any other value
	// makes the operator leave the object alone but for its Kueue Workload
	// (kueue.x-k8s.io/multikueue: MultiKueue dispatches the object to a
	// worker cluster and mirrors its status back). Immutable.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.managedBy is immutable"
	// +optional
	ManagedBy *string `json:"managedBy,omitempty"`
}

// DaskClusterPhase is the coarse state the Python KubeCluster client waits on.
// +kubebuilder:validation:Enum=Created;Pending;Running;Error;Suspended
type DaskClusterPhase string

const (
	// DaskClusterCreated is set when the operator first sees the cluster.
	DaskClusterCreated DaskClusterPhase = "Created"
	// DaskClusterPending means the children exist but the scheduler Service is not usable yet.
	DaskClusterPending DaskClusterPhase = "Pending"
	// DaskClusterRunning means the scheduler Service can be used.
	DaskClusterRunning DaskClusterPhase = "Running"
	// DaskClusterError means the operator cannot build the cluster; a condition says why.
	DaskClusterError DaskClusterPhase = "Error"
	// DaskClusterSuspended means spec.suspend is true: no scheduler or worker runs.
	DaskClusterSuspended DaskClusterPhase = "Suspended"
)

// DaskClusterStatus is the observed state of a DaskCluster.
type DaskClusterStatus struct {
	// Phase is one of Created, Pending, Running, Error, Suspended.
	// +optional
	Phase DaskClusterPhase `json:"phase,omitempty"`
	// Conditions tell the state of the scheduler and workers in detail.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Replicas is the number of worker Pods of all the cluster's groups.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas is the number of ready worker Pods of all the cluster's groups.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// DefaultGroupReplicas is the number of worker Pods of the default group,
	// the group that spec.worker.replicas scales: the scale subresource's
	// status, so that an HPA counts the Pods it scales. Every other group is
	// scaled on its own (its own scale subresource).
	// +optional
	DefaultGroupReplicas int32 `json:"defaultGroupReplicas,omitempty"`
	// Selector selects the worker Pods of the default group (for the scale
	// subresource).
	// +optional
	Selector string `json:"selector,omitempty"`
	// SchedulerAddress is the address clients and workers in the cluster
	// reach the scheduler at: tcp://<service>.<namespace>.svc.<domain>:<comm port>.
	// +optional
	SchedulerAddress string `json:"schedulerAddress,omitempty"`
	// DashboardURL is the scheduler's dashboard inside the cluster.
	// +optional
	DashboardURL string `json:"dashboardURL,omitempty"`
	// ExternalSchedulerAddress and ExternalDashboardURL are the scheduler's
	// addresses through a LoadBalancer Service, once it has an ingress.
	// +optional
	ExternalSchedulerAddress string `json:"externalSchedulerAddress,omitempty"`
	// +optional
	ExternalDashboardURL string `json:"externalDashboardURL,omitempty"`
}

// DaskCluster is a Dask scheduler Pod, its Service and a default worker group.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:resource:shortName=daskcluster;dsk,categories=dask
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.worker.replicas,statuspath=.status.defaultGroupReplicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Workers",type=integer,JSONPath=`.spec.worker.replicas`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Scheduler",type=string,JSONPath=`.status.schedulerAddress`,priority=1
// +kubebuilder:printcolumn:name="Dashboard",type=string,JSONPath=`.status.dashboardURL`,priority=1
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 53 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (lowercase letters, digits, '-') of at most 53 characters, so that '<name>-scheduler' is a valid Service name",reason=FieldValueInvalid
type DaskCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec DaskClusterSpec `json:"spec"`
	// +optional
	Status DaskClusterStatus `json:"status,omitempty"`
}

// DaskClusterList is a list of DaskClusters.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type DaskClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DaskCluster `json:"items"`
}

// DaskWorkerGroupSpec describes a group of workers attached to a cluster.
type DaskWorkerGroupSpec struct {
	// Cluster is the name of the DaskCluster, in the same namespace, the
	// workers join. It cannot be changed: create another group instead.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.cluster is immutable: create a new DaskWorkerGroup to attach workers to another cluster",reason=FieldValueForbidden
	Cluster string `json:"cluster"`
	// Worker describes the worker Pods.
	Worker WorkerSpec `json:"worker"`
}

// DaskWorkerGroupStatus is the observed state of a DaskWorkerGroup.
type DaskWorkerGroupStatus struct {
	// Replicas is the number of worker Pods that exist and are not terminating.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas is the number of ready worker Pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// UpdatedReplicas is the number of worker Pods made from the current
	// spec.worker.spec.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`
	// TemplateHash is the hash of the current spec.worker.spec; worker
	// Pods carry theirs in the dask.org/template-hash label.
	// +optional
	TemplateHash string `json:"templateHash,omitempty"`
	// Selector selects the group's worker Pods (for the scale subresource and HPA).
	// +optional
	Selector string `json:"selector,omitempty"`
	// Conditions tell the state of the group in detail.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// DaskWorkerGroup is a homogeneous, scalable group of Dask worker Pods.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:resource:shortName=daskworkers,categories=dask
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.worker.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:printcolumn:name="Workers",type=integer,JSONPath=`.spec.worker.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`,priority=1
// +kubebuilder:printcolumn:name="Up-to-date",type=integer,JSONPath=`.status.updatedReplicas`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters: it is the value of the dask.org/workergroup-name label",reason=FieldValueInvalid
type DaskWorkerGroup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec DaskWorkerGroupSpec `json:"spec"`
	// +optional
	Status DaskWorkerGroupStatus `json:"status,omitempty"`
}

// DaskWorkerGroupList is a list of DaskWorkerGroups.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type DaskWorkerGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DaskWorkerGroup `json:"items"`
}

// JobRunnerSpec describes the job-runner Pod.
// +kubebuilder:validation:XValidation:rule="!has(self.spec.restartPolicy) || self.spec.restartPolicy != 'Always'",message="restartPolicy must be OnFailure or Never: a runner that always restarts never ends its job",fieldPath=".spec.restartPolicy",reason=FieldValueInvalid
type JobRunnerSpec struct {
	// Metadata is added to the runner Pod.
	// +optional
	Metadata EmbeddedMetadata `json:"metadata,omitempty"`
	// Spec is the runner's Pod spec. restartPolicy defaults to OnFailure.
	Spec corev1.PodSpec `json:"spec"`
}

// JobClusterSpec describes the DaskCluster a DaskJob runs on.
type JobClusterSpec struct {
	// Metadata is added to the DaskCluster (and so to its scheduler and workers).
	// +optional
	Metadata EmbeddedMetadata `json:"metadata,omitempty"`
	// Spec is the DaskCluster's spec.
	Spec DaskClusterSpec `json:"spec"`
}

// DaskJobSpec describes a batch run: a runner Pod and its own DaskCluster.
// +kubebuilder:validation:XValidation:rule="has(oldSelf.managedBy) == has(self.managedBy)",message="spec.managedBy is immutable"
type DaskJobSpec struct {
	// Job describes the runner Pod.
	Job JobRunnerSpec `json:"job"`
	// Cluster describes the DaskCluster created for the job.
	Cluster JobClusterSpec `json:"cluster"`
	// BackoffLimit is how many times the runner may fail before the job is
	// Failed: container restarts with restartPolicy OnFailure, recreated runner
	// Pods with Never. Unset means 6, like a Kubernetes Job.
	// +kubebuilder:validation:Minimum=0
	// +optional
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`
	// ActiveDeadlineSeconds fails the job (reason DeadlineExceeded) when it has
	// been active this long: since it was created or last resumed, whether or
	// not its runner ever started (as for a Kubernetes Job).
	// +kubebuilder:validation:Minimum=1
	// +optional
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
	// TTLSecondsAfterFinished deletes the DaskJob this long after it finished.
	// Unset keeps it.
	// +kubebuilder:validation:Minimum=0
	// +optional
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// Suspend stops a job: while true no cluster or runner exists; setting it
	// back to false starts the job again.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`
	// ManagedBy names the controller that manages this object. Unset, or
	// kubernetes.dask.org/dask-operator, is this operator. Any other value
	// makes the operator leave the object alone but for its Kueue Workload
	// (kueue.x-k8s.io/multikueue: MultiKueue dispatches the object to a
	// worker cluster and mirrors its status back). Immutable.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.managedBy is immutable"
	// +optional
	ManagedBy *string `json:"managedBy,omitempty"`
}

// ManagedByOperator is spec.managedBy's value for this operator.
const ManagedByOperator = "kubernetes.dask.org/dask-operator"

// ManagedElsewhere tells an object whose spec.managedBy names another
// controller.
func ManagedElsewhere(managedBy *string) bool {
	return managedBy != nil && *managedBy != "" && *managedBy != ManagedByOperator
}

// JobStatus is the coarse state of a DaskJob, with the incumbent's values.
// +kubebuilder:validation:Enum=JobCreated;ClusterCreated;Running;Successful;Failed;Suspended
type JobStatus string

const (
	// JobCreated is set when the operator first sees the job.
	JobCreated JobStatus = "JobCreated"
	// JobClusterCreated means the cluster and runner exist but the runner is not running yet.
	JobClusterCreated JobStatus = "ClusterCreated"
	// JobRunning means the runner Pod is running.
	JobRunning JobStatus = "Running"
	// JobSuccessful means the runner finished with success.
	JobSuccessful JobStatus = "Successful"
	// JobFailed means the runner failed, ran past its deadline or exhausted its retries.
	JobFailed JobStatus = "Failed"
	// JobSuspended means spec.suspend is true and nothing runs.
	JobSuspended JobStatus = "Suspended"
)

// DaskJobStatus is the observed state of a DaskJob.
type DaskJobStatus struct {
	// JobStatus is one of JobCreated, ClusterCreated, Running, Successful, Failed, Suspended.
	// +optional
	JobStatus JobStatus `json:"jobStatus,omitempty"`
	// ClusterName is the name of the job's DaskCluster.
	// +optional
	ClusterName string `json:"clusterName,omitempty"`
	// JobRunnerPodName is the name of the runner Pod.
	// +optional
	JobRunnerPodName string `json:"jobRunnerPodName,omitempty"`
	// StartTime is when the runner started running.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// EndTime is when the job finished.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
	// Attempts is the number of runner Pods created.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// Failed is the number of runner failures counted against backoffLimit.
	// +optional
	Failed int32 `json:"failed,omitempty"`
	// Conditions tell the state of the job in detail.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// DaskJob is a batch run: a job-runner Pod and its own DaskCluster, removed when the job ends.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:resource:shortName=djb,categories=dask
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.jobStatus`
// +kubebuilder:printcolumn:name="Number Of Workers",type=integer,JSONPath=`.spec.cluster.spec.worker.replicas`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 53 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (lowercase letters, digits, '-') of at most 53 characters: it names the job's DaskCluster",reason=FieldValueInvalid
type DaskJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec DaskJobSpec `json:"spec"`
	// +optional
	Status DaskJobStatus `json:"status,omitempty"`
}

// DaskJobList is a list of DaskJobs.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type DaskJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DaskJob `json:"items"`
}

// DaskAutoscalerSpec bounds the adaptive scaling of a cluster's default worker group.
// +kubebuilder:validation:XValidation:rule="self.minimum <= self.maximum",message="spec.minimum must be less than or equal to spec.maximum",fieldPath=".minimum",reason=FieldValueInvalid
type DaskAutoscalerSpec struct {
	// Cluster is the name of the DaskCluster, in the same namespace, to scale.
	// It cannot be changed: create another autoscaler instead.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.cluster is immutable: create a new DaskAutoscaler for another cluster",reason=FieldValueForbidden
	Cluster string `json:"cluster"`
	// Minimum is the smallest number of workers.
	// +kubebuilder:validation:Minimum=0
	Minimum int32 `json:"minimum"`
	// Maximum is the largest number of workers.
	// +kubebuilder:validation:Minimum=0
	Maximum int32 `json:"maximum"`
}

// DaskAutoscalerStatus is the last scaling decision and when the next may happen.
type DaskAutoscalerStatus struct {
	// DesiredWorkers is the number of workers last decided.
	// +optional
	DesiredWorkers *int32 `json:"desiredWorkers,omitempty"`
	// LastScaleTime is when the default worker group was last scaled.
	// +optional
	LastScaleTime *metav1.Time `json:"lastScaleTime,omitempty"`
	// CooldownUntil is the earliest time of the next scaling.
	// +optional
	CooldownUntil *metav1.Time `json:"cooldownUntil,omitempty"`
	// Conditions tell the last decision and its reason.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// DaskAutoscaler scales a cluster's default worker group to what the Dask scheduler asks for.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:resource:categories=dask
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Minimum",type=integer,JSONPath=`.spec.minimum`
// +kubebuilder:printcolumn:name="Maximum",type=integer,JSONPath=`.spec.maximum`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DaskAutoscaler struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec DaskAutoscalerSpec `json:"spec"`
	// +optional
	Status DaskAutoscalerStatus `json:"status,omitempty"`
}

// DaskAutoscalerList is a list of DaskAutoscalers.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type DaskAutoscalerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DaskAutoscaler `json:"items"`
}
