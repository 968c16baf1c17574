package v1

// Condition types of the Dask kinds' status.conditions, and the reasons of
// their conditions and events, as batch/v1 has JobComplete: the controllers
// and the kubectl plugin say the same words. Reasons are CamelCase;
// messages are for people.
const (
	// DaskCluster
	ConditionSchedulerReady   = "SchedulerReady"
	ConditionWorkersReady     = "WorkersReady"
	ConditionResourcesCreated = "ResourcesCreated"
	ConditionIdleShutdown     = "IdleShutdown"
	// ConditionServiceSelectsScheduler is False when spec.scheduler.service's
	// selector misses the scheduler Pod.
	ConditionServiceSelectsScheduler = "ServiceSelectsScheduler"
	// ConditionSchedulerOutdated: the scheduler Pod runs another spec than
	// spec.scheduler.spec.
	ConditionSchedulerOutdated = "SchedulerOutdated"
	// ConditionWorkersUpdated is the default group's Updated, once it runs
	// spec.worker.spec.
	ConditionWorkersUpdated = "WorkersUpdated"

	// DaskWorkerGroup
	ConditionClusterFound       = "ClusterFound"
	ConditionReplicaFailure     = "ReplicaFailure"
	ConditionSchedulerReachable = "SchedulerReachable"
	// ConditionGracefulScaleDown is False when the cluster's scheduler is set
	// up to serve no HTTP API, so that workers cannot be retired gracefully.
	ConditionGracefulScaleDown = "GracefulScaleDown"
	// ConditionProgressing tells a rollout of a new worker template: True
	// while it goes (reason RollingUpdate) and once complete
	// (RolloutComplete), False when it has not moved within its deadline
	// (ProgressDeadlineExceeded).
	ConditionProgressing = "Progressing"
	// ConditionUpdated is True when every worker runs the current template
	// and there are spec.worker.replicas of them.
	ConditionUpdated = "Updated"

	// DaskJob
	ConditionComplete = "Complete"
	ConditionFailed   = "Failed"
	// ConditionSuspended (DaskJob, DaskCluster and DaskWorkerGroup) is True
	// while spec.suspend stops it (for a group: its cluster's).
	ConditionSuspended = "Suspended"

	// DaskAutoscaler
	ConditionScalingActive = "ScalingActive"
	ConditionAbleToScale   = "AbleToScale"

	// ConditionAdmitted (DaskJob, DaskCluster labelled
	// kueue.x-k8s.io/queue-name) tells whether Kueue admitted the object's
	// Workload: False while it waits in its queue (reason Queued), after an
	// eviction (Evicted, Preempted) or when Kueue is not installed
	// (KueueNotInstalled); True once admitted (Admitted).
	ConditionAdmitted = "Admitted"

	// ConditionTakingOver (DaskCluster, DaskWorkerGroup) is True while Pods
	// are being taken over from the Python operator's Deployments.
	ConditionTakingOver = "TakingOver"
)

// Reasons shared by the kinds.
const (
	// ReasonFailedCreate: a child (Pod, Service, worker group, cluster)
	// could not be created.
	ReasonFailedCreate     = "FailedCreate"
	ReasonFailedDelete     = "FailedDelete"
	ReasonUpdateFailed     = "UpdateFailed"
	ReasonNameConflict     = "NameConflict"
	ReasonInvalidName      = "InvalidName"
	ReasonFinalizerRemoved = "KopfFinalizerRemoved"
	// ReasonLegacyDaskCommand: a container starts dask-scheduler or
	// dask-worker, which Dask 2026.6 and later no longer have; it is started
	// so that it runs on images with and without them.
	ReasonLegacyDaskCommand = "LegacyDaskCommand"
)

// Reasons of DaskClusters.
const (
	ReasonReplaced         = "Replaced"
	ReasonIdleTimeout      = "IdleTimeout"
	ReasonIdleUnsupported  = "IdleCheckUnsupported"
	ReasonAdopted          = "Adopted"
	ReasonSelectorMismatch = "ServiceSelectorMismatch"
	// ReasonSchedulerOutdated: spec.scheduler.spec changed; the running
	// scheduler keeps the old one until it is replaced.
	ReasonSchedulerOutdated = "SchedulerOutdated"
	// ReasonSchedulerRecreated: spec.scheduler.spec changed with
	// updateStrategy Recreate, and the scheduler Pod was deleted.
	ReasonSchedulerRecreated = "SchedulerRecreated"
	// Taking over from the Python operator.
	ReasonTakingOver                 = "TakingOver"
	ReasonAdoptedPod                 = "AdoptedPod"
	ReasonAdoptedSchedulerWithoutAPI = "AdoptedSchedulerWithoutAPI"
)

// Reasons of DaskWorkerGroups.
const (
	ReasonScaledUp     = "ScaledUp"
	ReasonScaledDown   = "ScaledDown"
	ReasonRetireFailed = "RetireWorkersFailed"
	// ReasonNoWorkerRetired: the scheduler answered a retire without
	// retiring any worker asked for.
	ReasonNoWorkerRetired   = "NoWorkerRetired"
	ReasonRetiredUnknown    = "RetiredWorkerNotFound"
	ReasonFallbackScaleDown = "FallbackScaleDown"
	ReasonWaitingForCluster = "WaitingForCluster"
	// ReasonSchedulerAPIDisabled: the scheduler's own HTTP routes leave out
	// its API, so no worker can be retired gracefully.
	ReasonSchedulerAPIDisabled = "SchedulerAPIDisabled"
	// Rollouts of a new worker template.
	ReasonRollingUpdate            = "RollingUpdate"
	ReasonRolloutComplete          = "RolloutComplete"
	ReasonRolloutResumed           = "RolloutResumed"
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	ReasonOnDelete                 = "OnDelete"
)

// Reasons of DaskJobs.
const (
	ReasonJobStarted           = "JobStarted"
	ReasonJobSucceeded         = "JobSucceeded"
	ReasonJobFailed            = "JobFailed"
	ReasonBackoffLimitExceeded = "BackoffLimitExceeded"
	ReasonDeadlineExceeded     = "DeadlineExceeded"
	ReasonRunnerLost           = "RunnerPodLost"
	ReasonRunnerRetry          = "RunnerRetry"
	ReasonSuspended            = "Suspended"
	ReasonResumed              = "Resumed"
	ReasonTTLExpired           = "TTLExpired"

	// Kueue (ConditionAdmitted and events)
	ReasonQueued            = "Queued"
	ReasonAdmitted          = "Admitted"
	ReasonEvicted           = "Evicted"
	ReasonKueueNotInstalled = "KueueNotInstalled"
	ReasonWorkloadCreated   = "WorkloadCreated"
	// ReasonExceedsAdmission: a group of a queued cluster asks for more
	// workers than Kueue admitted; only the admitted run.
	ReasonExceedsAdmission = "ExceedsAdmission"
	ReasonClusterDeleted   = "ClusterDeleted"
)

// Reasons of DaskAutoscalers.
const (
	// ReasonAutoscaled is the event of a decision that changed the group.
	ReasonAutoscaled = "Autoscaled"
)
